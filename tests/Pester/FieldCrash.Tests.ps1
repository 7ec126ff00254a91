# A journaled change killed between what it changes and its journal record (issue 29, item 18): the child pwsh that
# runs it really dies (the executor's test hook GPUVIRT_TEST_KILL_AT makes the process SIGKILL itself at a named point),
# and the next command, in a new pwsh, must finish the change and journal it or take it back, so that
# Undo-GpuVirtChange can take back whatever stands. Real virsh on the embedded QEMU driver for the guests; the NVIDIA
# mediated-device driver and grub2-mkconfig are stand-ins (no kernel or boot loader is behind the fixture tree).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uri = $Libvirt.Uri
    $script:Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
    $script:Hosts = [System.Collections.Generic.List[object]]::new()

    function New-CrashHost([switch] $Boot) {
        $b = New-FixtureHost -Name Seed
        if ($Boot) { [GpuVirt.Fixtures.BootFixture]::Rhel7($b.Root, 'grub/rhel7-sysconfig-grub', $false, $false) }
        $script:Hosts.Add($b)
        $b.Root
    }

    function Invoke-ChildPwsh {
        <#
            Runs $Script in a new pwsh that imports the module, with GPUVIRT_TEST_KILL_AT set to $KillAt when given;
            returns its exit code and what it wrote.
        #>
        param([Parameter(Mandatory)] [string] $Script, [string] $KillAt)
        $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in @([Environment]::GetCommandLineArgs()[0], '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$env:GPUVIRT_MODULE'; $Script")) { $psi.ArgumentList.Add($a) }
        $psi.WorkingDirectory = [IO.Path]::GetTempPath()
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.Environment['GPUVIRT_TEST_KILL_AT'] = $KillAt
        $p = [System.Diagnostics.Process]::Start($psi)
        $err = $p.StandardError.ReadToEndAsync()
        $out = $p.StandardOutput.ReadToEnd()
        $p.WaitForExit(300000) | Should -BeTrue -Because 'the child ends within five minutes'
        [pscustomobject]@{ ExitCode = $p.ExitCode; Text = $out + $err.Result }
    }

    function Invoke-Killed([string] $Script, [string] $KillAt) {
        $r = Invoke-ChildPwsh -Script $Script -KillAt $KillAt
        # 137: killed by SIGKILL, at the point named, before it could journal anything.
        $r.ExitCode | Should -Be 137 -Because "the command was killed at '$KillAt' ($($r.Text))"
        $r
    }

    function Get-Pending([string] $Root) { Join-Path $Root 'var/lib/gpuvirt/change-pending.json' }

    function Get-Hostdevs([string] $Domain) {
        @(([xml](Get-InactiveXml $Libvirt $Domain)).domain.devices.hostdev | Where-Object { $_ })
    }
}

AfterAll {
    $script:Libvirt | Remove-EmbeddedLibvirt
    foreach ($h in $script:Hosts) { $h | Remove-FixtureHost }
}

