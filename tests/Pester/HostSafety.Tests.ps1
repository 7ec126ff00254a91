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

    It 'Dismount-GpuHostDriver refuses the root-disk controller with HostCriticalDevice, under -WhatIf too, writing nothing' {
        $err = $null
        Dismount-GpuHostDriver 00:1f.2 -Root $R -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Be 'HostCriticalDevice,GpuVirt.Commands.DismountGpuHostDriverCommand'
        $err[0].Exception.Message | Should -BeLike '0000:00:1f.2 (SATA controller, *) is needed by the running host: mounted filesystem / (xfs on /dev/mapper/vg-dm0: dm-0 over sda2);*active swap /dev/sda3. Detaching it from its host driver would take it from the host. Nothing was changed.*'
        $whatIfErr = $null
        $text = Get-WhatIfText { Dismount-GpuHostDriver 00:1f.2 -Root $R -WhatIf -ErrorVariable script:whatIfErr -ErrorAction SilentlyContinue }
        $script:whatIfErr[0].Exception.Message | Should -Be $err[0].Exception.Message
        $text | Should -Not -BeLike '*What if:*'
        Override 0000:00:1f.2 | Should -Be "(null)`n"
        (Get-Item (Join-Path $R 'sys/bus/pci/drivers/ahci/unbind')).Length | Should -Be 0
        (Get-Item (Join-Path $R 'sys/bus/pci/drivers_probe')).Length | Should -Be 0
    }

    It 'Dismount-GpuHostDriver -Force goes ahead with a warning naming the device and what needs it; -WhatIf -Force says the same' {
        $text = Get-WhatIfText { Dismount-GpuHostDriver 00:19.0 -Root $R -Force -WhatIf -WarningVariable script:whatIfWarn }
        "$script:whatIfWarn" | Should -BeLike '*0000:00:19.0 (Ethernet controller, *) is needed by the running host: network interface br0 carries the IPv4 default route*(br0 over bond0 over eth0)*-Force: going ahead anyway.*'
        $text | Should -BeLike '*What if: *driver_override*'
        Override 0000:00:19.0 | Should -Be "(null)`n"

        $warnings = $null
        $null = Dismount-GpuHostDriver 00:19.0 -Root $R -Force -Confirm:$false -WarningVariable warnings -ErrorAction SilentlyContinue
        "$warnings" | Should -BeLike '*0000:00:19.0 (Ethernet controller, *) is needed by the running host: network interface br0 carries the IPv4 default route*-Force: going ahead anyway.*'
        Get-Content -Raw (Join-Path $R 'sys/bus/pci/drivers/e1000e/unbind') | Should -Be '0000:00:19.0'
    }

    It 'Dismount-GpuHostDriver refuses a vGPU parent with a live vGPU (VgpuParentInUse) and a GPU its host users hold (DeviceInUse), -Force or not' {
        foreach ($force in $false, $true) {
            $err = $null
            $text = Get-WhatIfText { Dismount-GpuHostDriver 01:00.0 -Root $R -Force:$force -Confirm:$false -ErrorVariable script:parentErr -ErrorAction SilentlyContinue }
            $err = $script:parentErr
            $err.FullyQualifiedErrorId | Should -Be @('VgpuParentInUse,GpuVirt.Commands.DismountGpuHostDriverCommand', 'DeviceInUse,GpuVirt.Commands.DismountGpuHostDriverCommand')
            $err[0].Exception.Message | Should -BeLike "0000:01:00.0 has live vGPUs: mediated device $([GpuVirt.Fixtures.SampleHosts]::InUseMdev) (nvidia-63 GRID P4-1Q). Unbinding its driver would destroy them. Nothing was changed.*"
            $err[1].Exception.Message | Should -BeLike '0000:01:00.0 is in use: pid 901 (nvidia-persiste) holds /dev/nvidia0, /dev/nvidiactl; pid 1500 (Xorg) holds /dev/dri/card0*. Unbinding it from nvidia would wait in the kernel until it is released. Nothing was changed. First stop process 901, 1500, then try again.'
        }
        $null = Dismount-GpuHostDriver 01:00.0 -Root $R -WhatIf -ErrorVariable whatIfErr -ErrorAction SilentlyContinue
        $whatIfErr.FullyQualifiedErrorId | Should -Be @('VgpuParentInUse,GpuVirt.Commands.DismountGpuHostDriverCommand', 'DeviceInUse,GpuVirt.Commands.DismountGpuHostDriverCommand')
        Override 0000:01:00.0 | Should -Be "(null)`n"
        Test-Path (Join-Path $R "sys/bus/mdev/devices/$([GpuVirt.Fixtures.SampleHosts]::InUseMdev)") | Should -BeTrue
        (Get-Item (Join-Path $R 'sys/bus/pci/drivers_probe')).Length | Should -Be 0
    }

    It 'Dismount-GpuHostDriver refuses a vGPU parent whose virtual function has a vGPU type, listing it' {
        $h = New-FixtureHost -Name SriovVgpu -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        try {
            Set-Content -NoNewline -Path (Join-Path $h.Root 'sys/bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type') -Value "1168`n"
            $err = $null
            Dismount-GpuHostDriver 41:00.0 -Root $h.Root -Force -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Be 'VgpuParentInUse,GpuVirt.Commands.DismountGpuHostDriverCommand'
            $err[0].Exception.Message | Should -BeLike '0000:41:00.0 has live vGPUs: virtual function 0000:41:00.4 (vGPU type 1168 *). Unbinding its driver would destroy them.*'
            (Get-Item (Join-Path $h.Root 'sys/bus/pci/drivers_probe')).Length | Should -Be 0
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Dismount-GpuHostDriver never binds a bridge or a host bridge, -Force or not' {
        { Dismount-GpuHostDriver 00:00.0 -Root $R -Force -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'HostdevNotAssignable,GpuVirt.Commands.DismountGpuHostDriverCommand' -ExpectedMessage '*Host bridge (class 0600)*'
        { Dismount-GpuHostDriver 00:03.0 -Root $R -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'HostdevNotAssignable,GpuVirt.Commands.DismountGpuHostDriverCommand' -ExpectedMessage '*PCI bridge (class 0604)*'
        { Dismount-GpuHostDriver 00:1f.0 -Root $R -WhatIf -ErrorAction Stop } | Should -Throw -ErrorId 'HostdevNotAssignable,GpuVirt.Commands.DismountGpuHostDriverCommand' -ExpectedMessage '*ISA bridge (class 0601)*'
        Override 0000:00:00.0 | Should -Be "(null)`n"
        Override 0000:00:03.0 | Should -Be "(null)`n"
        Override 0000:00:1f.0 | Should -Be "(null)`n"
    }

    It 'Mount-GpuHostDriver refuses a function a guest''s QEMU holds, naming pid, command and guest, under -WhatIf too, writing nothing' {
        $err = $null
        Mount-GpuHostDriver 02:00.0 -Root $R -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'DeviceInUse,GpuVirt.Commands.MountGpuHostDriverCommand'
        $err[0].Exception.Message | Should -Be "0000:02:00.0 is in use: pid 4242 (qemu-system-x86, guest 'vm1') holds /dev/vfio/13. Unbinding it from pci-stub would wait in the kernel until it is released. Nothing was changed. First shut down guest 'vm1' (virsh shutdown), then try again."
        $text = Get-WhatIfText { Mount-GpuHostDriver 02:00.0 -Root $R -WhatIf -ErrorVariable script:mountErr -ErrorAction SilentlyContinue }
        $script:mountErr[0].Exception.Message | Should -Be $err[0].Exception.Message
        $text | Should -Not -BeLike '*What if:*'
        (Get-Item (Join-Path $R 'sys/bus/pci/drivers/pci-stub/unbind')).Length | Should -Be 0
        (Get-Item (Join-Path $R 'sys/bus/pci/drivers_probe')).Length | Should -Be 0
    }

    It 'Add-GpuHostdev refuses a managed hostdev of a device the host needs, -WhatIf says so, -Force attaches it with a warning, -Unmanaged needs no -Force' {
        $libvirt = New-EmbeddedLibvirt
        try {
            $vm = New-TestGuest $libvirt
            $err = $null
            Add-GpuHostdev -Domain $vm -Address 00:1b.0 -Root $R -Connect $libvirt.Uri -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $err[0].FullyQualifiedErrorId | Should -Be 'HostCriticalDevice,GpuVirt.Commands.AddGpuHostdevCommand'
            $err[0].Exception.Message | Should -BeLike "0000:00:1b.0 (Non-Volatile memory controller, *) is needed by the running host: mounted filesystem /srv (ext4 on /dev/md0: md0 over nvme0n1p1*). Attaching it with managed='yes'*Nothing was changed.*"
            $null = Add-GpuHostdev -Domain $vm -Address 00:1b.0 -Root $R -Connect $libvirt.Uri -WhatIf -ErrorVariable whatIfErr -ErrorAction SilentlyContinue
            $whatIfErr[0].FullyQualifiedErrorId | Should -Be 'HostCriticalDevice,GpuVirt.Commands.AddGpuHostdevCommand'
            ([xml](Get-InactiveXml $libvirt $vm)).domain.devices.hostdev | Should -BeNullOrEmpty

            $warnings = $null
            $out = Add-GpuHostdev -Domain $vm -Address 00:1b.0 -Root $R -Connect $libvirt.Uri -Force -Confirm:$false -WarningVariable warnings
            $out.Managed | Should -BeTrue
            "$warnings" | Should -BeLike "*0000:00:1b.0 (Non-Volatile memory controller, *) is needed by the running host*-Force: going ahead anyway.*"
            $out = Add-GpuHostdev -Domain $vm -Address 00:1c.0 -Unmanaged -Root $R -Connect $libvirt.Uri -Confirm:$false -WarningVariable unmanagedWarnings
            $out.Managed | Should -BeFalse
            "$unmanagedWarnings" | Should -Not -BeLike '*needed by the running host*'
        }
        finally { $libvirt | Remove-EmbeddedLibvirt }
    }

    It 'Dismount-GpuHostDriver -IncludeCompanion takes the group''s other endpoints, and says how the group becomes viable when it is left on a host driver' {
        $t = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci'); ($b.Devices | Where-Object Address -eq '0000:02:00.0').Driver = 'vfio-pci' }
        try {
            $warnings = $null
            $out = Dismount-GpuHostDriver 02:00.0 -Root $t.Root -Confirm:$false -Verbose -WarningVariable warnings 4>&1
            ($out | Where-Object { $_ -is [GpuVirt.Core.PciDevice] }).Address.ToString() | Should -Be '0000:02:00.0'
            # The audio function can go to the same guest managed='yes' (libvirt detaches it when the guest starts): no
            # warning here; Add-GpuHostdev warns when it is given neither.
            "$warnings" | Should -Not -BeLike '*not viable*'
            "$($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })" | Should -BeLike '*IOMMU group 13: 0000:02:00.1 (driver snd_hda_intel) still on a host driver*'
            $text = Get-WhatIfText { Dismount-GpuHostDriver 02:00.0 -IncludeCompanion -Root $t.Root -WhatIf -WarningVariable script:companionWarn }
            $text | Should -BeLike '*What if: *0000:02:00.1/driver_override*'
            "$script:companionWarn" | Should -Not -BeLike '*not viable*'
            $verbose = Dismount-GpuHostDriver 02:00.0 -IncludeCompanion -Root $t.Root -Confirm:$false -Verbose -ErrorAction SilentlyContinue -WarningAction SilentlyContinue 4>&1
            $verbose | Where-Object { "$_" -like "Writing 'vfio-pci' to *02:00.1/driver_override*" } | Should -Not -BeNullOrEmpty
            Get-Content -Raw (Join-Path $t.Root 'sys/bus/pci/drivers/snd_hda_intel/unbind') | Should -Be '0000:02:00.1'
        }
        finally { $t | Remove-FixtureHost }
    }

    It 'the companions are one rule: Enable-IommuBoot, Add-GpuHostdev and Dismount-GpuHostDriver -IncludeCompanion take the same functions, never a bridge' {
        $t = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        try {
            [GpuVirt.Fixtures.BootFixture]::Debian($t.Root)
            # 00:1f.2 shares group 8 with the ISA bridge 00:1f.0: the bridge is never a companion.
            $text = Get-WhatIfText { Get-PciDevice -Root $t.Root -Address 00:1f.2 | Enable-IommuBoot -Root $t.Root -IncludeCompanion -Force -WhatIf -WarningAction SilentlyContinue }
            $text | Should -BeLike '*pci-stub.ids=8086:8c02*'
            $text | Should -Not -BeLike '*8086:8c4e*'
            $dismount = Get-WhatIfText { Dismount-GpuHostDriver 00:1f.2 -IncludeCompanion -Root $t.Root -WhatIf -WarningAction SilentlyContinue }
            $dismount | Should -Not -BeLike '*00:1f.0*'
            $gpu = Get-WhatIfText { Get-PciDevice -Root $t.Root -Address 02:00.0 | Enable-IommuBoot -Root $t.Root -IncludeCompanion -WhatIf -WarningAction SilentlyContinue }
            $gpu | Should -BeLike '*10de:0e0b*'
        }
        finally { $t | Remove-FixtureHost }
    }

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
            $change.ClaimedDevices | Should -Be @('0000:00:1c.0', '0000:02:00.0')
        }
        finally { $t | Remove-FixtureHost }
    }
}

