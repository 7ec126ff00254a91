# The real kernel is the judge: these tests run inside the QEMU guest of tests/kernel/run.sh (Debian's 6.1 kernel,
# an emulated Intel IOMMU) against its real sysfs, with the host's build of the module. They are not part of the
# fixture suite: build.ps1 runs them through tests/kernel/cmdlets.sh.
BeforeAll {
    if ($env:GPUVIRT_KERNEL_GUEST -ne '1') { throw 'RealKernel.Tests.ps1 runs only inside the guest of tests/kernel/run.sh.' }
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot '../Pester/TestHelpers.psm1') -Force

    function Get-Driver([string] $Address) {
        $link = "/sys/bus/pci/devices/$Address/driver"
        if (Test-Path $link) { Split-Path -Leaf (Get-Item $link).LinkTarget } else { $null }
    }

    # A process that holds a device through VFIO as QEMU does (tests/kernel/helper/vfio_hold.c, built by run.sh):
    # the container, the group set to it, the type 1 IOMMU, then VFIO_GROUP_GET_DEVICE_FD for the device.
    function Start-VfioHolder([string] $Group, [string] $Device) {
        $psi = [Diagnostics.ProcessStartInfo]::new($env:GPUVIRT_VFIO_HOLD)
        $psi.ArgumentList.Add($Group); $psi.ArgumentList.Add($Device)
        $psi.RedirectStandardInput = $true; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
        $p = [Diagnostics.Process]::Start($psi)
        $line = $p.StandardOutput.ReadLine()
        if ($line -ne "holding $($p.Id)") { throw "vfio-hold $Group $Device did not start: $line $($p.StandardError.ReadToEnd())" }
        $p
    }
    function Stop-VfioHolder($Process) { $Process.StandardInput.Close(); $null = $Process.WaitForExit(30000) }

    # Runs a change that must be refused (its command line with -ErrorAction Stop) and returns the error and how long the
    # refusal took; the seconds go to the output and to $RESULTS/waits.txt.
    function Measure-Refusal([string] $What, [scriptblock] $Change) {
        $err = $null
        $watch = [Diagnostics.Stopwatch]::StartNew()
        try { & $Change } catch { $err = $_ }
        $watch.Stop()
        $line = '{0}: {1:0.00} s' -f $What, $watch.Elapsed.TotalSeconds
        Write-Host $line
        Add-Content -Path (Join-Path $env:RESULTS 'waits.txt') -Value $line
        [pscustomobject]@{ Error = $err; Seconds = $watch.Elapsed.TotalSeconds }
    }

    $script:Gpus = @(Get-GpuDevice)
    $script:VirtioGpu = $Gpus | Where-Object { $_.VendorId -eq 0x1af4 }
    $script:StdVga = $Gpus | Where-Object { $_.Address.ToString() -eq '0000:00:02.0' }
    $script:SecondaryVga = $Gpus | Where-Object { $_.VendorId -eq 0x1234 -and $_.Address.ToString() -ne '0000:00:02.0' }
}

