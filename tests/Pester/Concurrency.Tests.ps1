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
        $argv = @()
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
        [GpuVirt.Core.HostLock]::PathFor([GpuVirt.Core.HostRoot]::new($root)) | Should -Be (Join-Path $root 'var/run/lock/gpuvirt.lock')
    }
}
