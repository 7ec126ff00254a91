BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

    $script:Roots = [System.Collections.Generic.List[string]]::new()

    function New-Rhel7Host {
        $builder = New-FixtureHost -Name Seed
        [GpuVirt.Fixtures.BootFixture]::Rhel7($builder.Root, 'grub/rhel7-sysconfig-grub', $false)
        $script:Roots.Add($builder.Root)
        $builder.Root
    }

    function Start-ChildPwsh {
        <#
            Starts a pwsh that imports the module, waits for the file $Go to appear, then runs $Script: several of
            them start together on one signal. With -DelayRenames, strace holds every rename(2) of that process for
            half a second (strace -e inject=...:delay_enter), which widens the window between reading a file and
            replacing it far beyond what process start-up jitter can close.
        #>
        param([string] $Script, [string] $Go, [switch] $DelayRenames)
        $pwsh = [Environment]::GetCommandLineArgs()[0]
        $ready = Join-Path (Split-Path $Go) ('ready-' + [guid]::NewGuid().ToString('N'))
        $body = "`$ErrorActionPreference = 'Stop'; Import-Module '$env:GPUVIRT_MODULE'; `$null = New-Item -ItemType File '$ready'; " +
            "while (-not (Test-Path -LiteralPath '$Go')) { Start-Sleep -Milliseconds 10 }; " + $Script
        $out = [IO.Path]::GetTempFileName()
        # A pwsh at a terminal takes Ctrl+C; one started from a shell's background job (`cmd &` in a script: CI
        # harnesses, nohup'd runs) inherits SIGINT ignored, and .NET keeps an inherited SIG_IGN for SIGINT, so a
        # SIGINT would never reach it. The child starts with SIGINT at its default, as a foreground process has,
        # whatever started this test (env execs, so the process id stays the child's).
        $argv = @('env', '--default-signal=INT')
        if ($DelayRenames) {
            $argv += @('strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2',
                '-e', 'inject=rename,renameat,renameat2:delay_enter=500000')
        }
        $argv += @('dotnet', $pwsh, '-NoProfile', '-NonInteractive', '-Command', $body)
        $p = Start-Process -FilePath $argv[0] -ArgumentList $argv[1..($argv.Count - 1)] -PassThru -RedirectStandardOutput $out -RedirectStandardError "$out.err"
        [pscustomobject]@{ Process = $p; Out = $out; Ready = $ready }
    }

    function Wait-ChildPwsh {
        param($Child)
        $Child.Process.WaitForExit(180000) | Should -BeTrue -Because 'each child finishes within three minutes'
        $text = (Get-Content -Raw $Child.Out) + (Get-Content -Raw "$($Child.Out).err")
        Remove-Item -Force $Child.Out, "$($Child.Out).err"
        [pscustomobject]@{ ExitCode = $Child.Process.ExitCode; Text = $text }
    }

    function Get-RootedProcess([string] $Root) {
        <# The processes whose root directory is $Root (a stand-in run by chroot, and what it started). #>
        foreach ($d in [IO.Directory]::EnumerateDirectories('/proc')) {
            if ((Split-Path -Leaf $d) -notmatch '^\d+$') { continue }
            try { $target = [IO.File]::ResolveLinkTarget("$d/root", $false) } catch { continue }
            if ($target -and $target.FullName -eq $Root) { Split-Path -Leaf $d }
        }
    }

    function Install-PausingVirsh {
        <#
            A directory with a 'virsh' that runs the real virsh and then, when the command string matches $Pattern,
            waits: $Seconds seconds, or with $Hold, until the file $Hold exists (at most two minutes), after writing
            the file $Hold.paused. Only a delay around the real program: every answer is the real virsh's. The
            embedded QEMU driver serves one process at a time (it holds its pid file while virsh runs, where
            libvirtd would queue the clients), so the real virsh runs under flock(1) on a file beside the wrapper.
        #>
        param([Parameter(Mandatory)] [string] $Pattern, [double] $Seconds = 0, [string] $Hold)
        $real = (Get-Command virsh -CommandType Application | Select-Object -First 1).Source
        $dir = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-pausing-virsh-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $dir
        $wait = if ($Hold) {
            "if [ ! -e '$Hold' ]; then : > '$Hold.paused'; n=0; while [ ! -e '$Hold' ] && [ `$n -lt 1200 ]; do sleep 0.1; n=`$((n+1)); done; fi"
        } else { "sleep $Seconds" }
        $script = "#!/bin/sh`nflock '$dir/embed.lock' '$real' `"`$@`"`nrc=`$?`ncase `"`$*`" in *$Pattern*) $wait ;; esac`nexit `$rc`n"
        [IO.File]::WriteAllText((Join-Path $dir 'virsh'), $script)
        & chmod 755 (Join-Path $dir 'virsh')
        $script:Roots.Add($dir)
        $dir
    }

    function Install-HangingGrub([string] $Root) {
        <# grub2-mkconfig that starts a background child and never ends, as a hung regeneration would. #>
        $null = [GpuVirt.Fixtures.StandIns]::Install($Root, 'grub2-mkconfig', 0, $null, '/bin/busybox sleep 600 & /bin/busybox sleep 600')
    }
}