Describe 'Item 18: Add-GpuHostdev and Remove-GpuHostdev killed between virsh and the journal' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 18: Add-GpuHostdev killed after the attach and before its record: the next command in a new pwsh journals it, and Undo-GpuVirtChange takes it back' {
        $root = New-CrashHost
        $vm = New-TestGuest $Libvirt
        $before = Get-InactiveXml $Libvirt $vm
        # -WhatIf writes no intent.
        $null = Invoke-ChildPwsh "Add-GpuHostdev $vm -Address 02:00.0 -Root '$root' -Connect '$Uri' -WhatIf -WarningAction SilentlyContinue"
        Test-Path (Get-Pending $root) | Should -BeFalse

        $null = Invoke-Killed "Add-GpuHostdev $vm -Address 02:00.0 -Root '$root' -Connect '$Uri' -WarningAction SilentlyContinue" -KillAt 'before-journal'
        # What the issue saw: the guest holds the GPU and the journal does not know it. The intent does.
        @(Get-Hostdevs $vm).Count | Should -Be 1
        @(Get-GpuVirtChange -Root $root).Count | Should -Be 0
        Test-Path (Get-Pending $root) | Should -BeTrue

        # The next journaled command, in a new pwsh: the interrupted attach is journaled first, then its own change made.
        $next = Invoke-ChildPwsh "Add-GpuHostdev $vm -Address 00:19.0 -Unmanaged -Root '$root' -Connect '$Uri'"
        $next.ExitCode | Should -Be 0 -Because $next.Text
        $next.Text | Should -Match 'Finished the interrupted Add-GpuHostdev: Attach PCI hostdev 0000:02:00\.0'
        Test-Path (Get-Pending $root) | Should -BeFalse
        $changes = @(Get-GpuVirtChange -Root $root | Sort-Object Id)
        $changes.Command | Should -Be @('Add-GpuHostdev', 'Add-GpuHostdev')
        $changes[0].Action | Should -BeLike 'Attach PCI hostdev 0000:02:00.0*'
        @(Get-Hostdevs $vm).Count | Should -Be 2

        # Both stand on the record: the undo takes them back, and the definition is as it was.
        $undone = Undo-GpuVirtChange -Root $root -Last 2 -Confirm:$false
        $undone.Undoes | Should -Be @(2, 1)
        @(Get-Hostdevs $vm).Count | Should -Be 0
        Get-InactiveXml $Libvirt $vm | Should -Be $before
    }

    It 'Item 18: Add-GpuHostdev killed right after virsh attached, before its intent noted it: the next command takes the attach back, with no record' {
        $root = New-CrashHost
        $vm = New-TestGuest $Libvirt
        $before = Get-InactiveXml $Libvirt $vm
        $null = Invoke-Killed "Add-GpuHostdev $vm -Address 02:00.0 -Root '$root' -Connect '$Uri' -WarningAction SilentlyContinue" -KillAt 'after-step-1'
        @(Get-Hostdevs $vm).Count | Should -Be 1

        $next = Invoke-ChildPwsh "Add-GpuHostdev $vm -Address 00:19.0 -Unmanaged -Root '$root' -Connect '$Uri'"
        $next.ExitCode | Should -Be 0 -Because $next.Text
        $next.Text | Should -Match 'Took back the interrupted Add-GpuHostdev \(Attach PCI hostdev 0000:02:00\.0'
        $hostdevs = @(Get-Hostdevs $vm)
        $hostdevs.Count | Should -Be 1
        $hostdevs[0].source.address.slot | Should -Be '0x19'
        $changes = @(Get-GpuVirtChange -Root $root)
        $changes.Count | Should -Be 1
        $changes[0].Action | Should -BeLike 'Attach PCI hostdev 0000:00:19.0*'
        $null = Undo-GpuVirtChange -Root $root -Id 1 -Confirm:$false
        Get-InactiveXml $Libvirt $vm | Should -Be $before
    }

    It 'Item 18: Remove-GpuHostdev killed after the detach and before its record: Undo-GpuVirtChange itself finishes it first, and then gives the GPU back' {
        $root = New-CrashHost
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 02:00.0 -Root $root -Connect $Uri -WarningAction SilentlyContinue
        $attached = Get-InactiveXml $Libvirt $vm
        $null = Invoke-Killed "Remove-GpuHostdev $vm -Address 02:00.0 -Root '$root' -Connect '$Uri' -Confirm:`$false" -KillAt 'before-journal'
        @(Get-Hostdevs $vm).Count | Should -Be 0
        @(Get-GpuVirtChange -Root $root).Count | Should -Be 1

        $next = Invoke-ChildPwsh "Undo-GpuVirtChange -Root '$root' -Last 1 -Confirm:`$false | ForEach-Object { 'undid ' + `$_.Undoes }"
        $next.ExitCode | Should -Be 0 -Because $next.Text
        $next.Text | Should -Match 'Finished the interrupted Remove-GpuHostdev'
        $next.Text | Should -Match 'undid 2'
        (Get-GpuVirtChange -Root $root | Sort-Object Id).Command | Should -Be @('Add-GpuHostdev', 'Remove-GpuHostdev', 'Undo-GpuVirtChange')
        Get-InactiveXml $Libvirt $vm | Should -Be $attached
    }

    It 'Item 18: when the journal cannot take the record (its path is a directory), Add-GpuHostdev takes the attach back and says so' {
        $root = New-CrashHost
        $vm = New-TestGuest $Libvirt
        $before = Get-InactiveXml $Libvirt $vm
        $null = New-Item -ItemType Directory (Join-Path $root 'var/lib/gpuvirt/journal.json')
        { Add-GpuHostdev $vm -Address 02:00.0 -Root $root -Connect $Uri -WarningAction SilentlyContinue -ErrorAction Stop } |
            Should -Throw -ErrorId 'JournalWriteFailed,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage '*the change is taken back rather than left without a record*nothing was changed*'
        Get-InactiveXml $Libvirt $vm | Should -Be $before
        Test-Path (Get-Pending $root) | Should -BeFalse
    }
}

