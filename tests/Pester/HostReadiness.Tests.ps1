# Test-GpuVirtHost on kernel-shaped fixture hosts built to pass, warn and fail each check, with the real virsh
# (the test driver needs no daemon; a socket that does not exist is a libvirt that cannot be reached).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Reachable = 'test:///default'
    $script:Unreachable = 'qemu+unix:///system?socket=/nonexistent/gpuvirt-libvirt-sock'
    $Ir = "            CPU0       CPU1`n  0:         46          0  IR-IO-APIC    2-edge      timer`n 24:          0          0  IR-PCI-MSI 1048576-edge      vfio-msi`n"
    $NoIr = "            CPU0       CPU1`n  0:         46          0   IO-APIC    2-edge      timer`n 24:          0          0  PCI-MSI 1048576-edge      ahci`n"
    $script:Interrupts = @{ Ir = $Ir; NoIr = $NoIr }

    function Get-Check($Checks, [string] $Name, [string] $Device) {
        $found = @($Checks | Where-Object { $_.Name -eq $Name -and ((-not $Device) -or "$($_.Device)" -eq $Device) })
        $found.Count | Should -Be 1 -Because "one '$Name' check$(if ($Device) { " for $Device" })"
        $found[0]
    }

    # The seed host made ready: VT-x, /dev/kvm, a DMAR unit with interrupt remapping, the IOMMU configured (Debian
    # GRUB) as it runs, vfio loaded, both GPUs and the audio function on vfio-pci with FLR, nouveau blacklisted, and
    # the Tesla P4 without vGPU types (a passthrough host, not a vGPU one).
    $script:Ready = New-FixtureHost -Name Seed -Configure {
        param($b)
        $b.CpuFlags = 'fpu vme de pse vmx'
        $b.IommuUnits.Add('dmar0')
        $b.AddFile('/dev/kvm', '')
        $b.AddFile('/proc/interrupts', $Interrupts.Ir)
        $b.AddFile('/etc/default/grub', "GRUB_CMDLINE_LINUX=`"rhgb quiet intel_iommu=on iommu=pt`"`n")
        $b.AddFile('/etc/debian_version', "12.8`n")
        $b.AddFile('/etc/modprobe.d/blacklist-nouveau.conf', "blacklist nouveau`noptions nouveau modeset=0`n")
        foreach ($m in 'vfio', 'vfio_pci', 'vfio_iommu_type1') { $b.LoadedModules.Add($m) }
        foreach ($d in $b.Devices | Where-Object { $_.Address -in '0000:01:00.0', '0000:02:00.0', '0000:02:00.1' }) {
            $d.Driver = 'vfio-pci'; $d.ResetMethod = 'flr bus'; $d.Flr = $true
        }
        ($b.Devices | Where-Object Address -eq '0000:01:00.0').MdevTypes.Clear()
    }
}

AfterAll { $script:Ready | Remove-FixtureHost }

