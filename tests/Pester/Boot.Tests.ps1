BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

    $script:DataDir = Join-Path $PSScriptRoot '..' 'data' | Resolve-Path | ForEach-Object Path

    function New-BootHost {
        <# The seed host (Quadro K4000 + audio, Tesla P4, Intel CPU) with the boot files of one family and its stand-in. #>
        param([ValidateSet('Rhel7', 'Bls', 'Debian', 'SystemdBoot')] [string] $Family = 'Rhel7', [string] $Grub, [switch] $Efi)
        $builder = New-FixtureHost -Name Seed
        switch ($Family) {
            'Rhel7' { [GpuVirt.Fixtures.BootFixture]::Rhel7($builder.Root, $(if ($Grub) { $Grub } else { 'grub/rhel7-sysconfig-grub' }), [bool]$Efi) }
            'Bls' { [GpuVirt.Fixtures.BootFixture]::Rhel9($builder.Root, $(if ($Grub) { $Grub } else { 'grub/rhel9-default-grub' })) }
            'Debian' { [GpuVirt.Fixtures.BootFixture]::Debian($builder.Root, $(if ($Grub) { $Grub } else { 'grub/debian12-default-grub' })) }
            'SystemdBoot' { [GpuVirt.Fixtures.BootFixture]::SystemdBoot($builder.Root, 'root=UUID=7f3c1c52-5d2e-4a57-9b8f-0c5a3c2d1e0f rw quiet' + "`n", '6.8.9-300.fc40.x86_64') }
        }
        $builder.Root
    }

    function Invoke-ChildPwsh {
        <# Runs a script in a new pwsh (optionally as another user) and returns its output lines. #>
        param([string] $Script, [string] $AsUser)
        $pwsh = [Environment]::GetCommandLineArgs()[0]
        if ($AsUser) {
            # The tool's folder under root's home is closed to other users: hard links elsewhere make it readable.
            $copy = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-pwsh-' + [guid]::NewGuid().ToString('N'))
            $null = New-Item -ItemType Directory $copy
            & cp -al (Split-Path $pwsh) (Join-Path $copy 'pwsh') 2>$null
            if ($LASTEXITCODE -ne 0) { & cp -a (Split-Path $pwsh) (Join-Path $copy 'pwsh') }
            # So is a checkout under a private directory (mktemp -d): the module the script imports is copied too.
            $module = Join-Path $copy 'GpuVirt'
            & cp -a $env:GPUVIRT_MODULE $module
            $Script = $Script.Replace($env:GPUVIRT_MODULE, $module)
            & chmod -R a+rX $module
            & chmod 755 $copy
            try {
                & setpriv "--reuid=$AsUser" "--regid=$AsUser" --clear-groups env "HOME=$copy" "DOTNET_CLI_HOME=$copy" dotnet (Join-Path $copy 'pwsh/pwsh.dll') -NoProfile -NonInteractive -Command $Script 2>&1
            }
            finally { Remove-Item -Recurse -Force $copy }
        }
        else {
            & dotnet $pwsh -NoProfile -NonInteractive -Command $Script 2>&1
        }
    }

    $script:SeedValue = "rd.lvm.lv=vg_VolGroup00/LogVol01`nvconsole.font=latarcyrheb-sun16 rd.lvm.lv=vg_VolGroup_1/root`nvconsole.keymap=us `$([ -x /usr/sbin/rhcrashkernel-param ]  &&`n/usr/sbin/rhcrashkernel-param || :) rhgb quiet"
    $script:Roots = [System.Collections.Generic.List[string]]::new()
}

AfterAll {
    foreach ($r in $script:Roots) { if (Test-Path $r) { Remove-Item -Recurse -Force $r } }
}