Describe 'Item 18: Set-GuestMmioSpace killed between define and the journal' {
    BeforeAll {
        $script:MmioRoot = New-CrashHost
        $GiB = [uint64]1 -shl 30
        $MiB = [uint64]1 -shl 20
        $big = New-FixtureHost -Name Seed -Configure {
            param($b)
            $b.PhysicalAddressBits = 46
            $b.CpuFlags = 'fpu vme de pse vmx'
            $null = $b.Add('0000:00:10.0', 0x8086, 0x347a, 0x060400, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.IommuGroup = 30; $d.Driver = 'pcieport' })
            $gpu = $b.Add('0000:41:00.0', 0x10de, 0x20b5, 0x030200, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.Parent = '0000:00:10.0'; $d.IommuGroup = 40; $d.Driver = 'vfio-pci' })
            $gpu.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem32(0, 16 * $MiB))
            $gpu.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(1, 128 * $GiB))
            $gpu.Bars.Add([GpuVirt.Fixtures.FixtureBar]::Mem64Pref(3, 32 * $MiB))
        }
        $script:Hosts.Add($big)
        $script:MmioRoot = $big.Root
    }
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 18: killed before its record (<KillAt>): the next command in a new pwsh <Outcome>, and nothing stands without a record' -ForEach @(
        @{ KillAt = 'before-journal'; Outcome = 'journals it and Undo-GpuVirtChange gives the definition back' }
        @{ KillAt = 'after-step-1'; Outcome = 'defines the guest as it was' }
    ) {
        $root = $MmioRoot
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 41:00.0 -Root $root -Connect $Uri -WarningAction SilentlyContinue
        $planned = Get-InactiveXml $Libvirt $vm
        $known = @(Get-GpuVirtChange -Root $root).Count
        $last = (Get-GpuVirtChange -Root $root | Measure-Object -Property Id -Maximum).Maximum
        $null = Invoke-Killed "Set-GuestMmioSpace $vm -Root '$root' -Connect '$Uri' -Confirm:`$false" -KillAt $KillAt
        Get-InactiveXml $Libvirt $vm | Should -Match '<pcihole64 unit=.KiB.>' -Because 'the kill came after virsh define'
        @(Get-GpuVirtChange -Root $root).Count | Should -Be $known

        # The next journaled command, another pwsh: it finds the guest as the recovery left it.
        $next = Invoke-ChildPwsh "Get-GuestMmioSpace $vm -Root '$root' -Connect '$Uri' | Out-Null; Set-GuestMmioSpace $vm -Root '$root' -Connect '$Uri' -Confirm:`$false -WhatIf:`$false | ForEach-Object { 'fits ' + `$_.Fits }"
        $next.ExitCode | Should -Be 0 -Because $next.Text
        Test-Path (Get-Pending $root) | Should -BeFalse
        $changes = @(Get-GpuVirtChange -Root $root | Where-Object { $_.Command -eq 'Set-GuestMmioSpace' -and $_.Id -gt $last })
        if ($KillAt -eq 'before-journal') {
            $next.Text | Should -Match 'Finished the interrupted Set-GuestMmioSpace'
            # Journaled once; the second run had nothing to do.
            $changes.Count | Should -Be 1
            $null = Undo-GpuVirtChange -Root $root -Id $changes[0].Id -Confirm:$false
        }
        else {
            $next.Text | Should -Match 'Took back the interrupted Set-GuestMmioSpace'
            # Taken back, then made again by the command itself, with its record.
            $changes.Count | Should -Be 1
            $null = Undo-GpuVirtChange -Root $root -Id $changes[0].Id -Confirm:$false
        }
        Get-InactiveXml $Libvirt $vm | Should -Be $planned
    }
}