Describe 'Test-GpuVirtHost on a ready host' {
    BeforeAll { $script:Checks = @(Test-GpuVirtHost -Root $Ready.Root -Connect $Reachable) }

    It 'passes every check, in the documented order, with no fix' {
        $Checks | Should -BeOfType ([GpuVirt.Core.HostReadiness.GpuVirtHostCheck])
        $Checks.Name | Should -Be @('CPU virtualization', '/dev/kvm', 'IOMMU active', 'Interrupt remapping', 'Kernel arguments', 'vfio modules',
            'IOMMU group', 'Host-critical partners', 'Console GPU', 'Reset', 'IOMMU group', 'Host-critical partners', 'Console GPU', 'Reset',
            'ACS override', 'nouveau', 'libvirt', 'guest hostdevs', 'IOMMU group in one guest')
        @($Checks | Where-Object Status -ne 'Pass' | ForEach-Object { "$_ : $($_.Detail)" }) | Should -BeNullOrEmpty
        @($Checks | Where-Object Fix) | Should -HaveCount 0
        @($Checks | Where-Object Device | ForEach-Object { "$($_.Device)" } | Select-Object -Unique) | Should -Be @('0000:01:00.0', '0000:02:00.0')
    }

    It 'says what it saw' {
        (Get-Check $Checks 'CPU virtualization').Detail | Should -Be 'Intel VT-x (vmx in /proc/cpuinfo)'
        (Get-Check $Checks 'IOMMU active').Detail | Should -Be "1 IOMMU unit(s) (dmar0), $(@(Get-ChildItem "$($Ready.Root)/sys/kernel/iommu_groups").Count) IOMMU groups"
        (Get-Check $Checks 'Interrupt remapping').Detail | Should -BeLike 'on: /proc/interrupts shows IR- interrupt chips'
        (Get-Check $Checks 'Kernel arguments').Detail | Should -Be 'configured in /etc/default/grub: intel_iommu=on iommu=pt; running: intel_iommu=on iommu=pt'
        (Get-Check $Checks 'IOMMU group' '0000:02:00.0').Detail | Should -Be 'group 13: 0000:02:00.0 (vfio-pci), 0000:02:00.1 (vfio-pci); viable'
        (Get-Check $Checks 'Reset' '0000:02:00.0').Detail | Should -Be 'reset_method: flr bus; FLR in config space'
        (Get-Check $Checks 'Host-critical partners' '0000:02:00.0').Detail | Should -Be 'group 13: no other member is needed by the running host (filesystems, swap, routed network interfaces, console)'
        (Get-Check $Checks 'nouveau').Detail | Should -Be 'blacklisted in /etc/modprobe.d/blacklist-nouveau.conf; not loaded'
        (Get-Check $Checks 'libvirt').Detail | Should -Match '^test:///default: libvirt \d+\.\d+\.\d+'
    }

    It 'returns $true with -Quiet, and a table that reads as checks' {
        Test-GpuVirtHost -Root $Ready.Root -Connect $Reachable -Quiet | Should -BeExactly $true
        $table = $Checks | Format-Table | Out-String -Width 200
        $table | Should -Match 'Status\s+Name\s+Device\s+Detail\s+Fix'
        $table | Should -Match 'Pass\s+Reset\s+0000:02:00\.0\s+reset_method: flr\s+bus'
        # Name, Detail and Fix are broken at spaces for the console's width: every word short enough stays whole.
        $tokens = ($Checks | Format-Table | Out-String -Width $Host.UI.RawUI.BufferSize.Width) -split '\s+'
        foreach ($word in (@($Checks.Name) + @($Checks.Detail) + @($Checks.Fix) -split ' ' | Where-Object { $_ -and $_.Length -le 16 })) {
            $tokens | Should -Contain $word
        }
    }
}

