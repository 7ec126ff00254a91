# The change journal as a user meets it: a whole setup made with the real cmdlets on a fixture host with embedded
# libvirt, listed with Get-GpuVirtChange and taken back with Undo-GpuVirtChange. grub2-mkconfig and dracut are
# stand-ins (they cannot run here; their argv is asserted); the kernel's PCI driver core and NVIDIA's mediated-device
# driver are stand-ins on the fixture tree (no kernel is behind it).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
    $script:Repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

    function New-JournalHost {
        <# The seed host with RHEL 7 boot files, dracut, a loaded vfio-pci driver, an H100 whose SR-IOV functions are not enabled, and no journal. #>
        $b = New-FixtureHost -Name Seed -Configure {
            param($b)
            $null = $b.AddDriver('vfio-pci')
            $null = [GpuVirt.Fixtures.SampleHosts]::AddSriovGpu($b, [GpuVirt.Fixtures.FixtureSriovBoard]::H100, '0000:03:00.0', '0000:00:03.0', 40, 0)
        }
        [GpuVirt.Fixtures.BootFixture]::Rhel7($b.Root, 'grub/rhel7-sysconfig-grub', $false)
        $null = [GpuVirt.Fixtures.StandIns]::Install($b.Root, 'dracut', 0, $null, $null)
        $b
    }

    function Get-Driver([string] $Root, [string] $Address) {
        (Get-PciDevice -Root $Root -Address $Address).Driver
    }
}

AfterAll {
    $script:Libvirt | Remove-EmbeddedLibvirt
}