Describe 'Item 18: New-VgpuDevice -Persistent killed half-way (stand-in mdev driver)' {
    It 'Item 18: killed between creating the device and defining it: running the command again takes the half-made vGPU back and makes it whole, journaled once' {
        $root = New-CrashHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($root)
        try {
            $definition = Join-Path $root "etc/mdevctl.d/0000:01:00.0/$Uuid"
            $null = Invoke-Killed "New-VgpuDevice -Root '$root' 01:00.0 nvidia-63 -Uuid $Uuid -Persistent" -KillAt 'after-step-1'
            # Half-made: the device exists, its definition does not, and the journal knows nothing.
            Test-Path (Join-Path $root "sys/bus/mdev/devices/$Uuid") | Should -BeTrue
            Test-Path $definition | Should -BeFalse
            @(Get-GpuVirtChange -Root $root).Count | Should -Be 0

            $next = Invoke-ChildPwsh "New-VgpuDevice -Root '$root' 01:00.0 nvidia-63 -Uuid $Uuid -Persistent | ForEach-Object { 'made ' + `$_.Uuid + ' ' + `$_.Persistent }"
            $next.ExitCode | Should -Be 0 -Because $next.Text
            $next.Text | Should -Match 'Took back the interrupted New-VgpuDevice'
            $next.Text | Should -Match "made $Uuid True"
            $driver.Log | Should -Be @("create nvidia-63 $Uuid", "remove $Uuid", "create nvidia-63 $Uuid")
            Test-Path $definition | Should -BeTrue
            $changes = @(Get-GpuVirtChange -Root $root)
            $changes.Count | Should -Be 1
            $null = Undo-GpuVirtChange -Root $root -Id $changes[0].Id -Confirm:$false
            Test-Path (Join-Path $root "sys/bus/mdev/devices/$Uuid") | Should -BeFalse
            Test-Path $definition | Should -BeFalse
        }
        finally { $driver.Dispose() }
    }

    It 'Item 18: killed after defining it and before its record: the next command journals it, and the undo removes device and definition' {
        $root = New-CrashHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($root)
        try {
            $definition = Join-Path $root "etc/mdevctl.d/0000:01:00.0/$Uuid"
            $null = Invoke-Killed "New-VgpuDevice -Root '$root' 01:00.0 nvidia-63 -Uuid $Uuid -Persistent" -KillAt 'before-journal'
            Test-Path $definition | Should -BeTrue
            @(Get-GpuVirtChange -Root $root).Count | Should -Be 0

            $other = 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a'
            $next = Invoke-ChildPwsh "New-VgpuDevice -Root '$root' 01:00.0 nvidia-63 -Uuid $other | Out-Null"
            $next.ExitCode | Should -Be 0 -Because $next.Text
            $next.Text | Should -Match 'Finished the interrupted New-VgpuDevice'
            $changes = @(Get-GpuVirtChange -Root $root | Sort-Object Id)
            $changes.Target | Should -Be @($Uuid, $other)
            $changes[0].Action | Should -BeLike '*and define it to start at boot'
            $null = Undo-GpuVirtChange -Root $root -Last 2 -Confirm:$false
            @(Get-ChildItem (Join-Path $root 'sys/bus/mdev/devices')).Count | Should -Be 0
            Test-Path $definition | Should -BeFalse
        }
        finally { $driver.Dispose() }
    }
}

Describe 'Item 18: a killed Undo-GpuVirtChange of a boot change is finished by running the undo again' {
    It 'Item 18: killed at <KillAt>: Undo-GpuVirtChange again finishes it, journals it once, and the grub file is the original byte for byte' -ForEach @(
        @{ KillAt = 'undo-before-journal' }
        @{ KillAt = 'undo-after-step-1' }
    ) {
        $root = New-CrashHost -Boot
        $grub = Join-Path $root 'etc/default/grub'
        $original = [IO.File]::ReadAllBytes($grub)
        $null = Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false -WarningAction SilentlyContinue
        $id = (Get-GpuVirtChange -Root $root | Where-Object Command -eq 'Enable-IommuBoot').Id
        $null = Invoke-Killed "Undo-GpuVirtChange -Root '$root' -Id $id -Confirm:`$false" -KillAt $KillAt
        # The files are back, but the journal says the change stands: before the fix, an undo again refused (JournalTargetChanged).
        [IO.File]::ReadAllBytes($grub) | Should -Be $original
        (Get-GpuVirtChange -Root $root -Id $id).Undone | Should -BeFalse

        $again = Invoke-ChildPwsh "Undo-GpuVirtChange -Root '$root' -Id $id -Confirm:`$false | ForEach-Object { 'undid ' + `$_.Undoes }"
        $again.ExitCode | Should -Be 0 -Because $again.Text
        $again.Text | Should -Match "Finished the interrupted undo of change $id"
        $again.Text | Should -Match "undid $id"
        $again.Text | Should -Not -Match 'JournalTargetChanged'
        (Get-GpuVirtChange -Root $root -Id $id).Undone | Should -BeTrue
        @(Get-GpuVirtChange -Root $root | Where-Object Undoes -eq $id).Count | Should -Be 1
        [IO.File]::ReadAllBytes($grub) | Should -Be $original
        Test-Path (Get-Pending $root) | Should -BeFalse
    }
}