AfterAll {
    foreach ($r in $script:Roots) { if (Test-Path $r) { Remove-Item -Recurse -Force $r } }
}

Describe 'The host lock' {
    It 'keeps every stub id when three Enable-IommuBoot run at once (each read-modify-write under one lock, re-planned)' {
        $root = New-Rhel7Host
        $go = Join-Path $root 'go'
        $ids = '10de:1001', '10de:1002', '10de:1003'
        $children = foreach ($id in $ids) {
            Start-ChildPwsh -DelayRenames -Go $go -Script "Enable-IommuBoot -Root '$root' -CpuVendor Intel -StubId $id -Confirm:`$false | Out-Null; 'ok'"
        }
        # Every child has started and imported the module before any of them may read the boot file.
        $deadline = [DateTime]::UtcNow.AddMinutes(3)
        while (@($children | Where-Object { -not (Test-Path -LiteralPath $_.Ready) }).Count -gt 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        $null = New-Item -ItemType File $go
        $results = foreach ($c in $children) { Wait-ChildPwsh $c }

        foreach ($r in $results) { $r.ExitCode | Should -Be 0 -Because $r.Text }
        $grub = Get-Content -Raw (Join-Path $root 'etc/default/grub')
        foreach ($id in $ids) { $grub | Should -Match ([regex]::Escape($id)) -Because 'no run loses the ids of another' }
        ([regex]::Matches($grub, 'pci-stub\.ids=')).Count | Should -Be 1
        ([regex]::Matches($grub, 'intel_iommu=on')).Count | Should -Be 1
        # The record holds every run's edits: Disable-IommuBoot takes all of them back.
        Disable-IommuBoot -Root $root -Confirm:$false | Out-Null
        $after = Get-Content -Raw (Join-Path $root 'etc/default/grub')
        $after | Should -Not -Match 'pci-stub|intel_iommu'
    }

    It 'waits a bounded time for a holder and then fails with HostLockTimedOut, changing nothing' {
        $root = New-Rhel7Host
        $before = Get-Content -Raw (Join-Path $root 'etc/default/grub')
        $lock = [GpuVirt.Fixtures.FixtureLock]::Hold($root)
        try {
            $GpuVirtLockTimeout = 1
            { Enable-IommuBoot -Root $root -CpuVendor Intel -StubId 10de:11fa -Confirm:$false } | Should -Throw -ErrorId 'HostLockTimedOut,GpuVirt.Commands.EnableIommuBootCommand'
            $err = $null
            try { Enable-IommuBoot -Root $root -CpuVendor Intel -Confirm:$false } catch { $err = $_ }
            $err.Exception.Message | Should -Match '/run/lock/gpuvirt\.lock'
            $err.Exception.Message | Should -Match 'nothing was changed'
            $err.CategoryInfo.Category | Should -Be 'ResourceBusy'
        }
        finally { $lock.Dispose() }
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -BeExactly $before
    }

    It 'Undo-GpuVirtChange waits for the journal''s lock no longer than $GpuVirtLockTimeout, and takes nothing back' {
        $root = New-Rhel7Host
        $null = Enable-IommuBoot -Root $root -CpuVendor Intel -Confirm:$false
        $after = Get-Content -Raw (Join-Path $root 'etc/default/grub')
        $lock = [GpuVirt.Fixtures.FixtureLock]::Hold($root)
        try {
            $GpuVirtLockTimeout = 1
            $err = $null
            Undo-GpuVirtChange -Root $root -Last 1 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err -WarningAction SilentlyContinue
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'HostLockTimedOut,*'
            $err[0].Exception.Message | Should -Match 'for longer than 1 s'
        }
        finally { $lock.Dispose() }
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -BeExactly $after
        (Get-GpuVirtChange -Root $root -Last 1).Undone | Should -BeFalse
    }

    It 'goes on once the holder lets go within the bound' {
        $root = New-Rhel7Host
        $lockFile = Join-Path $root 'run/lock/gpuvirt.lock'
        $null = New-Item -ItemType Directory -Force (Split-Path $lockFile)
        # The real flock(1) holds the lock for two seconds, as another command would.
        $holder = Start-Process -FilePath flock -ArgumentList $lockFile, 'sleep', '2' -PassThru
        while (-not $holder.HasExited) { & flock -n $lockFile true; if ($LASTEXITCODE -ne 0) { break }; Start-Sleep -Milliseconds 20 }
        $GpuVirtLockTimeout = 120
        $change = Enable-IommuBoot -Root $root -CpuVendor Intel -StubId 10de:11fa -Confirm:$false -Verbose 4>&1
        $holder.WaitForExit()
        (($change | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n") | Should -Match 'Waiting for another GpuVirt command'
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -Match 'pci-stub\.ids=10de:11fa'
    }

    It 'refuses a time bound that is not a positive number of seconds or a TimeSpan' {
        $root = New-Rhel7Host
        $GpuVirtLockTimeout = 'soon'
        { Enable-IommuBoot -Root $root -CpuVendor Intel -Confirm:$false } | Should -Throw -ErrorId 'InvalidTimeoutPreference,GpuVirt.Commands.EnableIommuBootCommand'
        $GpuVirtLockTimeout = -5
        { Enable-IommuBoot -Root $root -CpuVendor Intel -Confirm:$false } | Should -Throw -ErrorId 'InvalidTimeoutPreference,GpuVirt.Commands.EnableIommuBootCommand'
        $GpuVirtLockTimeout = [timespan]'00:00:30'
        Enable-IommuBoot -Root $root -CpuVendor Intel -Confirm:$false | Should -Not -BeNullOrEmpty
    }

    It "takes the lock inside the root even when the image's /run is an absolute link" {
        $root = New-Rhel7Host
        $null = New-Item -ItemType Directory (Join-Path $root 'var/run')
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $root 'run') -Target '/var/run'
        Enable-IommuBoot -Root $root -CpuVendor Intel -Confirm:$false | Out-Null
        Test-Path -LiteralPath (Join-Path $root 'var/run/lock/gpuvirt.lock') | Should -BeTrue
    }
}

Describe 'Regeneration programs' {
    It 'stops a hung grub2-mkconfig at $GpuVirtRegenerationTimeout with its whole process group and restores every file (BootRegenerationTimedOut)' {
        $root = New-Rhel7Host
        Install-HangingGrub $root
        $before = Get-Content -Raw (Join-Path $root 'etc/default/grub')
        $GpuVirtRegenerationTimeout = 2
        $err = $null
        try { Enable-IommuBoot -Root $root -CpuVendor Intel -StubId 10de:11fa -Confirm:$false } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be 'BootRegenerationTimedOut,GpuVirt.Commands.EnableIommuBootCommand'
        $err.Exception.Message | Should -Match 'did not finish within 2 s and was stopped with every process it had started'
        $err.Exception.Message | Should -Match 'restored'
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -BeExactly $before
        Test-Path (Join-Path $root 'var/lib/gpuvirt/boot-edits.tsv') | Should -BeFalse
        @(Get-RootedProcess $root) | Should -BeNullOrEmpty -Because 'the background child of the stand-in is stopped too'
    }

    It 'Item 17: stops the whole process group on Ctrl+C (SIGINT to pwsh) and restores every file' {
        $root = New-Rhel7Host
        Install-HangingGrub $root
        $before = Get-Content -Raw (Join-Path $root 'etc/default/grub')
        $go = Join-Path $root 'go'
        $child = Start-ChildPwsh -Go $go -Script "Enable-IommuBoot -Root '$root' -CpuVendor Intel -StubId 10de:11fa -Confirm:`$false; 'ok-finished'"
        $null = New-Item -ItemType File $go
        $deadline = [DateTime]::UtcNow.AddMinutes(2)
        while (@(Get-RootedProcess $root).Count -lt 2 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        @(Get-RootedProcess $root).Count | Should -BeGreaterOrEqual 2 -Because 'the stand-in and its background child run'
        # The child pwsh is 'dotnet pwsh.dll': Ctrl+C reaches it as SIGINT, which it must not ignore (bit 2 of SigIgn).
        $ignored = [Convert]::ToUInt64(((Get-Content "/proc/$($child.Process.Id)/status") -match '^SigIgn:' -replace '^SigIgn:\s*'), 16)
        ($ignored -band 2) | Should -Be 0 -Because 'a pwsh that ignores SIGINT is not one that a Ctrl+C can reach'
        & kill -INT $child.Process.Id
        $result = Wait-ChildPwsh $child
        $result.Text | Should -Not -Match 'ok-finished'
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -BeExactly $before
        @(Get-RootedProcess $root) | Should -BeNullOrEmpty -Because 'grandchildren do not outlive the stop'
    }
}

Describe 'Guest definitions under the host lock' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
        $script:Libvirt = New-EmbeddedLibvirt
        $script:Seed = New-FixtureHost -Name Seed
        $script:Roots.Add($Seed.Root)
    }
    AfterAll { $script:Libvirt | Remove-EmbeddedLibvirt }
    AfterEach { Clear-TestGuest $Libvirt }

    It 'gives a GPU to one guest only when three Add-GpuHostdev for three guests run at once (ownership re-read under the lock)' {
        $root = $Seed.Root
        $go = Join-Path $Libvirt.Directory ('go-' + [guid]::NewGuid().ToString('N'))
        # Every run pauses two seconds after it read the guest list: all three have planned before any attaches.
        $pausing = Install-PausingVirsh -Pattern 'list' -Seconds 2
        $guests = foreach ($n in 1..3) { New-TestGuest $Libvirt }
        $children = foreach ($vm in $guests) {
            Start-ChildPwsh -Go $go -Script ("`$env:PATH = '${pausing}:' + `$env:PATH; " +
                "try { `$null = Add-GpuHostdev '$vm' -Address 02:00.0 -Root '$root' -Connect '$($Libvirt.Uri)' -Confirm:`$false -WarningAction SilentlyContinue -ErrorAction Stop; 'result:attached' } " +
                "catch { 'result:' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }")
        }
        $deadline = [DateTime]::UtcNow.AddMinutes(3)
        while (@($children | Where-Object { -not (Test-Path -LiteralPath $_.Ready) }).Count -gt 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        $null = New-Item -ItemType File $go
        $results = foreach ($c in $children) { Wait-ChildPwsh $c }

        $text = ($results.Text -join "`n")
        $holders = @($guests | Where-Object { @(([xml](Get-InactiveXml $Libvirt $_)).domain.devices.hostdev).Where({ $_ }).Count -gt 0 })
        $holders.Count | Should -Be 1 -Because "one GPU is owned by one guest:`n$text"
        @([regex]::Matches($text, 'result:attached')).Count | Should -Be 1 -Because $text
        @([regex]::Matches($text, 'result:HostdevInUse,GpuVirt\.Commands\.AddGpuHostdevCommand')).Count | Should -Be 2 -Because $text
        $text | Should -Match "already assigned to guest '$($holders[0])'"
        $text | Should -Match 'found when the change was about to be made; nothing was changed'
    }

    It 'refuses Set-VgpuConsole with GuestDefinitionChanged when Add-GpuHostdev changed the definition after it was read, losing nothing' {
        $root = $Seed.Root
        $uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
        $file = Join-Path $Libvirt.Directory ('ws-' + [guid]::NewGuid().ToString('N') + '.xml')
        $doc = [xml][GpuVirt.Fixtures.LibvirtFixture]::Domain('ws-console', $false, $null, 4)
        $null = $doc.domain.devices.AppendChild($doc.ImportNode(([xml]"<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'><source><address uuid='$uuid'/></source></hostdev>").DocumentElement, $true))
        $doc.Save($file)
        $null = Invoke-Virsh $Libvirt define --file $file
        # Set-VgpuConsole's first read of the definition is held until the test lets it go.
        $hold = Join-Path $Libvirt.Directory ('hold-' + [guid]::NewGuid().ToString('N'))
        $pausing = Install-PausingVirsh -Pattern 'dumpxml' -Hold $hold
        $go = Join-Path $Libvirt.Directory ('go-' + [guid]::NewGuid().ToString('N'))
        $child = Start-ChildPwsh -Go $go -Script ("`$env:PATH = '${pausing}:' + `$env:PATH; " +
            "try { `$c = Set-VgpuConsole -Domain ws-console -Root '$root' -Connect '$($Libvirt.Uri)' -Confirm:`$false -ErrorAction Stop; 'result:applied ' + `$c.Applied } " +
            "catch { 'result:' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }")
        $null = New-Item -ItemType File $go
        $deadline = [DateTime]::UtcNow.AddMinutes(3)
        while (-not (Test-Path -LiteralPath "$hold.paused") -and -not $child.Process.HasExited -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        Test-Path -LiteralPath "$hold.paused" | Should -BeTrue -Because 'Set-VgpuConsole read the definition'
        # Meanwhile another command attaches a GPU to the same guest.
        $attached = Add-GpuHostdev ws-console -Address 00:19.0 -Root $root -Connect $Libvirt.Uri -Config -Confirm:$false -WarningAction SilentlyContinue
        $attached.Address.ToString() | Should -Be '0000:00:19.0'
        $null = New-Item -ItemType File $hold
        $result = Wait-ChildPwsh $child

        $after = [xml](Get-InactiveXml $Libvirt ws-console)
        @($after.domain.devices.hostdev | Where-Object type -eq 'pci').Count | Should -Be 1 -Because "the attached GPU is not defined away ($($result.Text))"
        $result.Text | Should -Match 'result:GuestDefinitionChanged,GpuVirt\.Commands\.SetVgpuConsoleCommand' -Because $result.Text
        $result.Text | Should -Match "changed by another command after it was read"
        ($after.domain.devices.hostdev | Where-Object type -eq 'mdev').display | Should -Not -Be 'on' -Because 'the refused change wrote nothing'
        # Run again, it reads the new definition and keeps both.
        (Set-VgpuConsole -Domain ws-console -Root $root -Connect $Libvirt.Uri -Confirm:$false).Applied | Should -BeTrue
        $again = [xml](Get-InactiveXml $Libvirt ws-console)
        @($again.domain.devices.hostdev | Where-Object type -eq 'pci').Count | Should -Be 1
        ($again.domain.devices.hostdev | Where-Object type -eq 'mdev').display | Should -Be 'on'
    }
}
