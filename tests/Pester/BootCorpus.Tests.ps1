BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

    $script:Roots = [System.Collections.Generic.List[string]]::new()
    $script:Managed = 'intel_iommu', 'amd_iommu', 'iommu', 'pci_stub.ids', 'vfio_pci.ids'

    function New-CorpusHost {
        <# The seed host (Intel, or AMD with -Amd) with one corpus file laid out as its family ships it. #>
        param([string] $Family, [string] $Data, [switch] $Amd)
        $builder = New-FixtureHost -Name Seed
        $root = $builder.Root
        $script:Roots.Add($root)
        if ($Amd) {
            $cpuinfo = Join-Path $root 'proc/cpuinfo'
            [IO.File]::WriteAllText($cpuinfo, [IO.File]::ReadAllText($cpuinfo).Replace('GenuineIntel', 'AuthenticAMD'))
        }
        $data = "corpus/$Data"
        switch ($Family) {
            'Debian' { [GpuVirt.Fixtures.BootFixture]::Debian($root, $data) }
            'Rhel7' { [GpuVirt.Fixtures.BootFixture]::Rhel7($root, $data, $false, $false) }
            'Rhel7Absolute' { [GpuVirt.Fixtures.BootFixture]::Rhel7($root, $data, $false, $true) }
            'Arch' { [GpuVirt.Fixtures.BootFixture]::Grub($root, $data, "NAME=`"Arch Linux`"`nID=arch`n", 'grub-mkconfig', 'boot/grub/grub.cfg', $false) }
            'Manjaro' { [GpuVirt.Fixtures.BootFixture]::Grub($root, $data, "NAME=`"Manjaro Linux`"`nID=manjaro`nID_LIKE=arch`n", 'grub-mkconfig', 'boot/grub/grub.cfg', $false) }
            'Gentoo' { [GpuVirt.Fixtures.BootFixture]::Grub($root, $data, "NAME=Gentoo`nID=gentoo`n", 'grub-mkconfig', 'boot/grub/grub.cfg', $false) }
            'OpenSuse' { [GpuVirt.Fixtures.BootFixture]::Grub($root, $data, "NAME=`"openSUSE Tumbleweed`"`nID=`"opensuse-tumbleweed`"`nID_LIKE=`"opensuse suse`"`n", 'grub2-mkconfig', 'boot/grub2/grub.cfg', $true) }
            # Fedora without BLS (GRUB_ENABLE_BLSCFG=false): the configuration it boots from, BIOS or UEFI, as on RHEL 7.
            'FedoraBios' { [GpuVirt.Fixtures.BootFixture]::Grub($root, $data, "NAME=`"Fedora Linux`"`nID=fedora`n", 'grub2-mkconfig', 'boot/grub2/grub.cfg', $false) }
            'FedoraEfi' { [GpuVirt.Fixtures.BootFixture]::Grub($root, $data, "NAME=`"Fedora Linux`"`nID=fedora`n", 'grub2-mkconfig', 'etc/grub2-efi.cfg', $true) }
            'ProxmoxCmdline' { [GpuVirt.Fixtures.BootFixture]::Proxmox($root, [GpuVirt.Fixtures.BootFixture]::Data($data), [NullString]::Value) }
            'ProxmoxGrub' { [GpuVirt.Fixtures.BootFixture]::Proxmox($root, [NullString]::Value, $data) }
            'SystemdBoot' { [GpuVirt.Fixtures.BootFixture]::SystemdBoot($root, [GpuVirt.Fixtures.BootFixture]::Data($data), '6.8.9-300.fc40.x86_64') }
        }
        $root
    }

    function Get-EffectiveCommandLine {
        <#
            What the kernel gets from the file, by the shell itself: real bash sources the grub file and prints
            GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT (a plain command line file is its words). The kernel
            splits on any blank, carriage returns included.
        #>
        param([string] $File, [switch] $Plain)
        if ($Plain) { $text = [IO.File]::ReadAllText($File) }
        else {
            $text = & bash --noprofile --norc -c '. "$1" >/dev/null 2>&1; printf "%s\n%s" "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT"' bash $File
            $text = $text -join "`n"
        }
        , @($text -split '[ \t\r\n]+' | Where-Object { $_ })
    }

    function Get-Key([string] $Word) { ($Word -split '=', 2)[0].Replace('-', '_') }
    function Get-ArgItem([string[]] $Words, [string] $Key, [switch] $Last) {
        <# The comma-separated items of a key's arguments (only the last argument's with -Last: a module parameter). #>
        $with = @($Words | Where-Object { (Get-Key $_) -eq $Key })
        if ($Last) { $with = @($with | Select-Object -Last 1) }
        $with | ForEach-Object { ($_ -split '=', 2)[1] -split ',' } | Where-Object { $_ }
    }

    function Assert-Effective {
        <# The kernel line after Enable: every other word as before, in order; the IOMMU and the id once, nothing fighting them. #>
        param([string[]] $Before, [string[]] $After, [switch] $Amd, [string] $Id)
        @($After | Where-Object { (Get-Key $_) -notin $Managed }) | Should -Be @($Before | Where-Object { (Get-Key $_) -notin $Managed })
        if ($Amd) {
            @($After | Where-Object { (Get-Key $_) -eq 'intel_iommu' }) | Should -Be @($Before | Where-Object { (Get-Key $_) -eq 'intel_iommu' })
            Get-ArgItem $After 'amd_iommu' | Should -Not -Contain 'off'
        }
        else {
            @($After | Where-Object { (Get-Key $_) -eq 'intel_iommu' }) | Should -Be @('intel_iommu=on')
            @($After | Where-Object { (Get-Key $_) -eq 'amd_iommu' }) | Should -Be @($Before | Where-Object { (Get-Key $_) -eq 'amd_iommu' })
        }
        @($After | Where-Object { (Get-Key $_) -eq 'iommu' }) | Should -Be @('iommu=pt')
        $ids = @(Get-ArgItem $After 'vfio_pci.ids' -Last)
        $ids | Should -Contain $Id
        @($ids | Where-Object { $_ -eq $Id }).Count | Should -Be 1
        foreach ($kept in Get-ArgItem $Before 'vfio_pci.ids' -Last) { $ids | Should -Contain $kept }
        Get-ArgItem $After 'pci_stub.ids' -Last | Should -Not -Contain $Id
    }

    function Get-Blanked([string] $Text) {
        <# The file with the values of the two variables taken out: what must stay byte for byte. #>
        [regex]::Replace($Text, '(GRUB_CMDLINE_LINUX(?:_DEFAULT)?=)("(?:[^"\\]|\\[\s\S])*"|''[^'']*''|[^\s]*)', '$1')
    }

}

AfterAll {
    foreach ($r in $script:Roots) { if (Test-Path $r) { Remove-Item -Recurse -Force $r } }
}

Describe 'Enable-IommuBoot and Disable-IommuBoot on real-shaped boot files (effective command line by bash)' {
    It '<Data> (<Family>, <Cpu>): enable, enable again, -WhatIf, disable' -ForEach @(
        foreach ($cpu in 'Intel', 'Amd') {
            @{ Family = 'Debian'; Data = 'ubuntu-vfio-default-grub'; Cpu = $cpu; Program = 'update-grub'; Argv = @() }
            @{ Family = 'Debian'; Data = 'debian-default-conflicts-grub'; Cpu = $cpu; Program = 'update-grub'; Argv = @() }
            @{ Family = 'Debian'; Data = 'debian-single-quoted-grub'; Cpu = $cpu; Program = 'update-grub'; Argv = @() }
            @{ Family = 'Debian'; Data = 'debian-no-final-newline-grub'; Cpu = $cpu; Program = 'update-grub'; Argv = @() }
            @{ Family = 'Debian'; Data = 'debian-crlf-grub'; Cpu = $cpu; Program = 'update-grub'; Argv = @() }
            @{ Family = 'Rhel7'; Data = 'rhel7-exported-multiline-grub'; Cpu = $cpu; Program = 'grub2-mkconfig'; Argv = @('-o', '/etc/grub2.cfg') }
            @{ Family = 'Rhel7Absolute'; Data = 'rhel7-exported-multiline-grub'; Cpu = $cpu; Program = 'grub2-mkconfig'; Argv = @('-o', '/etc/grub2.cfg') }
            @{ Family = 'Arch'; Data = 'arch-default-grub'; Cpu = $cpu; Program = 'grub-mkconfig'; Argv = @('-o', '/boot/grub/grub.cfg') }
            @{ Family = 'Manjaro'; Data = 'manjaro-default-grub'; Cpu = $cpu; Program = 'grub-mkconfig'; Argv = @('-o', '/boot/grub/grub.cfg') }
            @{ Family = 'Gentoo'; Data = 'gentoo-default-grub'; Cpu = $cpu; Program = 'grub-mkconfig'; Argv = @('-o', '/boot/grub/grub.cfg') }
            @{ Family = 'OpenSuse'; Data = 'opensuse-default-grub'; Cpu = $cpu; Program = 'grub2-mkconfig'; Argv = @('-o', '/boot/grub2/grub.cfg') }
            @{ Family = 'FedoraBios'; Data = 'fedora-nobls-default-grub'; Cpu = $cpu; Program = 'grub2-mkconfig'; Argv = @('-o', '/boot/grub2/grub.cfg') }
            @{ Family = 'FedoraEfi'; Data = 'fedora-nobls-default-grub'; Cpu = $cpu; Program = 'grub2-mkconfig'; Argv = @('-o', '/etc/grub2-efi.cfg') }
            @{ Family = 'ProxmoxGrub'; Data = 'proxmox-default-grub'; Cpu = $cpu; Program = 'proxmox-boot-tool'; Argv = @('refresh') }
            @{ Family = 'ProxmoxCmdline'; Data = 'proxmox-kernel-cmdline'; Cpu = $cpu; Program = 'proxmox-boot-tool'; Argv = @('refresh') }
            @{ Family = 'SystemdBoot'; Data = 'systemd-boot-crlf-cmdline'; Cpu = $cpu; Program = 'kernel-install'; Argv = @('add', '6.8.9-300.fc40.x86_64', '/usr/lib/modules/6.8.9-300.fc40.x86_64/vmlinuz') }
        }
    ) {
        $amd = $Cpu -eq 'Amd'
        $root = New-CorpusHost -Family $Family -Data $Data -Amd:$amd
        $plain = $Family -in 'ProxmoxCmdline', 'SystemdBoot'
        $file = Join-Path $root $(if ($plain) { 'etc/kernel/cmdline' } else { 'etc/default/grub' })
        $original = [IO.File]::ReadAllBytes($file)
        $originalText = [IO.File]::ReadAllText($file)
        $before = Get-EffectiveCommandLine $file -Plain:$plain
        $hashes = Get-TreeHash $root

        # -WhatIf: nothing written, nothing run.
        Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -WhatIf | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 0

        $first = Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false -WarningAction SilentlyContinue
        $after = Get-EffectiveCommandLine $file -Plain:$plain
        Assert-Effective -Before $before -After $after -Amd:$amd -Id '10de:11fa'
        if (-not $plain) { (Get-Blanked ([IO.File]::ReadAllText($file))).StartsWith((Get-Blanked $originalText)) | Should -BeTrue }
        $first.Changed | Should -BeTrue
        $calls = Get-StandInCall $root
        $calls.Count | Should -Be 1
        $calls[0] | Should -Be (@($Program) + $Argv)

        # Status reads what the kernel will get.
        $status = Get-IommuBootStatus -Root $root
        $status.IommuConfigured | Should -BeTrue
        $status.PassthroughConfigured | Should -BeTrue
        $status.StubIdsConfigured | Should -Be @(@(Get-ArgItem $after 'pci_stub.ids' -Last) + @(Get-ArgItem $after 'vfio_pci.ids' -Last) | Select-Object -Unique)
        $status.BootLoader | Should -Be $first.BootLoader

        $afterBytes = [IO.File]::ReadAllBytes($file)
        $second = Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false -WarningAction SilentlyContinue
        $second.Changed | Should -BeFalse
        [IO.File]::ReadAllBytes($file) | Should -Be $afterBytes
        (Get-StandInCall $root).Count | Should -Be 1

        $afterHashes = Get-TreeHash $root
        Disable-IommuBoot -Root $root -WhatIf | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $afterHashes

        $undo = Disable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
        $undo.Changed | Should -BeTrue
        [IO.File]::ReadAllBytes($file) | Should -Be $original
        $restored = Get-EffectiveCommandLine $file -Plain:$plain
        $restored | Should -Be $before
        (Get-StandInCall $root).Count | Should -Be 2
        (Get-StandInCall $root)[1] | Should -Be (@($Program) + $Argv)
    }

    It 'says that iommu=soft in GRUB_CMDLINE_LINUX_DEFAULT is replaced by iommu=pt, also under -WhatIf' {
        $root = New-CorpusHost -Family Debian -Data 'debian-crlf-grub'
        $null = Enable-IommuBoot -Root $root -WhatIf -WarningVariable whatIfWarnings 3>$null
        $change = Enable-IommuBoot -Root $root -Confirm:$false -WarningVariable warnings 3>$null
        $change.ArgumentsRemoved | Should -Be @('iommu=soft')
        $change.ArgumentsAdded | Should -Be @('intel_iommu=on', 'iommu=pt')
        foreach ($w in $warnings, $whatIfWarnings) { ($w -join "`n") | Should -Match "'iommu=soft' in GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub conflicts with 'iommu=pt'" }
        [IO.File]::ReadAllText((Join-Path $root 'etc/default/grub')) | Should -Match 'GRUB_CMDLINE_LINUX_DEFAULT="quiet iommu=pt"\r\nGRUB_CMDLINE_LINUX="console=tty0 intel_iommu=on"\r\n'
    }

    It 'adds an id to the vfio-pci.ids list in GRUB_CMDLINE_LINUX_DEFAULT, the one the kernel takes, and status shows that list' {
        $root = New-CorpusHost -Family Debian -Data 'ubuntu-vfio-default-grub'
        $status = Get-IommuBootStatus -Root $root
        $status.IommuConfigured | Should -BeTrue
        $status.StubIdsConfigured | Should -Be @('10de:1b80', '10de:10f0')
        $change = Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false
        $change.ArgumentsAdded | Should -Be @('vfio-pci.ids=10de:11fa')
        [IO.File]::ReadAllText((Join-Path $root 'etc/default/grub')) | Should -Match 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash intel_iommu=on iommu=pt vfio-pci.ids=10de:1b80,10de:10f0,10de:11fa"\nGRUB_CMDLINE_LINUX=""\n'
    }

    It 'status reads what the kernel gets: <Default> in GRUB_CMDLINE_LINUX_DEFAULT overrides intel_iommu=on in GRUB_CMDLINE_LINUX' -ForEach @(
        @{ Default = 'intel_iommu=off'; Pt = $true }
        @{ Default = 'iommu=soft'; Pt = $false }
        @{ Default = 'iommu=off'; Pt = $false }
    ) {
        $root = New-CorpusHost -Family Debian -Data 'debian-crlf-grub'
        $null = [GpuVirt.Fixtures.BootFixture]::Write($root, 'etc/default/grub', "GRUB_CMDLINE_LINUX=`"intel_iommu=on iommu=pt`"`nGRUB_CMDLINE_LINUX_DEFAULT=`"quiet $Default`"`n")
        $status = Get-IommuBootStatus -Root $root
        $status.IommuConfigured | Should -BeFalse
        $status.PassthroughConfigured | Should -Be $Pt
        $status.UnconfiguredEntries | Should -Be @('/etc/default/grub')
        $change = Enable-IommuBoot -Root $root -Confirm:$false 3>$null
        $change.ArgumentsRemoved | Should -Be @($Default)
        $after = Get-EffectiveCommandLine (Join-Path $root 'etc/default/grub')
        @($after | Where-Object { $_ -like 'intel_iommu=*' -or $_ -like 'iommu=*' }) | Should -Be @('intel_iommu=on', 'iommu=pt')
        (Get-IommuBootStatus -Root $root).IommuConfigured | Should -BeTrue
    }

    It 'detects each family from /etc/os-release and the files present' -ForEach @(
        @{ Family = 'Arch'; Data = 'arch-default-grub'; Expected = 'Grub' }
        @{ Family = 'Manjaro'; Data = 'manjaro-default-grub'; Expected = 'Grub' }
        @{ Family = 'Gentoo'; Data = 'gentoo-default-grub'; Expected = 'Grub' }
        @{ Family = 'OpenSuse'; Data = 'opensuse-default-grub'; Expected = 'Grub' }
        @{ Family = 'FedoraBios'; Data = 'fedora-nobls-default-grub'; Expected = 'Grub' }
        @{ Family = 'ProxmoxGrub'; Data = 'proxmox-default-grub'; Expected = 'ProxmoxBootTool' }
        @{ Family = 'ProxmoxCmdline'; Data = 'proxmox-kernel-cmdline'; Expected = 'ProxmoxBootTool' }
        @{ Family = 'Debian'; Data = 'debian-crlf-grub'; Expected = 'Debian' }
        @{ Family = 'Rhel7Absolute'; Data = 'rhel7-exported-multiline-grub'; Expected = 'Rhel7' }
    ) {
        $root = New-CorpusHost -Family $Family -Data $Data
        (Get-IommuBootStatus -Root $root).BootLoader | Should -Be $Expected
    }
}

Describe 'Families whose tool keeps the kernel arguments (stand-ins kernelstub, rpm-ostree, grubby)' {
    BeforeAll {
        function Set-ToolEffect {
            <#
                The stand-ins cannot be the real tools: the n-th call copies the tree under /stand-in-state/n into the
                root, i.e. the files the real tool leaves after that call (given by the test, next to the argv it
                asserts), so that the second run and the undo read what they would read on the real host.
            #>
            param([string] $Root, [int] $Call, [hashtable] $Files)
            foreach ($path in $Files.Keys) { $null = [GpuVirt.Fixtures.BootFixture]::Write($Root, "stand-in-state/$Call/$path", $Files[$path]) }
        }
        $script:StateScript = 'n=0; [ -f /stand-in-state/n ] && read n < /stand-in-state/n; n=$((n+1)); echo $n > /stand-in-state/n; [ -d /stand-in-state/$n ] && /bin/busybox cp -a /stand-in-state/$n/. /'
    }

    It 'kernelstub (Pop!_OS): --delete-options and --add-options with exactly what changes, and back (<Cpu>)' -ForEach @(
        @{ Cpu = 'Intel'; Added = 'iommu=pt intel_iommu=on vfio-pci.ids=10de:11fa' }
        @{ Cpu = 'Amd'; Added = 'iommu=pt vfio-pci.ids=10de:11fa' }
    ) {
        $root = New-CorpusHost -Family Debian -Data 'debian-crlf-grub' -Amd:($Cpu -eq 'Amd')
        Remove-Item (Join-Path $root 'etc/default/grub'), (Join-Path $root 'etc/debian_version')
        [GpuVirt.Fixtures.BootFixture]::Kernelstub($root, 'corpus/kernelstub-configuration', $StateScript)
        $config = Join-Path $root 'etc/kernelstub/configuration'
        $original = [IO.File]::ReadAllText($config)
        $after = $original.Replace("`"iommu=soft`"", (($Added -split ' ' | ForEach-Object { "`"$_`"" }) -join ",`n      "))
        Set-ToolEffect $root 1 @{ 'etc/kernelstub/configuration' = $after }
        Set-ToolEffect $root 2 @{ 'etc/kernelstub/configuration' = $original }

        (Get-IommuBootStatus -Root $root).BootLoader | Should -Be 'Kernelstub'
        (Get-IommuBootStatus -Root $root).IommuConfigured | Should -BeFalse
        $hashes = Get-TreeHash $root
        Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -WhatIf 3>$null | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $hashes

        $change = Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false 3>$null
        $change.BootLoader | Should -Be 'Kernelstub'
        (Get-StandInCall $root)[0] | Should -Be @('kernelstub', '--delete-options', 'iommu=soft', '--add-options', $Added)
        $status = Get-IommuBootStatus -Root $root
        $status.IommuConfigured | Should -BeTrue
        $status.StubIdsConfigured | Should -Be @('10de:11fa')
        (Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false 3>$null).Changed | Should -BeFalse
        (Get-StandInCall $root).Count | Should -Be 1

        $null = Disable-IommuBoot -Root $root -Confirm:$false 3>$null
        (Get-StandInCall $root)[1] | Should -Be @('kernelstub', '--delete-options', $Added, '--add-options', 'iommu=soft')
        [IO.File]::ReadAllText($config) | Should -BeExactly $original
    }

    It 'rpm-ostree (Fedora CoreOS): kargs --append of the default deployment, and --delete of only those (<Cpu>)' -ForEach @(
        @{ Cpu = 'Intel'; Added = @('intel_iommu=on', 'iommu=pt', 'vfio-pci.ids=10de:11fa') }
        @{ Cpu = 'Amd'; Added = @('iommu=pt', 'vfio-pci.ids=10de:11fa') }
    ) {
        $root = New-CorpusHost -Family Debian -Data 'debian-crlf-grub' -Amd:($Cpu -eq 'Amd')
        Remove-Item (Join-Path $root 'etc/default/grub'), (Join-Path $root 'etc/debian_version')
        [GpuVirt.Fixtures.BootFixture]::RpmOstree($root, [string[]]@('corpus/ostree-1-fedora-coreos.conf', 'corpus/ostree-2-fedora-coreos.conf'), $StateScript)
        $entries = 'boot/loader/entries'
        $default = [IO.File]::ReadAllText((Join-Path $root "$entries/ostree-2-fedora-coreos.conf"))
        $rollback = [IO.File]::ReadAllText((Join-Path $root "$entries/ostree-1-fedora-coreos.conf"))
        # A new deployment with the new arguments becomes the default (2); the one booted now becomes the rollback (1).
        $deployed = ($default -replace '(?m)^(options .*)$', ('$1 ' + ($Added -join ' '))).Replace('(ostree:0)', '(ostree:0) ')
        Set-ToolEffect $root 1 @{ "$entries/ostree-2-fedora-coreos.conf" = $deployed; "$entries/ostree-1-fedora-coreos.conf" = $default.Replace('version 2', 'version 1') }
        Set-ToolEffect $root 2 @{ "$entries/ostree-2-fedora-coreos.conf" = $default; "$entries/ostree-1-fedora-coreos.conf" = $rollback }

        (Get-IommuBootStatus -Root $root).BootLoader | Should -Be 'RpmOstree'
        $hashes = Get-TreeHash $root
        Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -WhatIf | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $hashes

        $null = Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false
        (Get-StandInCall $root)[0] | Should -Be (@('rpm-ostree', 'kargs') + @($Added | ForEach-Object { "--append=$_" }))
        (Get-IommuBootStatus -Root $root).IommuConfigured | Should -BeTrue
        (Enable-IommuBoot -Root $root -StubId 10de:11fa -StubDriver vfio-pci -Confirm:$false).Changed | Should -BeFalse
        (Get-StandInCall $root).Count | Should -Be 1

        $null = Disable-IommuBoot -Root $root -Confirm:$false
        (Get-StandInCall $root)[1] | Should -Be (@('rpm-ostree', 'kargs') + @($Added | ForEach-Object { "--delete=$_" }))
        [IO.File]::ReadAllText((Join-Path $root "$entries/ostree-2-fedora-coreos.conf")) | Should -BeExactly $default
    }

    It 'grubby (BLS): an entry the user gave iommu=pt keeps it after Disable-IommuBoot; an entry that lacks what the grub file has is fixed' {
        $root = New-CorpusHost -Family Debian -Data 'debian-crlf-grub'
        Remove-Item (Join-Path $root 'etc/default/grub'), (Join-Path $root 'etc/debian_version')
        [GpuVirt.Fixtures.BootFixture]::Rhel9($root, 'grub/rhel9-default-grub')
        $grub = Join-Path $root 'etc/default/grub'
        [IO.File]::WriteAllText($grub, [IO.File]::ReadAllText($grub).Replace('rhgb quiet"', 'rhgb quiet intel_iommu=on iommu=pt"'))
        $entry = Get-ChildItem (Join-Path $root 'boot/loader/entries') | Select-Object -First 1
        [IO.File]::WriteAllText($entry.FullName, [IO.File]::ReadAllText($entry.FullName).Replace('rhgb quiet', 'rhgb quiet iommu=pt'))
        $entryBefore = [IO.File]::ReadAllText($entry.FullName)
        $grubBefore = [IO.File]::ReadAllText($grub)

        $status = Get-IommuBootStatus -Root $root
        $status.IommuConfigured | Should -BeFalse
        $status.UnconfiguredEntries | Should -Be @("/boot/loader/entries/$($entry.Name)")
        ($status | Out-String -Width 250) | Should -Match ('(?m)^IommuConfigured\s+: False\r?\nUnconfiguredEntries\s+: ' + [regex]::Escape("/boot/loader/entries/$($entry.Name)") + '\r?$')

        $change = Enable-IommuBoot -Root $root -Confirm:$false
        $change.Changed | Should -BeTrue
        (Get-StandInCall $root)[0] | Should -Be @('grubby', '--update-kernel=ALL', '--args=intel_iommu=on', '--no-etc-grub-update')
        [IO.File]::ReadAllText($grub) | Should -BeExactly $grubBefore
        $fixed = Get-IommuBootStatus -Root $root
        $fixed.IommuConfigured | Should -BeTrue
        $fixed.UnconfiguredEntries | Should -BeNullOrEmpty
        ($fixed | Out-String -Width 250) | Should -Not -Match 'UnconfiguredEntries'

        $null = Disable-IommuBoot -Root $root -Confirm:$false
        (Get-StandInCall $root)[1] | Should -Be @('grubby', '--update-kernel=ALL', '--remove-args=intel_iommu=on', '--no-etc-grub-update')
        [IO.File]::ReadAllText($entry.FullName) | Should -BeExactly $entryBefore
    }
}

Describe 'Disable-NouveauDriver and Enable-NouveauDriver on Arch and Manjaro (stand-ins mkinitcpio, dracut)' {
    It '<Family>: mkinitcpio -P where /etc/mkinitcpio.conf exists, even with dracut installed; -WhatIf; back' -ForEach @(
        @{ Family = 'Arch'; Data = 'arch-default-grub' }
        @{ Family = 'Manjaro'; Data = 'manjaro-default-grub' }
    ) {
        $root = New-CorpusHost -Family $Family -Data $Data
        $null = [GpuVirt.Fixtures.BootFixture]::Write($root, 'etc/mkinitcpio.conf', "MODULES=()`nBINARIES=()`nFILES=()`nHOOKS=(base udev autodetect microcode modconf kms keyboard keymap consolefont block filesystems fsck)`n")
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'mkinitcpio', 0, [NullString]::Value, [NullString]::Value)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, [NullString]::Value, [NullString]::Value)
        $blacklist = Join-Path $root 'etc/modprobe.d/blacklist-nouveau.conf'
        $hashes = Get-TreeHash $root

        Disable-NouveauDriver -Root $root -WhatIf | Should -BeNullOrEmpty
        Get-TreeHash $root | Should -Be $hashes
        (Get-StandInCall $root).Count | Should -Be 0

        $change = Disable-NouveauDriver -Root $root -Confirm:$false
        $change.InitramfsTool | Should -Be 'mkinitcpio'
        $change.Changed | Should -BeTrue
        [IO.File]::ReadAllText($blacklist) | Should -Match '(?m)^blacklist nouveau$'
        $calls = Get-StandInCall $root
        $calls.Count | Should -Be 1
        $calls[0] | Should -Be @('mkinitcpio', '-P')
        (Get-IommuBootStatus -Root $root).NouveauBlacklisted | Should -BeTrue
        (Disable-NouveauDriver -Root $root -Confirm:$false).Changed | Should -BeFalse

        # -AllKernels changes nothing for mkinitcpio: -P is every preset already.
        $undo = Enable-NouveauDriver -Root $root -AllKernels -Confirm:$false
        $undo.InitramfsTool | Should -Be 'mkinitcpio'
        Test-Path $blacklist | Should -BeFalse
        $calls = Get-StandInCall $root
        $calls.Count | Should -Be 2
        $calls[1] | Should -Be @('mkinitcpio', '-P')
    }

    It 'uses dracut where mkinitcpio is installed but not configured, and mkinitcpio when asked with -InitramfsTool' {
        $root = New-CorpusHost -Family Arch -Data 'arch-default-grub'
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'mkinitcpio', 0, [NullString]::Value, [NullString]::Value)
        $null = [GpuVirt.Fixtures.StandIns]::Install($root, 'dracut', 0, [NullString]::Value, [NullString]::Value)
        (Disable-NouveauDriver -Root $root -Confirm:$false).InitramfsTool | Should -Be 'dracut'
        (Get-StandInCall $root)[0] | Should -Be @('dracut', '--force')
        (Enable-NouveauDriver -Root $root -InitramfsTool mkinitcpio -Confirm:$false).InitramfsTool | Should -Be 'mkinitcpio'
        (Get-StandInCall $root)[1] | Should -Be @('mkinitcpio', '-P')
    }

    It 'names mkinitcpio when no initramfs tool is installed' {
        $root = New-CorpusHost -Family Arch -Data 'arch-default-grub'
        { Disable-NouveauDriver -Root $root -Confirm:$false } | Should -Throw -ErrorId 'InitramfsToolNotDetected,GpuVirt.Commands.DisableNouveauDriverCommand' -ExpectedMessage '*mkinitcpio (Arch, Manjaro)*'
    }
}