Describe 'Enable-IommuBoot' {
    It "writes the guide's step 16.14 line into the seed's /etc/sysconfig/grub from Get-GpuDevice (stand-in grub2-mkconfig)" {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $original = Get-Content -Raw (Join-Path $root 'etc/default/grub')

        $change = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -StubDriver pci-stub -Confirm:$false

        $expected = $original.Replace($SeedValue + '"', $SeedValue + ' intel_iommu=on iommu=pt pci-stub.ids=10de:11fa"')
        Get-Content -Raw (Join-Path $root 'etc/sysconfig/grub') | Should -BeExactly $expected
        (Get-Item (Join-Path $root 'etc/sysconfig/grub')).LinkTarget | Should -Be '../default/grub'
        $change | Should -BeOfType ([GpuVirt.Core.Boot.BootChange])
        $change.BootLoader | Should -Be 'Rhel7'
        $change.ArgumentsAdded | Should -Be @('intel_iommu=on', 'iommu=pt', 'pci-stub.ids=10de:11fa')
        $change.RebootRequired | Should -BeTrue
        $change.Commands | Should -Be @('grub2-mkconfig -o /etc/grub2.cfg')
        $change.Files | Should -Contain '/etc/default/grub'
        $change.Backups.Count | Should -Be 1
        $change.Backups[0] | Should -Match '^/etc/default/grub\.gpuvirt-\d{8}-\d{6}\.bak$'
        Get-Content -Raw (Join-Path $root $change.Backups[0]) | Should -BeExactly $original
        $calls = Get-StandInCall $root
        $calls.Count | Should -Be 1
        $calls[0] | Should -Be @('grub2-mkconfig', '-o', '/etc/grub2.cfg')
    }

    It 'adds the companion HDMI audio function with -IncludeCompanion and regenerates grub2-efi.cfg on UEFI (stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7 -Efi; $Roots.Add($root)
        $change = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -IncludeCompanion -StubDriver vfio-pci -BlacklistNouveau -Confirm:$false
        $change.ArgumentsAdded | Should -Be @('intel_iommu=on', 'iommu=pt', 'vfio-pci.ids=10de:11fa', 'vfio-pci.ids=10de:0e0b', 'modprobe.blacklist=nouveau')
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -Match ([regex]::Escape('rhgb quiet intel_iommu=on iommu=pt vfio-pci.ids=10de:11fa,10de:0e0b modprobe.blacklist=nouveau"'))
        (Get-StandInCall $root)[0] | Should -Be @('grub2-mkconfig', '-o', '/etc/grub2-efi.cfg')
    }

    It 'takes ids by -StubId and Get-PciDevice objects, AMD from -CpuVendor, and leaves iommu=pt out with -NoIommuPt (stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $change = Get-PciDevice -Root $root -Address 02:00.1 | Enable-IommuBoot -Root $root -StubId 10DE:11FA -CpuVendor Amd -NoIommuPt -Confirm:$false
        $change.ArgumentsAdded | Should -Be @('pci-stub.ids=10de:0e0b', 'pci-stub.ids=10de:11fa')
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -Match ([regex]::Escape('rhgb quiet pci-stub.ids=10de:0e0b,10de:11fa"'))
    }

    It 'on <Name> (<Family>): a second run changes nothing and Disable-IommuBoot gives back the file byte for byte (stand-in)' -ForEach @(
        @{ Name = 'rhel7-sysconfig-grub'; Family = 'Rhel7' }
        @{ Name = 'debian12-default-grub'; Family = 'Debian' }
        @{ Name = 'ubuntu2204-default-grub'; Family = 'Debian' }
        @{ Name = 'rhel9-default-grub'; Family = 'Bls' }
        @{ Name = 'no-cmdline-grub'; Family = 'Rhel7' }
        @{ Name = 'single-quoted-grub'; Family = 'Rhel7' }
        @{ Name = 'comments-grub'; Family = 'Rhel7' }
        @{ Name = 'iommu-off-grub'; Family = 'Rhel7' }
        @{ Name = 'pci-stub-grub'; Family = 'Rhel7' }
    ) {
        $root = New-BootHost $Family -Grub "grub/$Name"; $Roots.Add($root)
        $file = Join-Path $root 'etc/default/grub'
        $before = [IO.File]::ReadAllBytes($file)

        $first = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -IncludeCompanion -Confirm:$false
        $afterFirst = [IO.File]::ReadAllBytes($file)
        $second = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -IncludeCompanion -Confirm:$false

        $first.Changed | Should -BeTrue
        $second.Changed | Should -BeFalse
        $second.Commands.Count | Should -Be 0
        [IO.File]::ReadAllBytes($file) | Should -Be $afterFirst
        (Get-StandInCall $root).Count | Should -Be 1
        $configured = (Get-IommuBootStatus -Root $root).ConfiguredArguments
        @($configured | Where-Object { $_ -like 'intel_iommu=*' }) | Should -Be @('intel_iommu=on')
        @($configured | Where-Object { $_ -like 'iommu=*' }) | Should -Be @('iommu=pt')
        @($configured | Where-Object { $_ -like 'pci-stub.ids=*' }).Count | Should -Be 1

        $undo = Disable-IommuBoot -Root $root -Confirm:$false
        $undo.Changed | Should -BeTrue
        [IO.File]::ReadAllBytes($file) | Should -Be $before
        (Get-StandInCall $root).Count | Should -Be 2
    }

    It 'runs grubby --update-kernel=ALL with --args, and --remove-args to undo, on RHEL 9 (stand-in grubby)' {
        $root = New-BootHost Bls; $Roots.Add($root)
        $change = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -Confirm:$false
        $change.BootLoader | Should -Be 'Bls'
        $change.Commands | Should -Be @('grubby --update-kernel=ALL ''--args=intel_iommu=on iommu=pt pci-stub.ids=10de:11fa'' --no-etc-grub-update')
        $null = Disable-IommuBoot -Root $root -Confirm:$false
        $calls = Get-StandInCall $root
        $calls[0] | Should -Be @('grubby', '--update-kernel=ALL', '--args=intel_iommu=on iommu=pt pci-stub.ids=10de:11fa', '--no-etc-grub-update')
        $calls[1] | Should -Be @('grubby', '--update-kernel=ALL', '--remove-args=intel_iommu=on iommu=pt pci-stub.ids=10de:11fa', '--no-etc-grub-update')
    }

    It 'runs update-grub on Debian and kernel-install on systemd-boot (stand-ins update-grub, kernel-install)' {
        $deb = New-BootHost Debian; $Roots.Add($deb)
        $null = Enable-IommuBoot -Root $deb -Confirm:$false
        (Get-StandInCall $deb)[0] | Should -Be @('update-grub')
        Get-Content -Raw (Join-Path $deb 'etc/default/grub') | Should -Match 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt"\n'

        $sd = New-BootHost SystemdBoot; $Roots.Add($sd)
        $change = Enable-IommuBoot -Root $sd -Confirm:$false
        $change.BootLoader | Should -Be 'SystemdBoot'
        Get-Content -Raw (Join-Path $sd 'etc/kernel/cmdline') | Should -BeExactly "root=UUID=7f3c1c52-5d2e-4a57-9b8f-0c5a3c2d1e0f rw quiet intel_iommu=on iommu=pt`n"
        (Get-StandInCall $sd)[0] | Should -Be @('kernel-install', 'add', '6.8.9-300.fc40.x86_64', '/usr/lib/modules/6.8.9-300.fc40.x86_64/vmlinuz')
    }

    It 'shows every command it runs with -Verbose (stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $verbose = Enable-IommuBoot -Root $root -Confirm:$false -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $verbose.Message | Should -Contain "Running: chroot $root grub2-mkconfig -o /etc/grub2.cfg"
    }

    It '-WhatIf shows before, after and the command, and leaves every file hash unchanged' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $hashes = Get-TreeHash $root
        $result = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -WhatIf
        $result | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 0

        $out = Invoke-ChildPwsh "Import-Module '$env:GPUVIRT_MODULE'; Get-GpuDevice -Root '$root' -Address 02:00.0 | Enable-IommuBoot -Root '$root' -WhatIf"
        $text = $out -join "`n"
        $text | Should -Match 'What if: Enable-IommuBoot \(Rhel7 boot loader\): edit /etc/default/grub \(the target of /etc/sysconfig/grub\)'
        $text | Should -Match ([regex]::Escape("  before: rd.lvm.lv=vg_VolGroup00/LogVol01 vconsole.font"))
        $text | Should -Match ([regex]::Escape("|| :) rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa"))
        $text | Should -Match ([regex]::Escape("  run    chroot $root grub2-mkconfig -o /etc/grub2.cfg"))
        Get-TreeHash $root | Should -Be $hashes
    }

    It 'restores every file and reports exit code and stderr when grub2-mkconfig fails (failing stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'grub2-mkconfig', 1, "/usr/sbin/grub2-probe: error: cannot find a device for / (is /dev mounted?).", $null)
        $hashes = Get-TreeHash $root
        { Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -Confirm:$false } |
            Should -Throw -ErrorId 'BootRegenerationFailed,GpuVirt.Commands.EnableIommuBootCommand' -ExpectedMessage '*exit code 1*cannot find a device for /*restored*'
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 1
    }

    It 'refuses bad input with a stable error id and changes nothing: <Case>' -ForEach @(
        @{ Case = 'no boot loader'; Id = 'BootLoaderNotDetected'; Setup = { param($r) Remove-Item (Join-Path $r 'etc/sysconfig/grub'), (Join-Path $r 'etc/default/grub') }; Invoke = { param($r) Enable-IommuBoot -Root $r -Confirm:$false } }
        @{ Case = 'a directory where the file should be'; Id = 'BootFileUnreadable'; Setup = { param($r) Remove-Item (Join-Path $r 'etc/default/grub'); $null = New-Item -ItemType Directory (Join-Path $r 'etc/default/grub') }; Invoke = { param($r) Enable-IommuBoot -Root $r -BootLoader Rhel7 -Confirm:$false } }
        @{ Case = 'an unterminated quote'; Id = 'BootFileMalformed'; Setup = { param($r) Set-HostFile -Root $r -Path 'etc/default/grub' -Text "GRUB_CMDLINE_LINUX=`"quiet`nGRUB_TIMEOUT=5`n" }; Invoke = { param($r) Enable-IommuBoot -Root $r -Confirm:$false } }
        @{ Case = 'a managed argument behind an expansion'; Id = 'BootArgumentNotEditable'; Setup = { param($r) Set-HostFile -Root $r -Path 'etc/default/grub' -Text "GRUB_CMDLINE_LINUX=`"quiet iommu=`$MODE`"`n" }; Invoke = { param($r) Enable-IommuBoot -Root $r -Confirm:$false } }
        @{ Case = 'a malformed id'; Id = 'InvalidStubId'; Setup = { }; Invoke = { param($r) Enable-IommuBoot -Root $r -StubId '10de-11fa' -Confirm:$false } }
        @{ Case = 'the SATA controller'; Id = 'StubDeviceUnsafe'; Setup = { }; Invoke = { param($r) Get-PciDevice -Root $r -Address 00:1f.2 | Enable-IommuBoot -Root $r -Confirm:$false } }
        @{ Case = 'an absent device'; Id = 'PciDeviceNotFound'; Setup = { }; Invoke = { param($r) Enable-IommuBoot -Root $r -Address 05:00.0 -Confirm:$false } }
        @{ Case = 'an unknown CPU'; Id = 'CpuVendorUnknown'; Setup = { param($r) Remove-Item (Join-Path $r 'proc/cpuinfo') }; Invoke = { param($r) Enable-IommuBoot -Root $r -Confirm:$false } }
        @{ Case = 'grub2-mkconfig not installed'; Id = 'ProgramNotFound'; Setup = { param($r) Remove-Item (Join-Path $r 'usr/sbin/grub2-mkconfig') }; Invoke = { param($r) Enable-IommuBoot -Root $r -Confirm:$false } }
    ) {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        & $Setup $root
        $hashes = Get-TreeHash $root
        { & $Invoke $root } | Should -Throw -ErrorId "$Id,GpuVirt.Commands.EnableIommuBootCommand"
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 0
    }

    It 'tells a non-root user that root is needed and changes nothing (setpriv as nobody)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $hashes = Get-TreeHash $root
        $out = Invoke-ChildPwsh -AsUser 65534 "Import-Module '$env:GPUVIRT_MODULE'; try { Enable-IommuBoot -Root '$root' -Confirm:`$false -ErrorAction Stop } catch { 'ID=' + `$_.FullyQualifiedErrorId; `$_.Exception.Message }; 'UID=' + (id -u)"
        $out | Should -Contain 'UID=65534'
        $out | Should -Contain 'ID=RootRequired,GpuVirt.Commands.EnableIommuBootCommand'
        ($out -join "`n") | Should -Match "Permission denied to write '/etc/default/grub'"
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 0
    }

    It 'tells root that an immutable directory, not the want of root, refuses the write, and changes nothing (chattr +i)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $hashes = Get-TreeHash $root
        $dir = Join-Path $root 'etc/default'
        & chattr +i $dir
        $LASTEXITCODE | Should -Be 0
        try {
            { Enable-IommuBoot -Root $root -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'PermissionDeniedAsRoot,GpuVirt.Commands.EnableIommuBootCommand' -ExpectedMessage "*'/etc/default/grub'*though pwsh runs as root*immutable*"
        }
        finally { & chattr -i $dir }
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 0
    }

    It 'completes -StubDriver, -BootLoader and -CpuVendor values' {
        $complete = { param($line) [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches.CompletionText }
        & $complete 'Enable-IommuBoot -StubDriver ' | Should -Be @('pci-stub', 'vfio-pci')
        & $complete 'Enable-IommuBoot -BootLoader ' | Should -Be @('Bls', 'Debian', 'Grub', 'Kernelstub', 'ProxmoxBootTool', 'Rhel7', 'RpmOstree', 'SystemdBoot')
        & $complete 'Enable-IommuBoot -CpuVendor A' | Should -Be @('Amd')
        & $complete 'Disable-NouveauDriver -InitramfsTool ' | Should -Be @('dracut', 'mkinitcpio', 'update-initramfs')
    }
}

Describe 'Disable-IommuBoot' {
    It 'keeps the arguments the user had before Enable-IommuBoot (stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7 -Grub 'grub/pci-stub-grub'; $Roots.Add($root)
        $null = Enable-IommuBoot -Root $root -StubId 10de:11fa, 8086:1572 -Confirm:$false
        $undo = Disable-IommuBoot -Root $root -Confirm:$false
        $undo.ArgumentsRemoved | Should -Be @('iommu=pt', 'pci-stub.ids=10de:11fa')
        Get-Content -Raw (Join-Path $root 'etc/default/grub') | Should -Match 'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet pci-stub.ids=8086:1572 intel_iommu=on"'
    }

    It 'puts a replaced iommu=off back and says when there is nothing to undo (stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7 -Grub 'grub/iommu-off-grub'; $Roots.Add($root)
        $enable = Enable-IommuBoot -Root $root -Confirm:$false
        $enable.ArgumentsRemoved | Should -Be @('intel_iommu=off', 'iommu=off')
        $undo = Disable-IommuBoot -Root $root -Confirm:$false
        $undo.ArgumentsAdded | Should -Be @('intel_iommu=off', 'iommu=off')
        $again = Disable-IommuBoot -Root $root -Confirm:$false -WarningVariable warnings 3>$null
        $again.Changed | Should -BeFalse
        $warnings[0] | Should -Match 'no record of Enable-IommuBoot changes'
        (Get-StandInCall $root).Count | Should -Be 2
    }

    It '-WhatIf leaves every file hash unchanged' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $null = Enable-IommuBoot -Root $root -Confirm:$false
        $hashes = Get-TreeHash $root
        Disable-IommuBoot -Root $root -WhatIf | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $hashes
    }
}

