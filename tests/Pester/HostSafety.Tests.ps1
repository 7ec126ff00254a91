BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Busy = New-FixtureHost -Name InUse
}

AfterAll {
    $script:Busy | Remove-FixtureHost
}

Describe 'What the host needs, in the inventory' {
    It 'marks the controllers of / (dm over a partition), /boot and swap, and the NICs of a bridged bond' {
        $devices = Get-PciDevice -Root $Busy.Root
        $critical = $devices | Where-Object IsHostCritical
        ($critical | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:00:10.0', '0000:00:11.0', '0000:00:19.0', '0000:00:1b.0', '0000:00:1c.0', '0000:00:1f.2')
        $sata = $devices | Where-Object { $_.Address.ToString() -eq '0000:00:1f.2' }
        $sata.HostCritical | Should -BeLike 'mounted filesystem / (xfs on /dev/mapper/vg-dm0: dm-0 over sda2); *active swap /dev/sda3'
        ($devices | Where-Object { $_.Address.ToString() -eq '0000:02:00.0' }).HostCritical | Should -Be ''
    }

    It 'shows it in the PCI and IOMMU group tables' {
        $text = Get-PciDevice -Root $Busy.Root -Address 00:1f.2 | Out-String -Width 200
        $text | Should -Match '0000:00:1f\.2\s+SATA controller \[0106\]\s+8086:8c02\s+04\s+ahci\s+8\s+disk,swap\s+Intel'
        $group = Get-IommuGroup -Root $Busy.Root 8
        $group.HostCritical.Count | Should -Be 3
        ($group | Out-String -Width 250) | Should -Match '0000:00:1f\.2: mounted filesystem /boot \(xfs on /dev/sda1\)'
    }

    It 'marks the console GPU of the two-socket host' {
        $two = New-FixtureHost -Name TwoSocket
        try {
            $ast = Get-GpuDevice -Root $two.Root -Vendor 1a03
            $ast.HostCritical | Should -Be 'console GPU (boot_vga)'
            ($ast | Out-String -Width 200) | Should -Match '0000:0b:00\.0\s+VGA boot.*console'
        }
        finally { $two | Remove-FixtureHost }
    }
}

Describe 'Refusals before any write' {
    BeforeAll { Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force }
    BeforeEach {
        $script:T = New-FixtureHost -Name InUse -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        $script:R = $T.Root
        function script:Override([string] $a) { Get-Content -Raw (Join-Path $R "sys/bus/pci/devices/$a/driver_override") }
    }
    AfterEach { $script:T | Remove-FixtureHost }

    It 'Remove-VgpuDevice refuses a mediated device a guest holds with VgpuDeviceBusy, under -WhatIf too' {
        $uuid = [GpuVirt.Fixtures.SampleHosts]::InUseMdev
        { Remove-VgpuDevice $uuid -Root $R -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'VgpuDeviceBusy,GpuVirt.Commands.RemoveVgpuDeviceCommand' -ExpectedMessage "The mediated device $uuid is in use: pid 4343 (qemu-system-x86, guest 'vm,two') holds /dev/vfio/100. Removing it would wait in the kernel*"
        $text = Get-WhatIfText { Remove-VgpuDevice $uuid -Root $R -WhatIf -ErrorVariable script:whatIfErr -ErrorAction SilentlyContinue }
        $script:whatIfErr[0].FullyQualifiedErrorId | Should -Be 'VgpuDeviceBusy,GpuVirt.Commands.RemoveVgpuDeviceCommand'
        $text | Should -Not -BeLike '*What if:*'
        (Get-Item (Join-Path $R "sys/bus/mdev/devices/$uuid/remove")).Length | Should -Be 0
    }

    It 'Enable-IommuBoot refuses ids that would claim a routed NIC at boot, naming every claimed one beyond the piped' {
        { Enable-IommuBoot -Root $R -Address 00:12.0 -WhatIf -WarningAction SilentlyContinue } |
            Should -Throw -ErrorId 'HostCriticalDevice,GpuVirt.Commands.EnableIommuBootCommand' -ExpectedMessage '0000:00:10.0 (Ethernet controller, *) is needed by the running host: network interface br0 carries*pci-stub.ids=8086:1533 claims it at the next boot, which would take it from the host.*'
        Test-Path (Join-Path $R 'etc/default/grub') | Should -BeFalse
    }
}

Describe 'Boot-claim simulation' {
    It 'shows every function the ids claim in -WhatIf and in the result, warning beyond what was piped' {
        $t = New-FixtureHost -Name Seed -Configure { param($b)
            $null = $b.Add('0000:00:1c.0', 0x10de, 0x11fa, 0x030000, { param($d) $d.IommuGroup = 30; $d.Driver = 'nouveau' })
        }
        try {
            [GpuVirt.Fixtures.BootFixture]::Debian($t.Root)
            $text = Get-WhatIfText { Get-GpuDevice -Root $t.Root -Address 02:00.0 | Enable-IommuBoot -Root $t.Root -WhatIf -WarningVariable script:claimWarn }
            $text | Should -BeLike '*At the next boot pci-stub claims 0000:00:1c.0 (10de:11fa *)*At the next boot pci-stub claims 0000:02:00.0 (10de:11fa *)*'
            "$script:claimWarn" | Should -BeLike '*also claims 0000:00:1c.0*'
            $change = Get-GpuDevice -Root $t.Root -Address 02:00.0 | Enable-IommuBoot -Root $t.Root -Confirm:$false -WarningAction SilentlyContinue
            $change.ClaimedDevices.Address.ForEach({ $_.ToString() }) | Should -Be @('0000:00:1c.0', '0000:02:00.0')
        }
        finally { $t | Remove-FixtureHost }
    }
}