Describe 'Inventory on a real kernel' {
    It 'Get-PciDevice agrees with lspci -Dnnk in the same guest' {
        $expected = @(Get-LspciDevice)
        $actual = @(Get-PciDevice)
        $actual.Count | Should -Be $expected.Count
        $actual.Count | Should -BeGreaterThan 8
        for ($i = 0; $i -lt $expected.Count; $i++) {
            $actual[$i].Address.ToString() | Should -Be $expected[$i].Address
            $actual[$i].Ids | Should -Be $expected[$i].Ids
            $actual[$i].ClassId | Should -Be $expected[$i].ClassId
            $rev = if ($actual[$i].Revision) { '{0:x2}' -f $actual[$i].Revision } else { $null }
            $rev | Should -Be $expected[$i].Revision
            $actual[$i].Driver | Should -Be $expected[$i].Driver -Because "driver of $($expected[$i].Address)"
        }
    }

    It 'Get-GpuDevice finds the three display functions with their real classes and the audio companion' {
        $Gpus.Count | Should -Be 3
        $StdVga.ClassCode | Should -Be 0x030000
        $StdVga.IsBootVga | Should -BeTrue
        $VirtioGpu.ClassCode | Should -Be 0x038000
        $VirtioGpu.Companions.Count | Should -Be 1
        # Companions are addresses in the kernel's form; the function they name is read again by address.
        (Get-PciDevice -Address $VirtioGpu.Companions[0]).ClassCode -shr 8 | Should -Be 0x0403
        $VirtioGpu.Companions[0] | Should -BeLike '*.1'
        $SecondaryVga.ClassCode -shr 16 | Should -Be 0x03
        $SecondaryVga.ParentBridge | Should -Not -BeNullOrEmpty
    }

    It 'Get-IommuGroup shows the GPU and audio group and the shared group behind the PCIe-to-PCI bridge' {
        $gpuGroup = $VirtioGpu | Get-IommuGroup
        $gpuGroup.Endpoints | Should -Be @($VirtioGpu.Address, $VirtioGpu.Companions[0])
        $shared = $SecondaryVga | Get-IommuGroup
        @(Get-PciDevice -Address $shared.Devices | Where-Object IsBridge).Count | Should -BeGreaterOrEqual 1
        $shared.Endpoints.Count | Should -BeGreaterOrEqual 2
        $shared.Type | Should -BeIn @('identity', 'DMA', 'DMA-FQ')
    }

    It 'Get-IommuBootStatus reads the real /proc/cmdline and reports the IOMMU active' {
        $status = Get-IommuBootStatus
        $status.IommuActive | Should -BeTrue
        (Get-Content /proc/cmdline) | Should -Match 'intel_iommu=on'
    }
}