Describe 'Get-IommuBootStatus' {
    It 'compares the configured arguments with /proc/cmdline and lists the devices on a stub driver (stand-in grub2-mkconfig)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $status = Get-IommuBootStatus -Root $root
        $status | Should -BeOfType ([GpuVirt.Core.Boot.IommuBootStatus])
        $status.BootLoader | Should -Be 'Rhel7'
        $status.IommuConfigured | Should -BeFalse
        $status.IommuActive | Should -BeTrue
        $status.RunningArguments | Should -Be @('intel_iommu=on', 'iommu=pt')
        $status.RebootPending | Should -BeTrue
        $status.StubbedDevices | Should -Be @('0000:02:00.0 [10de:11fa] pci-stub')

        $null = Get-GpuDevice -Root $root -Address 02:00.0 | Enable-IommuBoot -Root $root -Confirm:$false
        $after = Get-IommuBootStatus -Root $root
        $after.IommuConfigured | Should -BeTrue
        $after.PassthroughConfigured | Should -BeTrue
        $after.StubIdsConfigured | Should -Be @('10de:11fa')
        $after.StubIdsActive | Should -BeNullOrEmpty
        $after.ChangesRecorded | Should -BeTrue
        $after.RebootPending | Should -BeTrue

        Set-HostFile -Root $root -Path 'proc/cmdline' -Text "BOOT_IMAGE=/vmlinuz ro rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa`n"
        $rebooted = Get-IommuBootStatus -Root $root
        $rebooted.RebootPending | Should -BeFalse
        $rebooted.StubIdsActive | Should -Be @('10de:11fa')
    }

    It 'reports no IOMMU on a host without groups and no boot loader without failing' {
        $builder = New-FixtureHost -Name Seed
        $Roots.Add($builder.Root)
        Remove-Item -Recurse -Force (Join-Path $builder.Root 'sys/kernel/iommu_groups')
        $status = Get-IommuBootStatus -Root $builder.Root
        $status.IommuActive | Should -BeFalse
        $status.BootLoader | Should -BeNullOrEmpty
        $status.RebootPending | Should -BeFalse
        $status.IommuConfigured | Should -BeFalse
        $status.BootConfigurationFound | Should -BeLike "None: No known boot loader configuration was found under '$($builder.Root)' (/etc/default/grub, *"
        ($status | Format-List | Out-String) | Should -Match 'BootConfigurationFound +: None: No known boot loader'
    }

    It 'says which boot configuration it read' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $status = Get-IommuBootStatus -Root $root
        $status.BootConfigurationFound | Should -Be 'Rhel7: /etc/default/grub'
        ($status | Format-List | Out-String) | Should -Not -Match 'BootConfigurationFound'
    }
}

