# Get-GuestMmioSpace and Set-GuestMmioSpace as a user runs them: GPUs with real-sized BARs in a kernel-shaped tree,
# attached with Add-GpuHostdev to guests of the embedded QEMU driver, and what libvirt and QEMU then get.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uri = $Libvirt.Uri
    $GiB = [uint64]1 -shl 30
    $MiB = [uint64]1 -shl 20
    # The seed host with four A100-80GB-like GPUs (BAR1 128 GiB, BAR3 32 MiB) behind their own root ports, and a
    # CPU with 46 physical address bits; the Quadro K4000 gets its real BARs (128 MiB and 32 MiB 64-bit).
    $script:Host4 = New-FixtureHost -Name Seed -Configure {
        param($b)
        $b.PhysicalAddressBits = 46
        $b.CpuFlags = 'fpu vme de pse vmx'
        $quadro = $b.Devices | Where-Object Address -eq '0000:02:00.0'
        $quadro.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem32(0, 16 * $MiB))
        $quadro.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(1, 128 * $MiB))
        $quadro.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(3, 32 * $MiB))
        for ($i = 0; $i -lt 4; $i++) {
            $port = '0000:00:1{0}.0' -f $i
            $null = $b.Add($port, 0x8086, 0x347a, 0x060400, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.IommuGroup = 30 + $i; $d.Driver = 'pcieport' }.GetNewClosure())
            $gpu = $b.Add(('0000:{0:x2}:00.0' -f (0x41 + $i)), 0x10de, 0x20b5, 0x030200, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.Parent = $port; $d.IommuGroup = 40 + $i; $d.Driver = 'vfio-pci' }.GetNewClosure())
            $gpu.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem32(0, 16 * $MiB))
            $gpu.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(1, 128 * $GiB))
            $gpu.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(3, 32 * $MiB))
        }
    }
    $script:Root = $Host4.Root
    $script:Big = @('0000:41:00.0', '0000:42:00.0', '0000:43:00.0', '0000:44:00.0')
}

AfterAll {
    $script:Libvirt | Remove-EmbeddedLibvirt
    $script:Host4 | Remove-FixtureHost
}

Describe 'Get-GuestMmioSpace' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'sizes the 64-bit BARs of the hostdevs attached with Add-GpuHostdev against the definition' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev -Domain $vm -Address $Big -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $space = Get-GuestMmioSpace -Domain $vm -Root $Root -Connect $Uri
        $space | Should -BeOfType ([GpuVirt.Core.Mmio.GuestMmioSpace])
        $space.Domain | Should -Be $vm
        @($space.Hostdevs | ForEach-Object ToString) | Should -Be $Big
        $space.Windows.Count | Should -Be 4
        $space.Windows[0].Size | Should -Be (256 * $GiB)
        $space.Windows[0].Alignment | Should -Be (128 * $GiB)
        $space.RequiredBytes | Should -Be (1024 * $GiB)
        $space.RecommendedBytes | Should -Be (1152 * $GiB)
        $space.PciHole64Bytes | Should -BeNullOrEmpty
        $space.EffectivePciHole64Bytes | Should -Be (32 * $GiB)
        $space.Hole64Start | Should -Be (4 * $GiB)            # 64 MiB of RAM: all of it below 4 GiB
        $space.RequiredPhysBits | Should -Be 41
        $space.EffectivePhysBits | Should -Be 40
        $space.HostPhysBits | Should -Be 46
        $space.Fits | Should -BeFalse
        $space.Missing.Count | Should -Be 2
        $space.Missing[0] | Should -BeLike '<pcihole64> of 32 GiB (QEMU*s default) is smaller than the 1.12 TiB*1.13 TiB is recommended'
    }

    It 'fits a guest with one small GPU in QEMU''s default space, and shows it in a table' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $space = $vm | ForEach-Object { Get-GuestMmioSpace $_ -Root $Root -Connect $Uri }
        $space.RequiredBytes | Should -Be (256 * $MiB)      # 128 MiB + 32 MiB, rounded up to 128 MiB
        $space.Fits | Should -BeTrue
        $table = $space | Format-Table | Out-String -Width 200
        $table | Should -Match 'Domain\s+Hostdevs\s+Required\s+Recommended\s+PciHole64\s+PhysBits\s+Fits'
        $table | Should -Match ([regex]::Escape($vm) + '\s+1 256 MiB\s+1 GiB\s+32 GiB \(default\)\s+36 of 40\s+True')
    }

    It 'binds Domain from piped objects and warns about a vGPU it cannot size' {
        $vm = New-TestGuest $Libvirt -Graphics
        $null = Add-GpuHostdev $vm -Uuid 30820a6f-b1a5-4503-91ca-0c10ba58692a -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $space = [pscustomobject]@{ Domain = $vm } | Get-GuestMmioSpace -Root $Root -Connect $Uri -WarningVariable w -WarningAction SilentlyContinue
        $space.Hostdevs.Count | Should -Be 0
        $space.NotSized | Should -BeLike 'mdev 30820a6f-b1a5-4503-91ca-0c10ba58692a*'
        "$w" | Should -BeLike "*not counted: mdev 30820a6f-*"
    }

    It 'reports an unknown guest with DomainNotFound' {
        { Get-GuestMmioSpace -Domain no-such-guest -Root $Root -Connect $Uri -ErrorAction Stop } |
            Should -Throw -ErrorId 'DomainNotFound,GpuVirt.Commands.GetGuestMmioSpaceCommand'
    }
}

