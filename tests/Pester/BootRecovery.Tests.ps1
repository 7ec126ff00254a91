# A boot change killed half-way (issue 12, item 7): the pwsh that runs it is killed at an exact point, by strace
# at the rename of the edit record, or while the regeneration program runs (a grub2-mkconfig stand-in that says
# it started and then waits to be killed with it). The next Enable-/Disable-IommuBoot and Get-IommuBootStatus must
# see what was left and finish it or take it back, with the edit record and the change journal telling the same story.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

    $script:Roots = [System.Collections.Generic.List[string]]::new()
    $script:Added = @('intel_iommu=on', 'iommu=pt', 'pci-stub.ids=10de:11fa')

    function New-RecoveryHost {
        <# The seed host (Intel) with RHEL 7's grub file; -Script goes into the grub2-mkconfig stand-in. #>
        param([string] $Script)
        $builder = New-FixtureHost -Name Seed
        $script:Roots.Add($builder.Root)
        [GpuVirt.Fixtures.BootFixture]::Rhel7($builder.Root, 'grub/rhel7-sysconfig-grub', $false, $false)
        if ($Script) { $null = [GpuVirt.Fixtures.StandIns]::Install($builder.Root, 'grub2-mkconfig', 0, [NullString]::Value, $Script) }
        $builder.Root
    }

    function Start-ChildPwsh {
        <#
            Starts a pwsh that imports the module and runs $Script. With -KillAtOpenOf, it runs under strace, which
            kills it (SIGKILL, the call itself failing first) at its -When'th open of that path. The atomic writer
            opens a file's directory to sync it right after each rename into it: the second open of /etc/default is
            the one right after the grub file was renamed into place (the first follows its backup's), before the edit
            record is written. (strace 6.1 matches rename(2) by its first path only, a temporary name, so the kill
            is placed at that open.)
        #>
        param([string] $Script, [string] $KillAtOpenOf, [int] $When = 1)
        $pwsh = [Environment]::GetCommandLineArgs()[0]
        $argv = @()
        if ($KillAtOpenOf) {
            $argv += @('strace', '-f', '-qq', '-o', '/dev/null', '-P', $KillAtOpenOf, '-e', 'trace=open,openat',
                '-e', "inject=open,openat:error=EIO:signal=SIGKILL:when=$When")
        }
        $argv += @('dotnet', $pwsh, '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$env:GPUVIRT_MODULE'; $Script")
        $out = [IO.Path]::GetTempFileName()
        $p = Start-Process -FilePath $argv[0] -ArgumentList $argv[1..($argv.Count - 1)] -PassThru -RedirectStandardOutput $out -RedirectStandardError "$out.err"
        [pscustomobject]@{ Process = $p; Out = $out }
    }

    function Wait-ChildPwsh($Child) {
        $Child.Process.WaitForExit(180000) | Should -BeTrue -Because 'the child ends within three minutes'
        $text = (Get-Content -Raw $Child.Out) + (Get-Content -Raw "$($Child.Out).err")
        Remove-Item -Force $Child.Out, "$($Child.Out).err"
        [pscustomobject]@{ ExitCode = $Child.Process.ExitCode; Text = $text }
    }

    function Get-RootedProcess([string] $Root) {
        <# The processes whose root directory is $Root (the stand-in run by chroot, and what it started). #>
        foreach ($d in [IO.Directory]::EnumerateDirectories('/proc')) {
            if ((Split-Path -Leaf $d) -notmatch '^\d+$') { continue }
            try { $target = [IO.File]::ResolveLinkTarget("$d/root", $false) } catch { continue }
            if ($target -and $target.FullName -eq $Root) { [int](Split-Path -Leaf $d) }
        }
    }

    function Invoke-KilledDuringRegeneration {
        <#
            Runs $Script in a child pwsh on a host whose grub2-mkconfig stand-in, the first time, writes /regenerating
            and sleeps; the test then kills the child (SIGKILL) mid-regeneration, and the stand-in with it.
        #>
        param([string] $Root, [string] $Script)
        $child = Start-ChildPwsh -Script $Script
        $marker = Join-Path $Root 'regenerating'
        $deadline = [DateTime]::UtcNow.AddMinutes(3)
        while (-not (Test-Path -LiteralPath $marker) -and -not $child.Process.HasExited -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        Test-Path -LiteralPath $marker | Should -BeTrue -Because 'the regeneration started'
        $child.Process.Kill()
        $result = Wait-ChildPwsh $child
        foreach ($id in Get-RootedProcess $Root) { & kill -9 $id 2>$null }
        $result.ExitCode | Should -Not -Be 0
        $result
    }

    $script:SleepOnce = 'if [ ! -f /regenerated-once ]; then : > /regenerated-once; echo $$ > /regenerating; /bin/busybox sleep 600; fi'

}

AfterAll {
    foreach ($r in $script:Roots) {
        foreach ($id in Get-RootedProcess $r) { & kill -9 $id 2>$null }
        if (Test-Path $r) { Remove-Item -Recurse -Force $r }
    }
}

Describe 'A boot change killed between the grub file''s rename and the record''s (strace)' {
    It 'leaves an intent that status shows and <Next> takes back, so that no argument is left without a record' -ForEach @(
        @{ Next = 'Enable-IommuBoot' }
        @{ Next = 'Disable-IommuBoot' }
    ) {
        $root = New-RecoveryHost
        $grub = Join-Path $root 'etc/default/grub'
        $record = Join-Path $root 'var/lib/gpuvirt/boot-edits.tsv'
        $original = [IO.File]::ReadAllBytes($grub)

        $killed = Wait-ChildPwsh (Start-ChildPwsh -KillAtOpenOf (Join-Path $root 'etc/default') -When 2 -Script "Enable-IommuBoot -Root '$root' -StubId 10de:11fa -Confirm:`$false")
        $killed.ExitCode | Should -Not -Be 0
        # The state the issue describes: the new arguments are in the grub file, the record does not exist.
        [IO.File]::ReadAllText($grub) | Should -Match ([regex]::Escape('rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa"'))
        Test-Path $record | Should -BeFalse
        (Get-StandInCall $root).Count | Should -Be 0

        $status = Get-IommuBootStatus -Root $root
        $status.PendingChange | Should -Match 'Enable-IommuBoot was interrupted while it replaced /etc/default/grub, /var/lib/gpuvirt/boot-edits\.tsv'
        $status.RegenerationPending | Should -BeFalse
        ($status | Out-String -Width 300) | Should -Match '(?m)^PendingChange\s+: Enable-IommuBoot was interrupted'

        # -WhatIf tells what the next run does first, and changes nothing.
        $hashes = Get-TreeHash $root
        $whatIf = Wait-ChildPwsh (Start-ChildPwsh -Script "$Next -Root '$root' -WhatIf")
        $whatIf.Text | Should -Match ('first:\s+' + [regex]::Escape('Enable-IommuBoot was interrupted while it replaced /etc/default/grub'))
        Get-TreeHash $root | Should -Be $hashes

        if ($Next -eq 'Enable-IommuBoot') {
            $change = Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false
            $change.Recovered | Should -Be 'Took back the interrupted Enable-IommuBoot: put back /etc/default/grub.'
            $change.ArgumentsAdded | Should -Be $Added
            (Get-StandInCall $root).Count | Should -Be 1
            Test-Path $record | Should -BeTrue
            # The journal has the one change that was made, and its record is the edit log's.
            $journal = @(Get-GpuVirtChange -Root $root)
            $journal.Count | Should -Be 1
            $journal[0].Command | Should -Be 'Enable-IommuBoot'
            $null = Disable-IommuBoot -Root $root -Confirm:$false
        }
        else {
            $change = Disable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
            $change.Recovered | Should -Be 'Took back the interrupted Enable-IommuBoot: put back /etc/default/grub.'
            $change.Changed | Should -BeTrue
            (Get-StandInCall $root).Count | Should -Be 0
            @(Get-GpuVirtChange -Root $root).Count | Should -Be 0
            # The backup the killed run made holds what the file holds again: it is gone too.
            @(Get-ChildItem (Join-Path $root 'etc/default') -Filter 'grub.gpuvirt-*.bak').Count | Should -Be 0
        }
        # Either way the grub file is the original, byte for byte, and nothing is pending.
        [IO.File]::ReadAllBytes($grub) | Should -Be $original
        (Get-IommuBootStatus -Root $root).PendingChange | Should -BeNullOrEmpty
        Test-Path (Join-Path $root 'var/lib/gpuvirt/boot-pending.json') | Should -BeFalse
    }
}

Describe 'A boot change killed while its programs run' {
    It 'status shows the regeneration pending; <Next> runs it again, journals the change, and the next run changes nothing' -ForEach @(
        @{ Next = 'Enable-IommuBoot' }
        @{ Next = 'Disable-IommuBoot' }
    ) {
        $root = New-RecoveryHost -Script $SleepOnce
        $grub = Join-Path $root 'etc/default/grub'
        $original = [IO.File]::ReadAllBytes($grub)
        $null = Invoke-KilledDuringRegeneration -Root $root -Script "Enable-IommuBoot -Root '$root' -StubId 10de:11fa -Confirm:`$false"
        (Get-StandInCall $root).Count | Should -Be 1
        $edited = [IO.File]::ReadAllText($grub)
        $edited | Should -Match ([regex]::Escape('rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa"'))
        @(Get-GpuVirtChange -Root $root).Count | Should -Be 0

        $status = Get-IommuBootStatus -Root $root
        $status.RegenerationPending | Should -BeTrue
        $status.PendingChange | Should -Be "Enable-IommuBoot was interrupted after it wrote /etc/default/grub, /var/lib/gpuvirt/boot-edits.tsv and before 'grub2-mkconfig -o /etc/grub2.cfg' finished: the next boot command (Enable-IommuBoot, Disable-IommuBoot, Disable-NouveauDriver, Enable-NouveauDriver) runs it again."
        $status.ChangesRecorded | Should -BeTrue

        if ($Next -eq 'Enable-IommuBoot') {
            $again = Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false
            $again.Changed | Should -BeTrue
            $again.Recovered | Should -Be 'Finished the interrupted Enable-IommuBoot: ran grub2-mkconfig -o /etc/grub2.cfg.'
            $again.Commands | Should -Be @('grub2-mkconfig -o /etc/grub2.cfg')
            $calls = Get-StandInCall $root
            $calls.Count | Should -Be 2
            $calls[1] | Should -Be @('grub2-mkconfig', '-o', '/etc/grub2.cfg')
            [IO.File]::ReadAllText($grub) | Should -BeExactly $edited
            (Get-IommuBootStatus -Root $root).RegenerationPending | Should -BeFalse
            # The change is journaled once it is finished, as if it had not been interrupted.
            $journal = @(Get-GpuVirtChange -Root $root)
            $journal.Count | Should -Be 1
            $journal[0].Command | Should -Be 'Enable-IommuBoot'
            (Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false).Changed | Should -BeFalse
            (Get-StandInCall $root).Count | Should -Be 2
            # The journaled change can be taken back: the file is the original again.
            $null = Undo-GpuVirtChange -Root $root -Id $journal[0].Id -Confirm:$false
            [IO.File]::ReadAllBytes($grub) | Should -Be $original
            (Get-StandInCall $root).Count | Should -Be 3
        }
        else {
            $undo = Disable-IommuBoot -Root $root -Confirm:$false
            $undo.Recovered | Should -Be 'Finished the interrupted Enable-IommuBoot: ran grub2-mkconfig -o /etc/grub2.cfg.'
            $undo.ArgumentsRemoved | Should -Be $Added
            $undo.Commands | Should -Be @('grub2-mkconfig -o /etc/grub2.cfg', 'grub2-mkconfig -o /etc/grub2.cfg')
            (Get-StandInCall $root).Count | Should -Be 3
            [IO.File]::ReadAllBytes($grub) | Should -Be $original
            $journal = @(Get-GpuVirtChange -Root $root)
            $journal.Command | Should -Be @('Disable-IommuBoot', 'Enable-IommuBoot')
        }
        (Get-IommuBootStatus -Root $root).PendingChange | Should -BeNullOrEmpty
    }

    It 'Disable-NouveauDriver killed while the initramfs is built: the next run builds it again (stand-in dracut)' {
        $root = New-RecoveryHost
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, [NullString]::Value, $SleepOnce)
        $null = Invoke-KilledDuringRegeneration -Root $root -Script "Disable-NouveauDriver -Root '$root' -Confirm:`$false"
        Test-Path (Join-Path $root 'etc/modprobe.d/blacklist-nouveau.conf') | Should -BeTrue
        (Get-IommuBootStatus -Root $root).RegenerationPending | Should -BeTrue

        $again = Disable-NouveauDriver -Root $root -Confirm:$false
        $again.Changed | Should -BeTrue
        $again.Recovered | Should -Be 'Finished the interrupted Disable-NouveauDriver: ran dracut --force.'
        (Get-StandInCall $root).Count | Should -Be 2
        (Get-StandInCall $root)[1] | Should -Be @('dracut', '--force')
        @(Get-GpuVirtChange -Root $root).Command | Should -Be @('Disable-NouveauDriver')
        (Disable-NouveauDriver -Root $root -Confirm:$false).Changed | Should -BeFalse
        (Get-StandInCall $root).Count | Should -Be 2
    }
    It 'Undo-GpuVirtChange of a boot change stops with BootChangePending while one is pending, and works once it was finished' {
        $root = New-RecoveryHost -Script $SleepOnce
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, [NullString]::Value, [NullString]::Value)
        $blacklist = Join-Path $root 'etc/modprobe.d/blacklist-nouveau.conf'
        $null = Disable-NouveauDriver -Root $root -Confirm:$false
        $null = Invoke-KilledDuringRegeneration -Root $root -Script "Enable-IommuBoot -Root '$root' -StubId 10de:11fa -Confirm:`$false"

        { Undo-GpuVirtChange -Root $root -Id 1 -Confirm:$false } | Should -Throw -ErrorId 'BootChangePending,GpuVirt.Commands.UndoGpuVirtChangeCommand' -ExpectedMessage '*Enable-IommuBoot was interrupted*Nothing was changed.*'
        Test-Path $blacklist | Should -BeTrue

        $null = Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false 3>$null
        $null = Undo-GpuVirtChange -Root $root -Id 1 -Confirm:$false 3>$null
        Test-Path $blacklist | Should -BeFalse
        (Get-GpuVirtChange -Root $root).Command | Should -Be @('Undo-GpuVirtChange', 'Enable-IommuBoot', 'Disable-NouveauDriver')
        ((Get-StandInCall $root) | ForEach-Object { $_[0] }) | Should -Be @('dracut', 'grub2-mkconfig', 'grub2-mkconfig', 'dracut')
    }
    It 'rpm-ostree killed while it deploys: the next Enable-IommuBoot asks it again for only what is missing (stand-in rpm-ostree)' {
        $builder = New-FixtureHost -Name Seed
        $root = $builder.Root
        $script:Roots.Add($root)
        # The n-th call leaves what the real tool leaves (the tree under /stand-in-state/n); the first one hangs until killed.
        $script = 'n=0; [ -f /stand-in-state/n ] && read n < /stand-in-state/n; n=$((n+1)); echo $n > /stand-in-state/n; ' +
            '[ -d /stand-in-state/$n ] && /bin/busybox cp -a /stand-in-state/$n/. /; ' +
            'if [ $n = 1 ]; then echo $$ > /regenerating; /bin/busybox sleep 600; fi'
        [GpuVirt.Fixtures.BootFixture]::RpmOstree($root, [string[]]@('corpus/ostree-1-fedora-coreos.conf', 'corpus/ostree-2-fedora-coreos.conf'), $script)
        $entry = 'boot/loader/entries/ostree-2-fedora-coreos.conf'
        $default = [IO.File]::ReadAllText((Join-Path $root $entry))
        $null = [GpuVirt.Fixtures.BootFixture]::Write($root, 'stand-in-state/n', "0`n")
        $null = [GpuVirt.Fixtures.BootFixture]::Write($root, "stand-in-state/2/$entry", ($default -replace '(?m)^(options .*)$', ('$1 ' + ($Added -join ' '))))

        $null = Invoke-KilledDuringRegeneration -Root $root -Script "Enable-IommuBoot -Root '$root' -StubId 10de:11fa -Confirm:`$false"
        (Get-IommuBootStatus -Root $root).RegenerationPending | Should -BeTrue
        (Get-IommuBootStatus -Root $root).IommuConfigured | Should -BeFalse

        $again = Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false 3>$null
        $again.Recovered | Should -Match '^Finished the interrupted Enable-IommuBoot: ran rpm-ostree kargs --append-if-missing=intel_iommu=on'
        $calls = Get-StandInCall $root
        $calls.Count | Should -Be 2
        $calls[0] | Should -Be (@('rpm-ostree', 'kargs') + @($Added | ForEach-Object { "--append=$_" }))
        $calls[1] | Should -Be (@('rpm-ostree', 'kargs') + @($Added | ForEach-Object { "--append-if-missing=$_" }))
        $status = Get-IommuBootStatus -Root $root
        $status.IommuConfigured | Should -BeTrue
        $status.PendingChange | Should -BeNullOrEmpty
        (Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false).Changed | Should -BeFalse
        (Get-StandInCall $root).Count | Should -Be 2
        @(Get-GpuVirtChange -Root $root).Command | Should -Be @('Enable-IommuBoot')
    }
}