Describe 'Disable-NouveauDriver and Enable-NouveauDriver' {
    It 'writes the blacklist file and runs dracut --force, then undoes it (stand-in dracut)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, $null, $null)
        $change = Disable-NouveauDriver -Root $root -Confirm:$false
        $change.InitramfsTool | Should -Be 'dracut'
        $change.Files | Should -Be @('/etc/modprobe.d/blacklist-nouveau.conf')
        $change.Backups | Should -BeNullOrEmpty -Because 'the file was created: there was nothing to back up'
        Get-Content -Raw (Join-Path $root 'etc/modprobe.d/blacklist-nouveau.conf') | Should -BeExactly "# Written by Disable-NouveauDriver (GpuVirt); Enable-NouveauDriver removes this file.`nblacklist nouveau`noptions nouveau modeset=0`n"
        (Get-StandInCall $root)[0] | Should -Be @('dracut', '--force')
        (Get-IommuBootStatus -Root $root).NouveauBlacklisted | Should -BeTrue

        (Disable-NouveauDriver -Root $root -Confirm:$false).Changed | Should -BeFalse
        $undo = Enable-NouveauDriver -Root $root -AllKernels -Confirm:$false
        $undo.Files | Should -Be @('/etc/modprobe.d/blacklist-nouveau.conf')
        Test-Path (Join-Path $root 'etc/modprobe.d/blacklist-nouveau.conf') | Should -BeFalse
        Get-Content -Raw (Join-Path $root $undo.Backups[0]) | Should -Match 'blacklist nouveau'
        (Get-StandInCall $root)[1] | Should -Be @('dracut', '--regenerate-all', '--force')
    }

    It 'uses update-initramfs on Debian, for all kernels with -AllKernels (stand-in update-initramfs)' {
        $root = New-BootHost Debian; $Roots.Add($root)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'update-initramfs', 0, $null, $null)
        $null = Disable-NouveauDriver -Root $root -Name gpu-host -AllKernels -Confirm:$false
        Test-Path (Join-Path $root 'etc/modprobe.d/gpu-host.conf') | Should -BeTrue
        (Get-StandInCall $root)[0] | Should -Be @('update-initramfs', '-u', '-k', 'all')
    }

    It 'writes nothing when the NVIDIA installer already blacklisted nouveau (stand-in dracut)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, $null, $null)
        $null = [GpuVirt.Fixtures.BootFixture]::Write($root, 'etc/modprobe.d/nvidia-installer-disable-nouveau.conf', "# generated by nvidia-installer`nblacklist nouveau`noptions nouveau modeset=0`n")
        $change = Disable-NouveauDriver -Root $root -Confirm:$false
        $change.Changed | Should -BeFalse
        (Get-StandInCall $root).Count | Should -Be 0
        { Enable-NouveauDriver -Root $root -Name nvidia-installer-disable-nouveau -Confirm:$false } | Should -Throw -ErrorId 'ModprobeFileConflict,GpuVirt.Commands.EnableNouveauDriverCommand'
    }

    It 'removes the new file again when dracut fails, and -WhatIf changes nothing (failing stand-in dracut)' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 1, 'dracut: Cannot find module directory /lib/modules/3.10.0-1160.el7.x86_64/', $null)
        $hashes = Get-TreeHash $root
        Disable-NouveauDriver -Root $root -WhatIf | Should -BeNullOrEmpty
        { Disable-NouveauDriver -Root $root -Confirm:$false } | Should -Throw -ErrorId 'BootRegenerationFailed,GpuVirt.Commands.DisableNouveauDriverCommand' -ExpectedMessage '*exit code 1*Cannot find module directory*'
        Get-TreeHash $root | Should -Be $hashes
        { Disable-NouveauDriver -Root $root -Name '../evil' -Confirm:$false } | Should -Throw -ErrorId 'InvalidModprobeFileName,GpuVirt.Commands.DisableNouveauDriverCommand'
        $bare = (New-FixtureHost).Root; $Roots.Add($bare)
        { Disable-NouveauDriver -Root $bare -Confirm:$false } | Should -Throw -ErrorId 'InitramfsToolNotDetected,GpuVirt.Commands.DisableNouveauDriverCommand'
    }
}