Describe 'Set-GuestMmioSpace' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'shows the plan and the diff with -WhatIf and changes nothing' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev -Domain $vm -Address $Big -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $before = Get-InactiveXml $Libvirt $vm
        $text = Get-WhatIfText { Set-GuestMmioSpace -Domain $vm -Root $Root -Connect $Uri -WhatIf }
        $text | Should -BeLike "*What if: Set the 64-bit MMIO space (<pcihole64>, <maxphysaddr>) of guest '${vm}':*"
        $text | Should -BeLike "*Set <pcihole64 unit='KiB'>1207959552</pcihole64> (1.13 TiB) on the root PCI controller, was 32 GiB (QEMU's default)*"
        $text | Should -BeLike "*Set <cpu><maxphysaddr mode='emulate' bits='41'/></cpu>, was none (40 bits)*"
        $text | Should -Match '(?m)^\+ +<pcihole64 unit="KiB">1207959552</pcihole64>'
        $text | Should -Match '(?m)^\+ +<maxphysaddr mode="emulate" bits="41" />'
        $text | Should -Match "(?m)^  virsh -c '$([regex]::Escape($Uri))' define --file '<temporary file with the new definition>' --validate"
        $text | Should -BeLike "*Takes effect when guest '$vm' next starts.*"
        Get-InactiveXml $Libvirt $vm | Should -Be $before
        @(Get-GpuVirtChange -Root $Root | Where-Object Command -eq 'Set-GuestMmioSpace') | Should -HaveCount 0
    }

    It 'writes pcihole64 and maxphysaddr that virt-xml-validate accepts and QEMU gets, and keeps everything else' {
        $vm = New-TestGuest $Libvirt -Graphics
        $null = Add-GpuHostdev -Domain $vm -Address $Big -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $null = Invoke-Virsh $Libvirt desc --domain $vm --config --new-desc 'four GPUs'
        $beforeText = Get-InactiveXml $Libvirt $vm
        $before = [xml]$beforeText

        $out = Set-GuestMmioSpace $vm -Root $Root -Connect $Uri -Confirm:$false
        $out | Should -BeOfType ([GpuVirt.Core.Mmio.GuestMmioSpace])
        $out.Fits | Should -BeTrue
        $out.PciHole64Bytes | Should -Be (1152 * $GiB)
        $out.MaxPhysAddrMode | Should -Be 'emulate'
        $out.MaxPhysAddrBits | Should -Be 41

        $xml = Get-InactiveXml $Libvirt $vm
        Test-DomainXml $xml | Should -BeLike '*validates'
        $doc = [xml]$xml
        $pcieRoot = $doc.domain.devices.controller | Where-Object model -eq 'pcie-root'
        $pcieRoot.pcihole64.unit | Should -Be 'KiB'
        $pcieRoot.pcihole64.'#text' | Should -Be '1207959552'
        $doc.domain.cpu.maxphysaddr.mode | Should -Be 'emulate'
        $doc.domain.cpu.maxphysaddr.bits | Should -Be '41'
        $doc.domain.description | Should -Be 'four GPUs'
        @($doc.domain.devices.hostdev).Count | Should -Be 4
        $doc.domain.uuid | Should -Be $before.domain.uuid

        $argv = Invoke-Virsh $Libvirt domxml-to-native --format qemu-argv --domain $vm
        $argv | Should -Match '-global q35-pcihost\.pci-hole64-size=1207959552K'
        $argv | Should -Match '-cpu qemu64,phys-bits=41'

        # The change is journaled, and undoing it gives the definition back as it was.
        $record = Get-GpuVirtChange -Root $Root -Last 1
        $record.Command | Should -Be 'Set-GuestMmioSpace'
        $record.Target | Should -Be "guest '$vm'"
        $record.Action | Should -Be 'Set the 64-bit MMIO space (<pcihole64>, <maxphysaddr>)'
        $null = $record | Undo-GpuVirtChange -Confirm:$false
        Get-InactiveXml $Libvirt $vm | Should -Be $beforeText
        $undone = [xml](Get-InactiveXml $Libvirt $vm)
        ($undone.domain.devices.controller | Where-Object model -eq 'pcie-root').pcihole64 | Should -BeNullOrEmpty
        $undone.domain.cpu.maxphysaddr | Should -BeNullOrEmpty
        $null = Set-GuestMmioSpace $vm -Root $Root -Connect $Uri -Confirm:$false

        # Run again: nothing is left to do, and nothing is written.
        $again = Set-GuestMmioSpace $vm -Root $Root -Connect $Uri -Confirm:$false -Verbose 4>&1
        ($again | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message |
            Should -Contain "Guest '$vm' already has the 64-bit MMIO space its hostdevs need."
        ($again | Where-Object { $_ -is [GpuVirt.Core.Mmio.GuestMmioSpace] }).Fits | Should -BeTrue
    }

    It 'refuses a guest that needs more physical address bits than the host has, and writes nothing' {
        $narrow = New-FixtureHost -Name Seed -Configure {
            param($b)
            $b.PhysicalAddressBits = 39
            foreach ($a in $Big) {
                $null = $b.Add($a, 0x10de, 0x20b5, 0x030200, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.IommuGroup = 60; $d.Driver = 'vfio-pci' })
                ($b.Devices | Where-Object Address -eq $a).Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(1, 128 * $GiB))
                ($b.Devices | Where-Object Address -eq $a).Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(3, 32 * $MiB))
            }
        }
        try {
            $vm = New-TestGuest $Libvirt
            $null = Add-GpuHostdev -Domain $vm -Address $Big -Root $narrow.Root -Connect $Uri -WarningAction SilentlyContinue
            $before = Get-InactiveXml $Libvirt $vm
            { Set-GuestMmioSpace $vm -Root $narrow.Root -Connect $Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'GuestMmioPhysBitsUnavailable,GpuVirt.Commands.SetGuestMmioSpaceCommand' -ExpectedMessage "*needs 41 vCPU physical address bits*this host's CPU has 39*"
            Get-InactiveXml $Libvirt $vm | Should -Be $before
        }
        finally { $narrow | Remove-FixtureHost }
    }
}