Describe 'A whole setup, journaled and taken back' {
    BeforeAll {
        $script:H = New-JournalHost
        $script:Root = $H.Root
        $script:Core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($Root)
        $script:Mdev = [GpuVirt.Fixtures.MdevDriverStandIn]::new($Root)
        $boards = [Collections.Generic.Dictionary[string, GpuVirt.Fixtures.FixtureSriovBoard]]::new()
        $boards['0000:03:00.0'] = [GpuVirt.Fixtures.FixtureSriovBoard]::H100
        $script:Nvidia = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::new($H, $boards)
        $script:Vm = New-TestGuest $Libvirt -Graphics
        $script:FilesBefore = Get-TreeHash $Root -Exclude '/var/lib/gpuvirt/journal.json'
        $script:XmlBefore = Get-InactiveXml $Libvirt $Vm
        $script:AudioBefore = Get-Driver $Root 02:00.1

        $uri = $Libvirt.Uri
        $null = Get-GpuDevice -Root $Root -Address 02:00.0 | Enable-IommuBoot -Root $Root -Confirm:$false -WarningAction SilentlyContinue
        $null = Disable-NouveauDriver -Root $Root -Confirm:$false
        $null = Dismount-GpuHostDriver 02:00.1 -Root $Root -Confirm:$false
        $null = New-VgpuDevice -Root $Root -Parent 01:00.0 -Type 'GRID P4-1Q' -Uuid $Uuid -Persistent -Confirm:$false
        $null = Add-GpuHostdev $Vm -Address 02:00.0 -Root $Root -Connect $uri -WarningAction SilentlyContinue
        $null = Add-GpuHostdev $Vm -Uuid $Uuid -Root $Root -Connect $uri
        $null = Set-VgpuConsole $Vm -NoEmulatedVideo -Root $Root -Connect $uri -Confirm:$false
        $null = Enable-VgpuSriov -Root $Root -Address 03:00.0 -Count 4 -Confirm:$false
        $script:AfterSetupXml = Get-InactiveXml $Libvirt $Vm
        $script:Changes = @(Get-GpuVirtChange -Root $Root)
    }
    AfterAll {
        $script:Core.Dispose()
        $script:Mdev.Dispose()
        $script:Nvidia.Dispose()
        Clear-TestGuest $Libvirt
        $script:H | Remove-FixtureHost
    }

    It 'made the setup: kernel arguments, blacklist, vfio-pci, a persistent vGPU, two hostdevs, the console and four SR-IOV functions' {
        Get-Content -Raw (Join-Path $Root 'etc/default/grub') | Should -Match 'pci-stub\.ids=10de:11fa'
        Join-Path $Root 'etc/modprobe.d/blacklist-nouveau.conf' | Should -Exist
        Get-Driver $Root 02:00.1 | Should -Be 'vfio-pci'
        Join-Path $Root "etc/mdevctl.d/0000:01:00.0/$Uuid" | Should -Exist
        Join-Path $Root "sys/bus/mdev/devices/$Uuid" | Should -Exist
        $doc = [xml]$AfterSetupXml
        $doc.SelectNodes('/domain/devices/hostdev').Count | Should -Be 2
        $doc.domain.devices.video.model.type | Should -Be 'none'
        (Get-PciDevice -Root $Root -Address 03:00.0).VirtualFunctions.Count | Should -Be 4
    }

    It 'lists one record per applied change, newest first, each with its host, command line and inverse' {
        $Changes.Command | Should -Be @('Enable-VgpuSriov', 'Set-VgpuConsole', 'Add-GpuHostdev', 'Add-GpuHostdev', 'New-VgpuDevice', 'Dismount-GpuHostDriver', 'Disable-NouveauDriver', 'Enable-IommuBoot')
        $Changes.Id | Should -Be @(8, 7, 6, 5, 4, 3, 2, 1)
        $Changes | ForEach-Object { $_.Root | Should -Be $Root; $_.UndoSteps.Count | Should -BeGreaterThan 0; $_.Undone | Should -BeFalse }
        $Changes[0].Target | Should -Be '0000:03:00.0'
        $Changes[0].Changes[0] | Should -Be 'virtual functions of 0000:03:00.0 (sriov_numvfs): 0 -> 4'
        $inverse = (Get-JournalRecord $Root 8).Inverse[0]
        $inverse.Kind | Should -Be 'SetSriovFunctions'
        $inverse.VirtualFunctions, $inverse.ExpectedVirtualFunctions | Should -Be @(0, 4)
        $Changes[1].Connect | Should -Be $Libvirt.Uri
        $Changes[1].CommandLine | Should -Be '$null = Set-VgpuConsole $Vm -NoEmulatedVideo -Root $Root -Connect $uri -Confirm:$false'
        $Changes[5].Changes[0] | Should -Be '0000:02:00.1 driver: snd_hda_intel -> vfio-pci'
        (Get-JournalRecord $Root $Changes[5].Id).Changes[0].Before | Should -Be 'snd_hda_intel'
        $Changes[7].RebootRequired | Should -BeTrue
        $Changes[7].Files | Should -Contain '/etc/default/grub'
        @($Changes[7].Backups | Where-Object { $_ -like '/etc/default/grub.gpuvirt-*.bak' }).Count | Should -Be 1
        (Get-GpuVirtChange -Root $Root -Last 2).Id | Should -Be @(8, 7)
        (Get-GpuVirtChange -Root $Root -Id 3).Target | Should -Be '0000:02:00.1'
        { Get-GpuVirtChange -Root $Root -Id 99 -ErrorAction Stop } | Should -Throw -ErrorId 'JournalChangeNotFound,GpuVirt.Commands.GetGpuVirtChangeCommand'
    }

    It 'shows a table that reads like a history' {
        $text = Get-GpuVirtChange -Root $Root | Out-String -Width 200
        $text | Should -Match '(?m)^\s+Id Time\s+Command\s+Target\s+Undone Action'
        $text | Should -Match '(?m)^\s+3 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d Dismount-GpuHostDriver 0000:02:00\.1\s+Detach from the host driver and bind to vfio-pci'
    }

    It '-WhatIf shows every inverse and changes nothing' {
        $text = Get-WhatIfText { Get-GpuVirtChange -Root $Root | Undo-GpuVirtChange -WhatIf }
        $text | Should -Match '(?s)Undo change 8 \(Enable-VgpuSriov.*disable the virtual functions of 0000:03:00\.0.*\n\s+write 0 to /sys/bus/pci/devices/0000:03:00\.0/sriov_numvfs\n\s+wait \(up to 30 s\) for the virtual functions to go'
        $text | Should -Match '(?s)Undo change 6 \(Add-GpuHostdev.*virsh -c .* detach-device --domain .* --persistent'
        $text | Should -Match '(?s)Undo change 3 \(Dismount-GpuHostDriver.*\n\s+clear /sys/bus/pci/devices/0000:02:00\.1/driver_override, write ''0000:02:00\.1'' to /sys/bus/pci/devices/0000:02:00\.1/driver/unbind'
        $text | Should -Match "(?s)Undo change 7 \(Set-VgpuConsole.*define guest '$Vm' as it was before"
        $text | Should -Match '(?s)Undo change 3 \(Dismount-GpuHostDriver.*give 0000:02:00\.1 back to its host driver ''snd_hda_intel'' \(sysfs\)'
        $text | Should -Match '(?s)Undo change 1 \(Enable-IommuBoot.*put back /etc/default/grub, /var/lib/gpuvirt/boot-edits\.tsv; run grub2-mkconfig -o /etc/grub2\.cfg'
        Get-Driver $Root 02:00.1 | Should -Be 'vfio-pci'
        Get-InactiveXml $Libvirt $Vm | Should -Be $AfterSetupXml
        (Get-PciDevice -Root $Root -Address 03:00.0).VirtualFunctions.Count | Should -Be 4
    }

    It 'Get-GpuVirtChange | Undo-GpuVirtChange gives back every file byte for byte, the guest as it was, no mdevctl definition, the original driver and no SR-IOV functions' {
        $warnings = $null
        $undone = @(Get-GpuVirtChange -Root $Root | Undo-GpuVirtChange -Confirm:$false -WarningVariable warnings -WarningAction SilentlyContinue)
        $undone.Undoes | Should -Be @(8, 7, 6, 5, 4, 3, 2, 1)
        $undone.Command | Select-Object -Unique | Should -Be 'Undo-GpuVirtChange'
        @($warnings | Where-Object { "$_" -like '*rebooted*' }).Count | Should -Be 2

        Get-TreeHash $Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $FilesBefore
        Get-InactiveXml $Libvirt $Vm | Should -Be $XmlBefore
        Join-Path $Root "etc/mdevctl.d/0000:01:00.0/$Uuid" | Should -Not -Exist
        Join-Path $Root "sys/bus/mdev/devices/$Uuid" | Should -Not -Exist
        Get-Driver $Root 02:00.1 | Should -Be $AudioBefore
        $Mdev.Log | Should -Be @("create nvidia-63 $Uuid", "remove $Uuid")
        $Nvidia.Log | Should -Be @('enable 0000:03:00.0 4', 'disable 0000:03:00.0')
        (Get-PciDevice -Root $Root -Address 03:00.0).VirtualFunctions.Count | Should -Be 0
        (Get-Content -Raw (Join-Path $Root 'sys/bus/pci/devices/0000:03:00.0/sriov_numvfs')).Trim() | Should -Be '0'
        # The regeneration ran again after the files were put back.
        $calls = @([GpuVirt.Fixtures.StandIns]::Calls($Root) | ForEach-Object { $_ -join ' ' })
        $calls | Should -Be @('grub2-mkconfig -o /etc/grub2.cfg', 'dracut --force', 'dracut --force', 'grub2-mkconfig -o /etc/grub2.cfg')

        $all = @(Get-GpuVirtChange -Root $Root)
        $all.Count | Should -Be 16
        ($all | Where-Object { $_.Id -le 8 } | ForEach-Object UndoneBy) | Should -Be @(9, 10, 11, 12, 13, 14, 15, 16)
        (Get-GpuVirtChange -Root $Root | Out-String -Width 200) | Should -Match '(?m)^\s+1 .*Enable-IommuBoot\s+/etc/default/grub\s+by 16'
        # Nothing stands any more: a second run undoes nothing.
        @(Get-GpuVirtChange -Root $Root | Undo-GpuVirtChange -Confirm:$false).Count | Should -Be 0
        { Undo-GpuVirtChange -Id 3 -Root $Root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'JournalChangeAlreadyUndone,GpuVirt.Commands.UndoGpuVirtChangeCommand'
        { Undo-GpuVirtChange -Id 9 -Root $Root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'JournalChangeNotUndoable,GpuVirt.Commands.UndoGpuVirtChangeCommand'
    }
}

Describe 'Undo-GpuVirtChange refuses a target that changed since the record' {
    BeforeEach {
        $script:H = New-JournalHost
        $script:Root = $H.Root
    }
    AfterEach {
        Clear-TestGuest $Libvirt
        $script:H | Remove-FixtureHost
    }

    It 'names a grub file edited by hand later and changes nothing; -Force undoes it and keeps the hand edit in a backup' {
        $original = [IO.File]::ReadAllBytes((Join-Path $Root 'etc/default/grub'))
        $null = Enable-IommuBoot -Root $Root -Confirm:$false
        Add-Content -Path (Join-Path $Root 'etc/default/grub') -Value 'GRUB_TERMINAL_OUTPUT="console"'
        $edited = Get-Content -Raw (Join-Path $Root 'etc/default/grub')
        $err = $null
        $out = Get-GpuVirtChange -Root $Root | Undo-GpuVirtChange -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'JournalTargetChanged,GpuVirt.Commands.UndoGpuVirtChangeCommand'
        $err[0].Exception.Message | Should -BeLike "Change 1 (Enable-IommuBoot, /etc/default/grub) is not undone: '/etc/default/grub' was edited since*-Force*"
        $err[0].TargetObject | Should -Be '/etc/default/grub'
        Get-Content -Raw (Join-Path $Root 'etc/default/grub') | Should -Be $edited
        (Get-GpuVirtChange -Root $Root -Id 1).Undone | Should -BeFalse

        $done = Undo-GpuVirtChange -Id 1 -Root $Root -Force -Confirm:$false -WarningAction SilentlyContinue
        $done.Undoes | Should -Be 1
        [IO.File]::ReadAllBytes((Join-Path $Root 'etc/default/grub')) | Should -Be $original
        $kept = @(Get-ChildItem (Join-Path $Root 'etc/default') -Filter 'grub.gpuvirt-*.bak')
        $kept.Count | Should -Be 1
        Get-Content -Raw $kept[0].FullName | Should -Be $edited
    }

    It 'names a hostdev already removed (Remove-GpuHostdev, which journals too)' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Libvirt.Uri -WarningAction SilentlyContinue
        Remove-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Libvirt.Uri -Confirm:$false
        (Get-GpuVirtChange -Root $Root).Command | Should -Be @('Remove-GpuHostdev', 'Add-GpuHostdev')
        { Undo-GpuVirtChange -Id 1 -Root $Root -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'JournalTargetChanged,GpuVirt.Commands.UndoGpuVirtChangeCommand' -ExpectedMessage "*guest '$vm' has no hostdev 0000:02:00.0 any more*"
        # Newest first puts it back and takes it away again.
        $null = Undo-GpuVirtChange -Last 2 -Root $Root -Confirm:$false
        ([xml](Get-InactiveXml $Libvirt $vm)).SelectNodes('/domain/devices/hostdev').Count | Should -Be 0
        (Get-GpuVirtChange -Root $Root -Id 1, 2).Undone | Should -Be @($true, $true)
    }

    It 'takes a driver change back through its planner: a guest that references the function refuses it (-Force goes on), a process that holds it refuses it even with -Force' {
        $core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($Root)
        try {
            $vm = New-TestGuest $Libvirt
            $null = Dismount-GpuHostDriver 02:00.1 -Root $Root -Connect $Libvirt.Uri -Confirm:$false
            $null = Add-GpuHostdev $vm -Address 02:00.1 -Root $Root -Connect $Libvirt.Uri -WarningAction SilentlyContinue
            $text = Get-WhatIfText { Undo-GpuVirtChange -Id 1 -Root $Root -WhatIf }
            $text | Should -BeLike "*give 0000:02:00.1 back to its host driver 'snd_hda_intel' (sysfs)*clear /sys/bus/pci/devices/0000:02:00.1/driver_override, write '0000:02:00.1' to /sys/bus/pci/devices/0000:02:00.1/driver/unbind*"
            { Undo-GpuVirtChange -Id 1 -Root $Root -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'DeviceReferencedByGuest,GpuVirt.Commands.UndoGpuVirtChangeCommand' -ExpectedMessage "Change 1 (Dismount-GpuHostDriver, 0000:02:00.1) is not undone: *guest '$vm'*"

            # A guest's QEMU holds the function's VFIO group now: unbinding would wait in the kernel, -Force or not.
            $group = (Get-PciDevice -Root $Root -Address 02:00.1).IommuGroup
            $usage = [GpuVirt.Fixtures.HostUsage]::new()
            $null = $usage.Process(4242, 'qemu-system-x86', [string[]]@('/usr/bin/qemu-system-x86_64', '-name', "guest=$vm,debug-threads=on"), [string[]]@("/dev/vfio/$group"))
            $usage.Write($H)
            { Undo-GpuVirtChange -Id 1 -Root $Root -Force -Confirm:$false -WarningAction SilentlyContinue -ErrorAction Stop } |
                Should -Throw -ErrorId 'DeviceInUse,GpuVirt.Commands.UndoGpuVirtChangeCommand' -ExpectedMessage "*pid 4242 (qemu-system-x86, guest '$vm') holds /dev/vfio/$group*"
            Get-Driver $Root 02:00.1 | Should -Be 'vfio-pci'
            (Get-GpuVirtChange -Root $Root -Id 1).Undone | Should -BeFalse

            Remove-Item -Recurse -Force (Join-Path $Root 'proc/4242')
            $done = Undo-GpuVirtChange -Id 1 -Root $Root -Force -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
            "$w" | Should -BeLike "*guest '$vm'*"
            $done.Undoes | Should -Be 1
            Get-Driver $Root 02:00.1 | Should -Be 'snd_hda_intel'
        }
        finally { $core.Dispose() }
    }
}

Describe 'The journal file' {
    BeforeEach {
        $script:H = New-JournalHost
        $script:Root = $H.Root
    }
    AfterEach { $script:H | Remove-FixtureHost }

    It 'loses nothing when two processes write at once' {
        $script = Join-Path $TestDrive 'writer.ps1'
        Set-Content $script @'
param($Module, $Root, $Name, $Count)
$ErrorActionPreference = 'Stop'
Import-Module $Module
# The journal is core plumbing, internal to the module: this test reaches it by reflection, as no prompt user would.
$assembly = (Get-Command Get-PciDevice).ImplementingType.Assembly
$host_ = [Activator]::CreateInstance($assembly.GetType('GpuVirt.Core.HostRoot', $true), [object[]]@($Root))
$journalType = $assembly.GetType('GpuVirt.Core.Journal.ChangeJournal', $true)
$journal = [Activator]::CreateInstance($journalType, [object[]]@($host_))
$append = $journalType.GetMethod('Append', [type[]]@([GpuVirt.Core.Journal.ChangeRecord], [Threading.CancellationToken], [Action[string]]))
for ($i = 0; $i -lt $Count; $i++) {
    $record = [GpuVirt.Core.Journal.ChangeRecord]::new()
    $record.Target = "$Name $i"
    $record.Action = 'concurrent append'
    $null = $append.Invoke($journal, [object[]]@($record, [Threading.CancellationToken]::None, $null))
}
'@
        $procs = foreach ($name in 'a', 'b') {
            # Start-Process joins its arguments with spaces: each path is quoted, so a clone path with a space stays whole.
            Start-Process -FilePath dotnet -ArgumentList @('pwsh', '-NoProfile', '-NonInteractive', '-File', "`"$script`"", "`"$env:GPUVIRT_MODULE`"", "`"$Root`"", $name, 40) -WorkingDirectory $Repo -PassThru
        }
        $procs | Wait-Process -Timeout 300
        $procs.ExitCode | Should -Be @(0, 0)
        $records = @(Get-GpuVirtChange -Root $Root)
        $records.Count | Should -Be 80
        ($records.Id | Sort-Object) | Should -Be (1..80)
        foreach ($name in 'a', 'b') { @($records | Where-Object Target -like "$name *").Count | Should -Be 40 }
    }

    It 'from a newer GpuVirt stops a changing command before it changes anything, and is left as it is' {
        $null = New-Item -ItemType Directory -Force (Join-Path $Root 'var/lib/gpuvirt')
        $journal = Join-Path $Root 'var/lib/gpuvirt/journal.json'
        Set-Content -Path $journal -Value '{"Format": "GpuVirt change journal", "Version": 7, "Records": []}' -NoNewline
        $grub = Get-Content -Raw (Join-Path $Root 'etc/default/grub')
        { Enable-IommuBoot -Root $Root -Confirm:$false } | Should -Throw -ErrorId 'JournalVersionNotSupported,GpuVirt.Commands.EnableIommuBootCommand'
        Get-Content -Raw (Join-Path $Root 'etc/default/grub') | Should -Be $grub
        { Get-GpuVirtChange -Root $Root } | Should -Throw -ErrorId 'JournalVersionNotSupported,GpuVirt.Commands.GetGpuVirtChangeCommand' -ExpectedMessage '*format version 7*'
        Set-Content -Path $journal -Value '{ "Format": "GpuVirt change journal", "Version": 1, "Records": [ {' -NoNewline
        { Get-GpuVirtChange -Root $Root } | Should -Throw -ErrorId 'JournalUnreadable,GpuVirt.Commands.GetGpuVirtChangeCommand' -ExpectedMessage "*'/var/lib/gpuvirt/journal.json' cannot be read*"
        { Dismount-GpuHostDriver 02:00.1 -Root $Root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'JournalUnreadable,GpuVirt.Commands.DismountGpuHostDriverCommand'
        Get-Driver $Root 02:00.1 | Should -Be 'snd_hda_intel'
        Get-Content -Raw $journal | Should -Be '{ "Format": "GpuVirt change journal", "Version": 1, "Records": [ {'
    }

    It 'keeps the history of a host whose kernel arguments were edited before the journal, and undoes it' {
        $grub = [IO.File]::ReadAllBytes((Join-Path $Root 'etc/default/grub'))
        $null = Enable-IommuBoot -Root $Root -StubId 10de:11fa -Confirm:$false
        # As an older GpuVirt left the host: the boot edit record, and no journal.
        Remove-Item (Join-Path $Root 'var/lib/gpuvirt/journal.json')
        $old = Get-GpuVirtChange -Root $Root
        $old.Id | Should -Be 1
        $old.Command | Should -Be 'Enable-IommuBoot'
        $old.CommandLine | Should -BeLike '*boot-edits.tsv*'
        $old.Changes[0] | Should -Match 'pci-stub\.ids=10de:11fa'
        $null = Disable-NouveauDriver -Root $Root -Confirm:$false
        (Get-GpuVirtChange -Root $Root).Command | Should -Be @('Disable-NouveauDriver', 'Enable-IommuBoot')
        $null = Undo-GpuVirtChange -Id 2, 1 -Root $Root -Confirm:$false -WarningAction SilentlyContinue
        [IO.File]::ReadAllBytes((Join-Path $Root 'etc/default/grub')) | Should -Be $grub
        Join-Path $Root 'var/lib/gpuvirt/boot-edits.tsv' | Should -Not -Exist
        Join-Path $Root 'etc/modprobe.d/blacklist-nouveau.conf' | Should -Not -Exist
    }
}