Describe 'Test-GpuVirtHost on hosts that are not ready' {
    It 'fails the CPU, KVM, IOMMU, interrupt remapping, kernel arguments and each GPU''s group on a host without them' {
        $h = New-FixtureHost -Name Seed -Configure {
            param($b)
            $b.Cmdline = 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet'
            $b.AddFile('/proc/interrupts', $Interrupts.NoIr)
            $b.AddFile('/etc/default/grub', "GRUB_CMDLINE_LINUX=`"quiet`"`n")
            $b.AddFile('/etc/debian_version', "12.8`n")
            foreach ($d in $b.Devices) { $d.IommuGroup = $null }
            ($b.Devices | Where-Object Address -eq '0000:02:00.0').Driver = 'nouveau'
            ($b.Devices | Where-Object Address -eq '0000:01:00.0').MdevTypes.Clear()
        }
        try {
            $checks = @(Test-GpuVirtHost -Root $h.Root -Connect $Unreachable)
            foreach ($name in 'CPU virtualization', '/dev/kvm', 'IOMMU active', 'Interrupt remapping', 'Kernel arguments', 'libvirt') {
                (Get-Check $checks $name).Status | Should -Be 'Fail' -Because $name
                (Get-Check $checks $name).Fix | Should -Not -BeNullOrEmpty
            }
            (Get-Check $checks 'CPU virtualization').Detail | Should -Be 'neither vmx nor svm in the CPU flags of /proc/cpuinfo'
            (Get-Check $checks 'IOMMU active').Fix | Should -BeLike '*Enable-IommuBoot*'
            (Get-Check $checks 'Interrupt remapping').Detail | Should -BeLike 'off: no IR- interrupt chip in /proc/interrupts; vfio refuses*'
            (Get-Check $checks 'Kernel arguments').Fix | Should -Be 'Run Enable-IommuBoot, then reboot the host.'
            (Get-Check $checks 'IOMMU group' '0000:02:00.0').Status | Should -Be 'Fail'
            (Get-Check $checks 'IOMMU group' '0000:01:00.0').Status | Should -Be 'Fail'
            # Without groups there are no partners to judge: the group check's failure says it.
            @($checks | Where-Object Name -eq 'Host-critical partners') | Should -HaveCount 0
            (Get-Check $checks 'vfio modules').Status | Should -Be 'Warn'
            (Get-Check $checks 'vfio modules').Detail | Should -Be 'not loaded: vfio, vfio_pci, vfio_iommu_type1'
            (Get-Check $checks 'nouveau').Status | Should -Be 'Warn'
            (Get-Check $checks 'nouveau').Detail | Should -BeLike 'nouveau drives 0000:02:00.0*'
            (Get-Check $checks 'nouveau').Fix | Should -Be 'Run Disable-NouveauDriver, then reboot the host.'
            (Get-Check $checks 'libvirt').Detail | Should -BeLike "${Unreachable}: virsh cannot connect to libvirt*"
            (Get-Check $checks 'Reset' '0000:02:00.0').Detail | Should -BeLike 'cannot tell: no reset_method attribute*'
            Test-GpuVirtHost -Root $h.Root -Connect $Unreachable -Quiet | Should -BeExactly $false
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'says the IOMMU does not cover a GPU without a group on a host that has groups, not that the IOMMU is off' {
        $h = New-FixtureHost -Name Seed -Configure {
            param($b)
            ($b.Devices | Where-Object Address -eq '0000:02:00.0').IommuGroup = $null
        }
        try {
            $checks = @(Test-GpuVirtHost -Root $h.Root -Connect $Reachable)
            $groups = @(Get-ChildItem "$($h.Root)/sys/kernel/iommu_groups").Count
            $groups | Should -BeGreaterThan 0
            $quadro = Get-Check $checks 'IOMMU group' '0000:02:00.0'
            $quadro.Status | Should -Be 'Fail'
            $quadro.Detail | Should -Be "no IOMMU group, though the IOMMU is on ($groups groups): it does not cover this function, which cannot be assigned"
            $quadro.Fix | Should -Not -BeLike '*Enable-IommuBoot*'
            $quadro.Fix | Should -BeLike '*DMAR (Intel) or IVRS (AMD)*'
            (Get-Check $checks 'IOMMU group' '0000:01:00.0').Detail | Should -Not -BeLike 'no IOMMU group*'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'fails a GPU whose IOMMU group holds a device the running host needs, and passes one whose group does not' {
        # The seed host as it runs (InUse), with the Quadro's slot sharing its group with eth0: bond0 under br0, which
        # carries the default route. The SATA controller behind / shares group 8 with the LPC bridge, no GPU.
        $h = New-FixtureHost -Name InUse -Configure {
            param($b)
            ($b.Devices | Where-Object Address -eq '0000:00:19.0').IommuGroup = 13
        }
        try {
            $checks = @(Test-GpuVirtHost -Root $h.Root -Connect $Reachable)
            $quadro = Get-Check $checks 'Host-critical partners' '0000:02:00.0'
            $quadro.Status | Should -Be 'Fail'
            $quadro.Detail | Should -Be ('group 13 holds what the running host needs: 0000:00:19.0 (Ethernet controller, driver e1000e): ' +
                'network interface br0 carries the IPv4 default route, the IPv4 route 192.168.1.0/24 (br0 over bond0 over eth0). Assigning the GPU takes the whole group from the host')
            $quadro.Fix | Should -BeLike 'Move the GPU to a slot whose IOMMU group holds nothing the host needs*Get-IommuGroup*'
            # The same verdict as the group's own HostCritical members.
            @((Get-IommuGroup 13 -Root $h.Root).HostCritical | ForEach-Object { $_.Substring(0, $_.IndexOf(": ")) } | Select-Object -Unique) | Should -Be @('0000:00:19.0')
            $p4 = Get-Check $checks 'Host-critical partners' '0000:01:00.0'
            $p4.Status | Should -Be 'Pass'
            $p4.Fix | Should -BeNullOrEmpty
            Test-GpuVirtHost -Root $h.Root -Connect $Reachable -Quiet | Should -BeExactly $false
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'warns about unsafe interrupts, a pending reboot, shared and unviable groups, the console GPU, reset and the ACS override' {
        $h = New-FixtureHost -Name TwoSocket -Configure {
            param($b)
            $b.CpuFlags = 'fpu vme de pse svm'
            $b.Cmdline = 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro iommu=pt pcie_acs_override=downstream,multifunction'
            $b.IommuUnits.Add('ivhd0')
            $b.AddFile('/dev/kvm', '')
            $b.AddFile('/proc/interrupts', $Interrupts.NoIr)
            $b.AddFile('/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts', "Y`n")
            $b.AddFile('/etc/default/grub', "GRUB_CMDLINE_LINUX=`"iommu=pt amd_iommu=on`"`n")
            $b.AddFile('/etc/debian_version', "12.8`n")
            foreach ($m in 'vfio', 'vfio_pci', 'vfio_iommu_type1') { $b.LoadedModules.Add($m) }
            # An RX 5700 (Navi 10, the reset bug) on vfio-pci in a group of its own; the L4 with no reset method.
            $null = $b.Add('0000:c1:00.0', 0x1002, 0x731f, 0x030000, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.IommuGroup = 70; $d.Driver = 'vfio-pci'; $d.ResetMethod = 'bus' })
            $l4 = $b.Devices | Where-Object Address -eq '0000:81:00.0'
            $l4.ResetMethod = ''; $l4.Flr = $false
            ($b.Devices | Where-Object Address -eq '0000:07:00.0').ResetMethod = 'flr bus'
        }
        try {
            $checks = @(Test-GpuVirtHost -Root $h.Root -Connect $Reachable)
            (Get-Check $checks 'CPU virtualization').Detail | Should -Be 'AMD-V (svm in /proc/cpuinfo)'
            (Get-Check $checks 'IOMMU active').Status | Should -Be 'Pass'
            $ir = Get-Check $checks 'Interrupt remapping'
            $ir.Status | Should -Be 'Warn'
            $ir.Detail | Should -BeLike '*allow_unsafe_interrupts=Y*'
            $kernel = Get-Check $checks 'Kernel arguments'
            $kernel.Status | Should -Be 'Warn'
            $kernel.Detail | Should -Be 'configured in /etc/default/grub: iommu=pt amd_iommu=on; running: iommu=pt; they differ: a reboot is pending'
            $kernel.Fix | Should -BeLike 'Reboot the host*Get-IommuBootStatus*'

            $shared = Get-Check $checks 'IOMMU group' '0000:07:00.0'
            $shared.Status | Should -Be 'Warn'
            $shared.Detail | Should -BeLike 'group 22: it shares the group with 0000:08:00.0 (*, driver mlx5_core)*; not viable: *'
            $shared.Fix | Should -BeLike '*Get-IommuGroup*Dismount-GpuHostDriver*'
            $amd = Get-Check $checks 'IOMMU group' '0000:04:00.0'
            $amd.Status | Should -Be 'Warn'
            $amd.Detail | Should -BeLike "group 20: not viable: 0000:04:00.0: bound to host driver 'amdgpu'*"
            (Get-Check $checks 'IOMMU group' '0000:81:00.0').Status | Should -Be 'Pass'

            $console = Get-Check $checks 'Console GPU' '0000:0b:00.0'
            $console.Status | Should -Be 'Warn'
            $console.Detail | Should -BeLike 'boot_vga is 1*'
            (Get-Check $checks 'Console GPU' '0000:04:00.0').Status | Should -Be 'Pass'

            $bug = Get-Check $checks 'Reset' '0000:c1:00.0'
            $bug.Status | Should -Be 'Warn'
            $bug.Detail | Should -Be 'AMD Navi 10 (Radeon RX 5600/5700) has a known reset bug: it may not come back after a guest stops (reset_method: bus)'
            $none = Get-Check $checks 'Reset' '0000:81:00.0'
            $none.Status | Should -Be 'Warn'
            $none.Detail | Should -Be 'reset_method: none; no FLR in config space: the kernel has no way to reset it between guests'
            (Get-Check $checks 'Reset' '0000:07:00.0').Status | Should -Be 'Pass'

            $acs = Get-Check $checks 'ACS override'
            $acs.Status | Should -Be 'Warn'
            $acs.Detail | Should -BeLike 'pcie_acs_override=downstream,multifunction: *not isolated*'

            # The A40's SR-IOV vGPU functions make it a vGPU host: Test-VgpuHost's checks, nouveau's among them.
            @($checks | Where-Object Name -like 'vGPU: *').Name | Should -Be @('vGPU: nouveau blacklisted', 'vGPU: nvidia_vgpu_vfio loaded', 'vGPU: nvidia-vgpu-mgr.service enabled', 'vGPU: vGPU parent devices present')
            (Get-Check $checks 'vGPU: nvidia_vgpu_vfio loaded').Status | Should -Be 'Fail'
            (Get-Check $checks 'vGPU: vGPU parent devices present').Status | Should -Be 'Pass'
            @($checks | Where-Object Name -eq 'nouveau') | Should -HaveCount 0
            (Get-Check $checks 'libvirt').Status | Should -Be 'Pass'
        }
        finally { $h | Remove-FixtureHost }
    }
}