Describe "An image's absolute links stay inside its root" {
    It 'writes the boot record, the nouveau blacklist, the mdevctl definition and the lock under the root when their directories are absolute links' {
        $root = New-BootHost Rhel7; $Roots.Add($root)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, $null, $null)
        # Each directory of the image is an absolute link to /<outside>/<name>. That path exists on this machine too,
        # so that a write that followed the link out of the image lands there, in this test's own directory.
        $outside = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-outside-' + [guid]::NewGuid().ToString('N'))
        $Roots.Add($outside)
        $links = [ordered]@{ 'var/lib/gpuvirt' = 'state'; 'etc/modprobe.d' = 'modprobe'; 'etc/mdevctl.d' = 'mdevctl'; 'run/lock' = 'lock' }
        foreach ($path in $links.Keys) {
            $target = "$outside/$($links[$path])"
            $null = New-Item -ItemType Directory -Force $target, (Join-Path $root $target.TrimStart('/'))
            $inImage = Join-Path $root $path
            if (Test-Path -LiteralPath $inImage) {
                Get-ChildItem -LiteralPath $inImage -Force | Move-Item -Destination (Join-Path $root $target.TrimStart('/'))
                Remove-Item -LiteralPath $inImage -Recurse -Force
            }
            $null = New-Item -ItemType Directory -Force (Split-Path $inImage)
            $null = New-Item -ItemType SymbolicLink -Path $inImage -Target $target
        }
        $uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'

        $null = Enable-IommuBoot -Root $root -CpuVendor Intel -StubId 10de:11fa -Confirm:$false
        $null = Disable-NouveauDriver -Root $root -Confirm:$false
        $null = New-VgpuDevice -Root $root 01:00.0 nvidia-63 -Uuid $uuid -DefineOnly

        @(Get-ChildItem -LiteralPath $outside -Recurse -Force -File) | Should -BeNullOrEmpty -Because 'nothing is written outside the root'
        $inside = Join-Path $root $outside.TrimStart('/')
        Test-Path -LiteralPath (Join-Path $inside 'state/boot-edits.tsv') | Should -BeTrue
        Get-Content -Raw (Join-Path $inside 'modprobe/blacklist-nouveau.conf') | Should -Match 'blacklist nouveau'
        Test-Path -LiteralPath (Join-Path $inside "mdevctl/0000:01:00.0/$uuid") | Should -BeTrue
        Test-Path -LiteralPath (Join-Path $inside 'lock/gpuvirt.lock') | Should -BeTrue
        # The links themselves are kept.
        foreach ($path in $links.Keys) { (Get-Item -LiteralPath (Join-Path $root $path) -Force).LinkTarget | Should -Be "$outside/$($links[$path])" }
    }
}