Describe 'A binding for one address that survives reboot (driverctl''s record, read and written by the real driverctl)' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
        function Invoke-Driverctl([string] $Root, [string[]] $Arguments) {
            # The real driverctl, in a private mount namespace in which /sys and /etc/driverctl.d are the tree's.
            $script = 'mount --bind "$1/sys" /sys && mount --bind "$1/etc/driverctl.d" /etc/driverctl.d && shift && exec driverctl "$@"'
            $out = & unshare --mount --propagation private -- bash -c $script driverctl $Root @Arguments 2>&1
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = @($out | ForEach-Object { "$_" }) }
        }
        function Get-Softdeps([string] $Root) {
            # What the real modprobe (kmod) reads from the tree's modprobe.d.
            @(& modprobe -C (Join-Path $Root 'etc/modprobe.d') --showconfig 2>&1 | Where-Object { "$_" -like 'softdep *' } | ForEach-Object { "$_".Trim() })
        }
    }
    BeforeEach {
        $script:P = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        $script:Core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($P.Root)
        # driverctl modprobes a driver that /sys/module does not show; here vfio-pci is loaded.
        $null = New-Item -ItemType Directory (Join-Path $P.Root 'sys/module/vfio-pci'), (Join-Path $P.Root 'etc/driverctl.d'), (Join-Path $P.Root 'usr/sbin') -Force
        # The image has driverctl installed, so its record is what binds the address at boot.
        Copy-Item /usr/sbin/driverctl (Join-Path $P.Root 'usr/sbin/driverctl')
        $script:Record = Join-Path $P.Root 'etc/driverctl.d/pci-0000:02:00.1'
        $script:Softdep = Join-Path $P.Root 'etc/modprobe.d/gpuvirt-vfio-pci.conf'
    }
    AfterEach {
        $script:Core.Dispose()
        $script:P | Remove-FixtureHost
    }

    It 'Dismount-GpuHostDriver -Persistent plans and writes driverctl''s record and the softdep, which the real driverctl and modprobe read; the journal takes both back' {
        $text = Get-WhatIfText { Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike "*What if: *write 'vfio-pci' to /etc/driverctl.d/pci-0000:02:00.1*add 'softdep snd_hda_intel pre: vfio-pci' for 0000:02:00.1 to /etc/modprobe.d/gpuvirt-vfio-pci.conf*"
        $Record | Should -Not -Exist
        $Softdep | Should -Not -Exist

        $out = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        $out.Driver | Should -Be 'vfio-pci'
        Get-Content -Raw $Record | Should -Be "vfio-pci`n"
        Get-Softdeps $P.Root | Should -Be @('softdep snd_hda_intel pre: vfio-pci')

        $change = Get-GpuVirtChange -Root $P.Root -Last 1
        $change.Target | Should -Be '0000:02:00.1'
        $null = $change | Undo-GpuVirtChange -Confirm:$false
        $Record | Should -Not -Exist
        $Softdep | Should -Not -Exist
        (Get-PciDevice 02:00.1 -Root $P.Root).Driver | Should -Be 'snd_hda_intel'

        # At boot: the device comes up with no override, and driverctl's udev rule loads the record.
        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Set-Content -NoNewline (Join-Path $P.Root 'sys/bus/pci/devices/0000:02:00.1/driver_override') -Value "(null)`n"
        $load = Invoke-Driverctl $P.Root @('--noprobe', 'load-override', '0000:02:00.1')
        $load.ExitCode | Should -Be 0 -Because ($load.Output -join "`n")
        Get-Content -Raw (Join-Path $P.Root 'sys/bus/pci/devices/0000:02:00.1/driver_override') | Should -Be "vfio-pci`n"
        (Invoke-Driverctl $P.Root @('list-overrides')).Output | Should -BeLike '0000:02:00.1 *'
    }

    It 'Dismount-GpuHostDriver -Persistent of a function already on vfio-pci only writes the record' {
        $null = Dismount-GpuHostDriver 02:00.1 -Root $P.Root -Confirm:$false
        $text = Get-WhatIfText { Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike '*What if: Performing the operation "Keep the binding to vfio-pci at boot"*'
        $text | Should -Not -BeLike '*unbind*'
        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Get-Content -Raw $Record | Should -Be "vfio-pci`n"
        $Softdep | Should -Not -Exist -Because 'the driver it was taken from is not known any more'
    }

    It 'Mount-GpuHostDriver -Persistent gives back a function the real driverctl set-override recorded, and removes the record' {
        $set = Invoke-Driverctl $P.Root @('--noprobe', 'set-override', '0000:02:00.1', 'vfio-pci')
        $set.ExitCode | Should -Be 0 -Because ($set.Output -join "`n")
        Get-Content -Raw $Record | Should -Be "vfio-pci`n"
        $text = Get-WhatIfText { Mount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike '*What if: *clear /sys/bus/pci/devices/0000:02:00.1/driver_override*remove /etc/driverctl.d/pci-0000:02:00.1*'
        $Record | Should -Exist

        $out = Mount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        $out.Driver | Should -Be 'snd_hda_intel'
        $Record | Should -Not -Exist
        (Invoke-Driverctl $P.Root @('--noprobe', 'load-override', '0000:02:00.1')).ExitCode | Should -Be 1 -Because 'driverctl finds no record to load'
    }

    It 'puts vfio-pci in the initramfs with <Tool> (<File>), builds it again, and Undo-GpuVirtChange gives every file back byte for byte' -ForEach @(
        @{ Tool = 'dracut'; File = 'etc/dracut.conf.d/gpuvirt-vfio-pci.conf'; Entry = 'force_drivers+=" vfio_pci vfio vfio_iommu_type1 "'; Run = @('dracut', '--force'); Setup = {} }
        @{ Tool = 'update-initramfs'; File = 'etc/initramfs-tools/modules'; Entry = "vfio_pci`nvfio`nvfio_iommu_type1"; Run = @('update-initramfs', '-u')
           Setup = { param($Root) $null = New-Item -ItemType Directory -Force (Join-Path $Root 'etc/initramfs-tools'); Set-HostFile -Root $Root -Path 'etc/initramfs-tools/modules' -Text "# List of modules that you want to include in your initramfs.`n#`n# Syntax:  module_name [args ...]`nnvme`n" } }
        @{ Tool = 'mkinitcpio'; File = 'etc/mkinitcpio.conf.d/gpuvirt-vfio-pci.conf'; Entry = 'MODULES+=(vfio_pci vfio vfio_iommu_type1)'; Run = @('mkinitcpio', '-P')
           Setup = { param($Root) Set-HostFile -Root $Root -Path 'etc/mkinitcpio.conf' -Text "MODULES=(nvme)`nHOOKS=(base udev autodetect modconf block filesystems fsck)`n" } }
    ) {
        & $Setup $P.Root
        $null = [GpuVirt.Fixtures.StandIns]::Install($P.Root, $Tool, 0, $null, $null)
        $before = Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json'
        $list = Join-Path $P.Root $File
        $original = if (Test-Path $list) { Get-Content -Raw $list } else { $null }

        $text = Get-WhatIfText { Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike "*write /$File (put vfio-pci in the initramfs: $($Entry -replace "`n", ' ')), then run chroot $($P.Root) $($Run -join ' ')*"
        (Get-StandInCall $P.Root).Count | Should -Be 0

        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Get-Content -Raw $list | Should -BeExactly ("$original$(if ($original -and -not $original.EndsWith("`n")) { "`n" })# Added by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back): vfio-pci in the initramfs`n$Entry`n")
        Get-Softdeps $P.Root | Should -Be @('softdep snd_hda_intel pre: vfio-pci')
        (Get-StandInCall $P.Root).Count | Should -Be 1
        (Get-StandInCall $P.Root)[0] | Should -Be $Run
        $change = Get-GpuVirtChange -Root $P.Root -Last 1
        $change.RebootRequired | Should -BeTrue
        $restore = @((Get-JournalRecord $P.Root $change.Id).Inverse | Where-Object Kind -eq 'RestoreFiles')
        $change.UndoSteps.Count | Should -Be (Get-JournalRecord $P.Root $change.Id).Inverse.Count
        $restore.Count | Should -Be 1
        $restore[0].Commands.Count | Should -Be 1
        $restore[0].Commands[0] | Should -Be $Run

        $null = $change | Undo-GpuVirtChange -Confirm:$false -WarningAction SilentlyContinue
        (Get-PciDevice 02:00.1 -Root $P.Root).Driver | Should -Be 'snd_hda_intel'
        Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $before
        (Get-StandInCall $P.Root).Count | Should -Be 2 -Because 'the undo builds the initramfs again from the files as they were'
        (Get-StandInCall $P.Root)[1] | Should -Be $Run

        # Mount-GpuHostDriver -Persistent takes it back too, leaving the administrator's lines as they were.
        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        $null = Mount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $before
        (Get-StandInCall $P.Root).Count | Should -Be 4
    }

    It 'a failing initramfs build takes back the whole -Persistent change: binding, record, softdep and module list' {
        $null = [GpuVirt.Fixtures.StandIns]::Install($P.Root, 'dracut', 1, 'dracut: cannot find module directory', $null)
        $before = Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json'
        { Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'BootRegenerationFailed,GpuVirt.Commands.DismountGpuHostDriverCommand'
        (Get-PciDevice 02:00.1 -Root $P.Root).Driver | Should -Be 'snd_hda_intel'
        Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $before
        (Get-StandInCall $P.Root).Count | Should -Be 1
        (Get-StandInCall $P.Root)[0] | Should -Be @('dracut', '--force')
    }

    It 'the softdep of a host driver stays while another address taken from it is recorded' {
        $null = Dismount-GpuHostDriver 02:00.0 -Persistent -Root $P.Root -Confirm:$false -WarningAction SilentlyContinue
        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Get-Softdeps $P.Root | Should -Be @('softdep snd_hda_intel pre: vfio-pci')
        Get-Content -Raw $Softdep | Should -BeLike '*# address 0000:02:00.1 from snd_hda_intel*'
        $null = Mount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        $Softdep | Should -Not -Exist
        Get-Content -Raw (Join-Path $P.Root 'etc/driverctl.d/pci-0000:02:00.0') | Should -Be "vfio-pci`n"
    }
}

Describe 'Guests whose definitions reference a device (real virsh, embedded QEMU driver)' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
        $script:Lv = New-EmbeddedLibvirt
        $script:Mdev = 'b1f8c2d4-6a3e-4f5b-9c7d-0e1f2a3b4c5d'
    }
    AfterAll { $script:Lv | Remove-EmbeddedLibvirt }
    BeforeEach {
        $script:G = New-FixtureHost -Name Seed -Configure { param($b)
            $null = $b.AddDriver('vfio-pci')
            $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($Mdev, '0000:01:00.0', 'nvidia-63', 30))
        }
        $script:Vm = New-TestGuest $Lv
        $null = Add-GpuHostdev $Vm -Address 02:00.0 -Unmanaged -Root $G.Root -Connect $Lv.Uri -WarningAction SilentlyContinue
        $null = Add-GpuHostdev $Vm -Uuid $Mdev -Root $G.Root -Connect $Lv.Uri
    }
    AfterEach {
        Clear-TestGuest $Lv
        $script:G | Remove-FixtureHost
    }

    It 'Get-PciDevice, Get-GpuDevice and Get-VgpuDevice -Connect fill Guests; without -Connect it is not read' {
        (Get-PciDevice 02:00.0 -Root $G.Root -Connect $Lv.Uri).Guests | Should -Be @($Vm)
        (Get-PciDevice 02:00.1 -Root $G.Root -Connect $Lv.Uri).Guests | Should -BeNullOrEmpty
        (Get-GpuDevice 02:00.0 -Root $G.Root -Connect $Lv.Uri).Guests | Should -Be @($Vm)
        (Get-VgpuDevice $Mdev -Root $G.Root -Connect $Lv.Uri).Guests | Should -Be @($Vm)
        (Get-PciDevice 02:00.0 -Root $G.Root).Guests | Should -BeNullOrEmpty
        $warnings = $null
        (Get-PciDevice 02:00.0 -Root $G.Root -Connect 'qemu+unix:///system?socket=/nonexistent/sock' -WarningVariable warnings).Address.ToString() | Should -Be '0000:02:00.0'
        "$warnings" | Should -BeLike '*cannot be read*'
    }

    It 'Mount-GpuHostDriver refuses a function a guest''s definition references (DeviceReferencedByGuest), -WhatIf says so, -Force gives it back with a warning' {
        $core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($G.Root)
        try {
            $null = Dismount-GpuHostDriver 02:00.1 -Root $G.Root -Confirm:$false -WarningAction SilentlyContinue
            $null = Add-GpuHostdev $Vm -Address 02:00.1 -Unmanaged -Root $G.Root -Connect $Lv.Uri -WarningAction SilentlyContinue
            $err = $null
            Mount-GpuHostDriver 02:00.1 -Root $G.Root -Connect $Lv.Uri -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $err[0].FullyQualifiedErrorId | Should -Be 'DeviceReferencedByGuest,GpuVirt.Commands.MountGpuHostDriverCommand'
            $err[0].Exception.Message | Should -BeLike "0000:02:00.1 is referenced by the definition of guest '$Vm': Giving it back to the host driver would leave that guest with a hostdev*Nothing was changed.*Remove-GpuHostdev*"
            $null = Mount-GpuHostDriver 02:00.1 -Root $G.Root -Connect $Lv.Uri -WhatIf -ErrorVariable whatIfErr -ErrorAction SilentlyContinue
            $whatIfErr[0].FullyQualifiedErrorId | Should -Be 'DeviceReferencedByGuest,GpuVirt.Commands.MountGpuHostDriverCommand'
            (Get-PciDevice 02:00.1 -Root $G.Root).Driver | Should -Be 'vfio-pci'

            $warnings = $null
            $out = Mount-GpuHostDriver 02:00.1 -Root $G.Root -Connect $Lv.Uri -Force -Confirm:$false -WarningVariable warnings
            "$warnings" | Should -BeLike "*0000:02:00.1 is referenced by the definition of guest '$Vm'*-Force: going ahead anyway.*"
            $core.Log | Should -Contain 'bind 0000:02:00.1 snd_hda_intel'
        }
        finally { $core.Dispose() }
    }

    It 'Remove-VgpuDevice refuses a vGPU a guest''s definition references, -WhatIf says so, -Force removes it with a warning (stand-in mdev driver)' {
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($G.Root)
        try {
            { Remove-VgpuDevice $Mdev -Root $G.Root -Connect $Lv.Uri -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'DeviceReferencedByGuest,GpuVirt.Commands.RemoveVgpuDeviceCommand' -ExpectedMessage "The mediated device $Mdev is referenced by the definition of guest '$Vm': Removing it would*"
            $null = Remove-VgpuDevice $Mdev -Root $G.Root -Connect $Lv.Uri -WhatIf -ErrorVariable whatIfErr -ErrorAction SilentlyContinue
            $whatIfErr[0].FullyQualifiedErrorId | Should -Be 'DeviceReferencedByGuest,GpuVirt.Commands.RemoveVgpuDeviceCommand'
            Join-Path $G.Root "sys/bus/mdev/devices/$Mdev" | Should -Exist
            $driver.Log | Should -BeNullOrEmpty

            $warnings = $null
            Remove-VgpuDevice $Mdev -Root $G.Root -Connect $Lv.Uri -Force -Confirm:$false -WarningVariable warnings
            "$warnings" | Should -BeLike "*The mediated device $Mdev is referenced by the definition of guest '$Vm'*-Force: going ahead anyway.*"
            $driver.Log | Should -Be @("remove $Mdev")
        }
        finally { $driver.Dispose() }
    }
}