Describe 'Add-GpuHostdev and the limits of one guest' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'warns once, pointing at Set-GuestMmioSpace, when the 64-bit MMIO space will not hold the GPUs, also with -WhatIf' {
        $vm = New-TestGuest $Libvirt
        $null = Get-WhatIfText { Add-GpuHostdev $vm -Address $Big -Root $Root -Connect $Uri -WhatIf -WarningVariable script:w -WarningAction SilentlyContinue }
        @($w | Where-Object { "$_" -like '*64-bit MMIO*' }) | Should -HaveCount 1
        "$w" | Should -BeLike "*Guest '$vm' will not give its hostdevs the 64-bit MMIO space they need: <pcihole64> of 32 GiB (QEMU*s default) is smaller than the 1.12 TiB*Run Set-GuestMmioSpace -Domain '$vm'*"
        ([xml](Get-InactiveXml $Libvirt $vm)).SelectNodes('/domain/devices/hostdev').Count | Should -Be 0

        # Attached for real: again one warning, with what all four need.
        $null = Add-GpuHostdev $vm -Address $Big -Root $Root -Connect $Uri -WarningVariable w2 -WarningAction SilentlyContinue
        @($w2 | Where-Object { "$_" -like '*64-bit MMIO*' }) | Should -HaveCount 1
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev) | Should -HaveCount 4
        $null = Set-GuestMmioSpace $vm -Root $Root -Connect $Uri -Confirm:$false
        # Sized now: attaching the Quadro as well gives no MMIO warning (the space has its headroom).
        $null = Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WarningVariable w3 -WarningAction SilentlyContinue
        @($w3 | Where-Object { "$_" -like '*64-bit MMIO*' }) | Should -HaveCount 0
    }

    It 'gives no MMIO warning for a small GPU in QEMU''s default space' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WarningVariable w -WarningAction SilentlyContinue
        @($w | Where-Object { "$_" -like '*64-bit MMIO*' }) | Should -HaveCount 0
    }

    It 'refuses a 33rd assigned PCI device unless -Force, counting vGPUs and the devices attached before it in the same command' {
        $vm = New-TestGuest $Libvirt -Graphics
        $uuids = 1..31 | ForEach-Object { [guid]::NewGuid().ToString() }
        @(Add-GpuHostdev $vm -Uuid $uuids -Root $Root -Connect $Uri -WarningAction SilentlyContinue) | Should -HaveCount 31
        # The 32nd and the 33rd in one command: the 32nd goes in, the 33rd is refused, also under -WhatIf.
        $vgpu = [guid]::NewGuid().ToString()
        $two = @([pscustomobject]@{ Uuid = $vgpu }, [pscustomobject]@{ Address = '0000:02:00.0' })
        $text = Get-WhatIfText { $two | Add-GpuHostdev $vm -Root $Root -Connect $Uri -WhatIf -ErrorVariable script:e -ErrorAction SilentlyContinue -WarningAction SilentlyContinue }
        $text | Should -BeLike "*What if: Attach mdev hostdev $vgpu*"
        $text | Should -Not -BeLike '*What if: Attach PCI hostdev 0000:02:00.0*'
        $e[0].FullyQualifiedErrorId | Should -Be 'HostdevLimitExceeded,GpuVirt.Commands.AddGpuHostdevCommand'
        "$($e[0])" | Should -Be "Guest '$vm' already has 31 assigned PCI devices and this command attaches 1 more before it; 0000:02:00.0 would be past the limit of 32 per guest. Remove one first (Remove-GpuHostdev), or use -Force."
        $out = @($two | Add-GpuHostdev $vm -Root $Root -Connect $Uri -ErrorVariable e2 -ErrorAction SilentlyContinue -WarningAction SilentlyContinue)
        $out | Should -HaveCount 1
        "$($out[0].Uuid)" | Should -Be $vgpu
        @($e2 | ForEach-Object FullyQualifiedErrorId) | Should -Be @('HostdevLimitExceeded,GpuVirt.Commands.AddGpuHostdevCommand')
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev) | Should -HaveCount 32

        { Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WarningAction SilentlyContinue -ErrorAction Stop } |
            Should -Throw -ErrorId 'HostdevLimitExceeded,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage "Guest '$vm' already has 32 assigned PCI devices; 0000:02:00.0 would be past the limit of 32 per guest.*-Force*"
        # Re-adding one it already has is not a 33rd device: libvirt itself says it is there.
        { Add-GpuHostdev $vm -Uuid $uuids[0] -Root $Root -Connect $Uri -WarningAction SilentlyContinue -ErrorAction Stop } |
            Should -Throw -ErrorId 'HostdevAlreadyAttached,GpuVirt.Commands.AddGpuHostdevCommand'

        $forced = Add-GpuHostdev $vm -Address 02:00.0 -Force -Root $Root -Connect $Uri -WarningVariable w -WarningAction SilentlyContinue
        $forced.Address.ToString() | Should -Be '0000:02:00.0'
        "$w" | Should -BeLike '*past the limit of 32 per guest. -Force attaches it anyway.*'
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev) | Should -HaveCount 33
    }
}