Describe 'Test-GpuVirtHost on a real kernel' {
    It 'judges KVM, the IOMMU, interrupt remapping, vfio and each GPU''s host-critical partners as the guest has them' {
        function Get-Verdict($Checks, [string] $Name, [string] $Device) {
            $found = @($Checks | Where-Object { $_.Name -eq $Name -and ((-not $Device) -or "$($_.Device)" -eq $Device) })
            $found.Count | Should -Be 1 -Because "one '$Name' check $Device"
            "$($found[0].Status)"
        }
        # The e1000 behind the PCIe-to-PCI bridge shares the secondary VGA's group; give it a route, and the host needs it.
        $nic = @(Get-PciDevice -Address ($SecondaryVga | Get-IommuGroup).Endpoints | Where-Object { ($_.ClassCode -shr 8) -eq 0x0200 })[0]
        $ifname = @(Get-ChildItem /sys/class/net | Where-Object { (Test-Path "$($_.FullName)/device") -and (Split-Path -Leaf (Get-Item "$($_.FullName)/device").LinkTarget) -eq $nic.Address.ToString() })[0].Name
        & ip link set dev $ifname up
        & ip route add 10.99.0.0/24 dev $ifname
        $LASTEXITCODE | Should -Be 0
        try { $checks = @(Test-GpuVirtHost -Connect test:///default) }
        finally {
            & ip route del 10.99.0.0/24 dev $ifname
            & ip link set dev $ifname down
        }

        Get-Verdict $checks '/dev/kvm' | Should -Be $(if (Test-Path /dev/kvm) { 'Pass' } else { 'Fail' })
        @(Get-ChildItem /sys/class/iommu).Count | Should -BeGreaterThan 0
        Get-Verdict $checks 'IOMMU active' | Should -Be 'Pass'
        (Get-Content -Raw /proc/interrupts) | Should -Match ' IR-'
        Get-Verdict $checks 'Interrupt remapping' | Should -Be 'Pass'
        $missing = @('vfio', 'vfio_pci', 'vfio_iommu_type1' | Where-Object { -not (Test-Path "/sys/module/$_") })
        Get-Verdict $checks 'vfio modules' | Should -Be $(if ($missing.Count -eq 0) { 'Pass' } else { 'Warn' })
        Get-Verdict $checks 'Console GPU' $StdVga.Address.ToString() | Should -Be 'Warn'
        # No mounted disk (the guest's disk is mounted only by its own test) and no other route: only the routed e1000's group fails.
        Get-Verdict $checks 'Host-critical partners' $SecondaryVga.Address.ToString() | Should -Be 'Fail'
        @($checks | Where-Object { $_.Name -eq 'Host-critical partners' -and $_.Status -eq 'Fail' }).Detail | Should -BeLike "*$($nic.Address) (*network interface $ifname carries the IPv4 route 10.99.0.0/24*"
        Get-Verdict $checks 'Host-critical partners' $VirtioGpu.Address.ToString() | Should -Be 'Pass'
        Get-Verdict $checks 'Host-critical partners' $StdVga.Address.ToString() | Should -Be 'Pass'
        Get-Verdict $checks 'libvirt' | Should -Be 'Pass'
    }
}

Describe 'Host driver detach on a real kernel' {
    It 'Dismount-GpuHostDriver binds the virtio-gpu and its audio function to vfio-pci, and Mount-GpuHostDriver gives them back' {
        $addresses = @($VirtioGpu.Address.ToString(), $VirtioGpu.Companions[0])
        $before = $addresses | ForEach-Object { Get-Driver $_ }
        $before | Should -Not -Contain 'vfio-pci'
        ($VirtioGpu | Get-IommuGroup).IsViable | Should -BeFalse

        # When the kernel made the virtio-gpu a framebuffer console, it is host-critical: -Force says the test means it.
        $addresses | Dismount-GpuHostDriver -Method Sysfs -Confirm:$false -Force:$VirtioGpu.IsHostCritical -WarningAction SilentlyContinue
        $addresses | ForEach-Object { Get-Driver $_ } | Should -Be @('vfio-pci', 'vfio-pci')
        "/dev/vfio/$($VirtioGpu.IommuGroup)" | Should -Exist
        ($VirtioGpu | Get-IommuGroup).IsViable | Should -BeTrue

        $addresses | Mount-GpuHostDriver -Method Sysfs -Confirm:$false
        $addresses | ForEach-Object { Get-Driver $_ } | Should -Be $before
        ($VirtioGpu | Get-IommuGroup).IsViable | Should -BeFalse
    }

    It 'Mount-GpuHostDriver refuses in seconds, naming the pid, while a process holds the vfio-pci device through VFIO' {
        $addresses = @($VirtioGpu.Address.ToString(), $VirtioGpu.Companions[0])
        $before = $addresses | ForEach-Object { Get-Driver $_ }
        $addresses | Dismount-GpuHostDriver -Method Sysfs -Confirm:$false -Force:$VirtioGpu.IsHostCritical -WarningAction SilentlyContinue
        $holder = Start-VfioHolder $VirtioGpu.IommuGroup $addresses[0]
        try {
            $refused = Measure-Refusal 'Mount-GpuHostDriver of a vfio-pci device held through VFIO refused in' {
                Mount-GpuHostDriver $addresses[0] -Method Sysfs -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue
            }
            $refused.Seconds | Should -BeLessThan 15
            $refused.Error.FullyQualifiedErrorId | Should -Be 'DeviceInUse,GpuVirt.Commands.MountGpuHostDriverCommand'
            $refused.Error.Exception.Message | Should -BeLike "*pid $($holder.Id) (vfio-hold) holds /dev/vfio/$($VirtioGpu.IommuGroup)*"
            Get-Driver $addresses[0] | Should -Be 'vfio-pci'
            (Get-Content "/sys/bus/pci/devices/$($addresses[0])/driver_override") | Should -Be 'vfio-pci'
        }
        finally { Stop-VfioHolder $holder }
        $addresses | Mount-GpuHostDriver -Method Sysfs -Confirm:$false
        $addresses | ForEach-Object { Get-Driver $_ } | Should -Be $before
    }
}

Describe 'What the host needs, on a real kernel' {
    It 'a mounted filesystem on the guest disk makes its virtio-blk controller host-critical, and Dismount refuses it' {
        $disk = @(Get-PciDevice | Where-Object { $_.VendorId -eq 0x1af4 -and ($_.ClassCode -shr 8) -eq 0x0100 })
        $disk.Count | Should -Be 1 -Because 'run.sh gives the guest one virtio-blk disk'
        $disk = $disk[0]
        $disk.HostCritical | Should -BeNullOrEmpty
        $driver = Get-Driver $disk.Address
        $block = @(Get-ChildItem "/sys/bus/pci/devices/$($disk.Address)/virtio*/block" -Directory | Get-ChildItem)[0].Name
        $mountPoint = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-disk-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $mountPoint
        & mount -t ext4 "/dev/$block" $mountPoint
        $LASTEXITCODE | Should -Be 0
        try {
            $now = Get-PciDevice $disk.Address
            $now.HostCritical | Should -BeLike "*mounted filesystem $mountPoint (ext4 on /dev/$block*"
            { Dismount-GpuHostDriver $disk.Address -Method Sysfs -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'HostCriticalDevice,GpuVirt.Commands.DismountGpuHostDriverCommand'
            Get-Driver $disk.Address | Should -Be $driver
        }
        finally { & umount $mountPoint; Remove-Item $mountPoint }
        (Get-PciDevice $disk.Address).HostCritical | Should -BeNullOrEmpty
    }
}

Describe 'vGPU mediated devices on a real kernel' {
    BeforeAll {
        # Make the std VGA a mediated-device parent: the project's test module binds through driver_override.
        # It is the console GPU (boot_vga), so host-critical: -Force says the test means it.
        Dismount-GpuHostDriver -Address 0000:00:02.0 -Driver gpuvirt_mdev_parent -Method Sysfs -Confirm:$false -Force -WarningAction SilentlyContinue
    }

    AfterAll {
        Get-VgpuDevice -Parent 0000:00:02.0 -ErrorAction SilentlyContinue | Where-Object Active | Remove-VgpuDevice -Confirm:$false -ErrorAction SilentlyContinue
        Mount-GpuHostDriver -Address 0000:00:02.0 -Method Sysfs -Confirm:$false -ErrorAction SilentlyContinue
    }

    It 'Get-VgpuType lists the PCI parent types from the kernel' {
        (Get-GpuDevice 00:02.0).SupportsMdev | Should -BeTrue
        $types = @(Get-GpuDevice 00:02.0 | Get-VgpuType)
        $types.Count | Should -BeGreaterOrEqual 3
        $types | ForEach-Object { $_.DeviceApi | Should -Be 'vfio-pci' }
        ($types | Where-Object Name -eq 'GRID T4-1Q').Framebuffer | Should -Be '1024M'
        ($types | Where-Object Name -eq 'GRID T4-1Q').Series | Should -Be 'Q'
    }

    It 'New-VgpuDevice creates real devices until none is left, one more fails, and Remove-VgpuDevice removes them all' {
        $type = Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-4Q'
        $free = $type.AvailableInstances
        $free | Should -BeGreaterThan 0
        $created = @(New-VgpuDevice -Parent 00:02.0 -Type $type.Id -Count $free -Confirm:$false)
        $created.Count | Should -Be $free
        foreach ($device in $created) {
            "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Exist
            $device.IommuGroup | Should -Not -BeNullOrEmpty
            $device.Active | Should -BeTrue
        }
        (Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-4Q').AvailableInstances | Should -Be 0
        (Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-1Q').AvailableInstances | Should -BeLessThan 16 -Because 'types share one framebuffer pool'

        { New-VgpuDevice -Parent 00:02.0 -Type $type.Id -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand'

        $created | Remove-VgpuDevice -Confirm:$false
        foreach ($device in $created) { "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Not -Exist }
        (Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-4Q').AvailableInstances | Should -Be $free
    }

    It 'a process holding an mdev through VFIO: Remove-VgpuDevice refuses in seconds naming the pid, and Dismount of its parent is refused' {
        $type = Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-1Q'
        $device = New-VgpuDevice -Parent 00:02.0 -Type $type.Id -Confirm:$false
        $holder = Start-VfioHolder $device.IommuGroup $device.Uuid
        try {
            $refused = Measure-Refusal 'Remove-VgpuDevice of an mdev held through VFIO refused in' {
                $device | Remove-VgpuDevice -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue
            }
            $refused.Seconds | Should -BeLessThan 15
            $refused.Error.FullyQualifiedErrorId | Should -Be 'VgpuDeviceBusy,GpuVirt.Commands.RemoveVgpuDeviceCommand'
            $refused.Error.Exception.Message | Should -BeLike "*pid $($holder.Id) (vfio-hold) holds /dev/vfio/$($device.IommuGroup)*"
            "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Exist
        }
        finally { Stop-VfioHolder $holder }
        $device | Remove-VgpuDevice -Confirm:$false
        "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Not -Exist
    }

    It 'Dismount-GpuHostDriver of the mdev parent with live vGPUs is refused, listing them, and they stay' {
        $type = Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-2Q'
        $devices = @(New-VgpuDevice -Parent 00:02.0 -Type $type.Id -Count 2 -Confirm:$false)
        try {
            $refused = Measure-Refusal 'Dismount-GpuHostDriver of an mdev parent with live vGPUs refused in' {
                Dismount-GpuHostDriver 00:02.0 -Method Sysfs -Force -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue
            }
            $refused.Seconds | Should -BeLessThan 15
            $refused.Error.FullyQualifiedErrorId | Should -Be 'VgpuParentInUse,GpuVirt.Commands.DismountGpuHostDriverCommand'
            foreach ($device in $devices) { $refused.Error.Exception.Message | Should -BeLike "*$($device.Uuid)*" }
            Get-Driver 0000:00:02.0 | Should -Be 'gpuvirt_mdev_parent'
            foreach ($device in $devices) { "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Exist }
        }
        finally { $devices | Remove-VgpuDevice -Confirm:$false }
        foreach ($device in $devices) { "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Not -Exist }
    }

    It 'Get-GpuVirtChange | Undo-GpuVirtChange takes back a real bind to vfio-pci and a real vGPU, and marks the records undone' {
        $audio = $VirtioGpu.Companions[0]
        $driver = Get-Driver $audio
        $driver | Should -Not -Be 'vfio-pci'
        $mdevctl = [bool](Get-Command mdevctl -CommandType Application -ErrorAction SilentlyContinue)
        $audio | Dismount-GpuHostDriver -Method Sysfs -Confirm:$false -WarningAction SilentlyContinue
        Get-Driver $audio | Should -Be 'vfio-pci'
        $type = Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-1Q'
        $device = New-VgpuDevice -Parent 00:02.0 -Type $type.Id -Persistent:$mdevctl -Confirm:$false
        "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Exist
        if ($mdevctl) { (& mdevctl list --defined --uuid $device.Uuid) -join "`n" | Should -Match $device.Uuid }

        $records = @(Get-GpuVirtChange -Last 2)
        $records.Count | Should -Be 2
        $records[0].Target | Should -BeLike "*$($device.Uuid)*"
        $records[1].Target | Should -BeLike "*$audio*"
        $records | ForEach-Object { $_.Undone | Should -BeFalse }
        $records | Undo-GpuVirtChange -Confirm:$false -WarningAction SilentlyContinue

        Get-Driver $audio | Should -Be $driver
        (Get-Content "/sys/bus/pci/devices/$audio/driver_override") | Should -Be '(null)'
        "/sys/bus/mdev/devices/$($device.Uuid)" | Should -Not -Exist
        if ($mdevctl) { (& mdevctl list --defined --uuid $device.Uuid) -join "`n" | Should -Not -Match $device.Uuid }
        foreach ($record in $records) { (Get-GpuVirtChange -Id $record.Id).Undone | Should -BeTrue -Because "record $($record.Id) ($($record.Action)) was undone" }
        $undo = @(Get-GpuVirtChange -Last 2)
        ($undo.Undoes | Sort-Object) | Should -Be ($records.Id | Sort-Object)
    }

    It 'the kernel itself refuses a create beyond capacity (ENOSPC) and the module reports it clearly' {
        $type = Get-VgpuType -Parent 00:02.0 -Name 'GRID T4-16Q'
        $first = New-VgpuDevice -Parent 00:02.0 -Type $type.Id -Confirm:$false
        try {
            # Write past the module's own check: straight to create, as a second admin's shell would.
            { [IO.File]::WriteAllText((Join-Path $type.Directory 'create'), [guid]::NewGuid().ToString()) } | Should -Throw '*No space left on device*'
        }
        finally { $first | Remove-VgpuDevice -Confirm:$false }
    }
}
