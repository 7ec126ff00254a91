BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Seed = New-FixtureHost -Name Seed
    $script:Two = New-FixtureHost -Name TwoSocket
}

AfterAll {
    $script:Seed, $script:Two | Remove-FixtureHost
}

Describe 'Get-PciDevice' {
    It 'lists every function of the seed host sorted by address, with typed properties' {
        $devices = Get-PciDevice -Root $Seed.Root
        ($devices | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:00:00.0', '0000:00:01.0', '0000:00:03.0', '0000:00:19.0', '0000:00:1f.0', '0000:00:1f.2', '0000:01:00.0', '0000:02:00.0', '0000:02:00.1')
        $quadro = $devices | Where-Object { $_.Address.ToString() -eq '0000:02:00.0' }
        $quadro | Should -BeOfType ([GpuVirt.Core.PciDevice])
        $quadro.Ids | Should -Be '10de:11fa'
        $quadro.DeviceName | Should -Be 'GK106GL [Quadro K4000]'
        $quadro.Driver | Should -Be 'pci-stub'
        $quadro.IommuGroup | Should -Be 13
    }

    It 'matches the real lspci on <_> for address, ids, class, revision and driver' -ForEach @('Seed', 'TwoSocket') {
        $tree = if ($_ -eq 'Seed') { $Seed } else { $Two }
        $expected = Get-LspciDevice -Root $tree.Root
        $actual = Get-PciDevice -Root $tree.Root
        $actual.Count | Should -Be $expected.Count
        for ($i = 0; $i -lt $expected.Count; $i++) {
            $e = $expected[$i]; $a = $actual[$i]
            $a.Address.ToString() | Should -Be $e.Address
            $a.Ids | Should -Be $e.Ids
            $a.ClassId | Should -Be $e.ClassId
            $rev = if ($a.Revision) { '{0:x2}' -f $a.Revision } else { $null }
            $rev | Should -Be $e.Revision -Because "revision of $($e.Address)"
            $a.Driver | Should -Be $e.Driver -Because "driver of $($e.Address)"
        }
    }

    It "matches plain 'lspci -Dnn' on this machine's own /sys" {
        $expected = Get-LspciDevice
        $actual = Get-PciDevice
        $actual.Count | Should -BeGreaterThan 0
        ($actual | ForEach-Object { $_.Address.ToString() }) | Should -Be ($expected | ForEach-Object Address)
        $actual.Ids | Should -Be $expected.Ids
        $actual.ClassId | Should -Be $expected.ClassId
        $actual.ForEach({ if ($_.Revision) { '{0:x2}' -f $_.Revision } else { $null } }) | Should -Be $expected.Revision
    }

    It 'takes addresses in every form, with wildcards, and from the pipeline' {
        (Get-PciDevice -Root $Seed.Root -Address 'pci_0000_02_00_1').Ids | Should -Be '10de:0e0b'
        (Get-PciDevice -Root $Seed.Root 02:00.*).Count | Should -Be 2
        (Get-PciDevice -Root $Seed.Root '0000:00:1f.*').Ids | Should -Be @('8086:8c4e', '8086:8c02')
        ('02:00.0', '01:00.0' | Get-PciDevice -Root $Seed.Root).Ids | Should -Be @('10de:11fa', '10de:1bb3')
        (Get-PciDevice -Root $Two.Root '10000:01:00.0').VendorName | Should -Be 'Samsung Electronics Co Ltd'
    }

    It 'filters by vendor, device, class and driver' {
        (Get-PciDevice -Root $Seed.Root -VendorId 10de).Count | Should -Be 3
        (Get-PciDevice -Root $Seed.Root -VendorId 0x10de -DeviceId 11fa).Address.ToString() | Should -Be '0000:02:00.0'
        (Get-PciDevice -Root $Seed.Root -Class 03).Count | Should -Be 2
        (Get-PciDevice -Root $Seed.Root -Class 0302).Ids | Should -Be '10de:1bb3'
        (Get-PciDevice -Root $Seed.Root -Driver 'pci-*').Ids | Should -Be '10de:11fa'
    }

    It 'reports a malformed address as InvalidPciAddress (InvalidArgument) and goes on' {
        $found = Get-PciDevice -Root $Seed.Root -Address 'nonsense', '02:00.0' -ErrorVariable errs -ErrorAction SilentlyContinue
        $found.Ids | Should -Be '10de:11fa'
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPciAddress,*'
        $errs[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $errs[0].Exception.Message | Should -BeLike "*pci_0000_02_00_0*"
        { Get-PciDevice -Root $Seed.Root -Address '0000:02:00.9' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidPciAddress,GpuVirt.Commands.GetPciDeviceCommand'
    }

    It 'reports a well-formed but absent address as a non-terminating PciDeviceNotFound' {
        $found = Get-PciDevice -Root $Seed.Root -Address '05:00.0', '02:00.1' -ErrorVariable errs -ErrorAction SilentlyContinue
        $found.Ids | Should -Be '10de:0e0b'
        $errs[0].FullyQualifiedErrorId | Should -Be 'PciDeviceNotFound,GpuVirt.Commands.GetPciDeviceCommand'
        $errs[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'rejects a bad id filter with a clear error' {
        { Get-PciDevice -Root $Seed.Root -VendorId 'nvidia' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidPciId,GpuVirt.Commands.GetPciDeviceCommand'
        { Get-PciDevice -Root $Seed.Root -Class '3' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidPciClass,GpuVirt.Commands.GetPciDeviceCommand'
    }

    It 'fails clearly when the root does not exist' {
        { Get-PciDevice -Root (Join-Path $Seed.Root 'nope') -ErrorAction Stop } | Should -Throw -ErrorId 'HostRootNotFound,GpuVirt.Commands.GetPciDeviceCommand'
    }

    It 'shows a table that reads like lspci -Dnn' {
        $text = Get-PciDevice -Root $Seed.Root -Address 02:00.0 | Out-String -Width 200
        $text | Should -Match '0000:02:00\.0\s+VGA compatible controller \[0300\]\s+10de:11fa\s+a1\s+pci-stub\s+13\s+NVIDIA Corporation GK106GL \[Quadro K4000\]'
    }
}

Describe 'Get-GpuDevice' {
    It 'finds the seed GPUs with companions, group and vGPU capability' {
        $gpus = Get-GpuDevice -Root $Seed.Root
        ($gpus | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:01:00.0', '0000:02:00.0')
        $gpus[0] | Should -BeOfType ([GpuVirt.Core.GpuDevice])
        $gpus[0].SupportsMdev | Should -BeTrue
        $gpus[1].Companions | Should -Be '0000:02:00.1'
        $gpus[1].IommuGroup | Should -Be 13
    }

    It 'filters by vendor name or id and completes vendor names' {
        (Get-GpuDevice -Root $Two.Root -Vendor AMD).Ids | Should -Be '1002:73a3'
        (Get-GpuDevice -Root $Two.Root -Vendor 1a03).IsBootVga | Should -BeTrue
        (Get-GpuDevice -Root $Two.Root -Vendor NVIDIA).Count | Should -Be 7
        { Get-GpuDevice -Root $Two.Root -Vendor Matrox -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidVendor,GpuVirt.Commands.GetGpuDeviceCommand'
        $completion = [System.Management.Automation.CommandCompletion]::CompleteInput('Get-GpuDevice -Vendor N', 23, $null)
        $completion.CompletionMatches.CompletionText | Should -Be @('NVIDIA')
    }

    It 'marks NVIDIA SR-IOV vGPU cards by their virtual functions' {
        $a40 = Get-GpuDevice -Root $Two.Root -Address 01:00.0
        $a40.SupportsSriovVgpu | Should -BeTrue
        $a40.VgpuVirtualFunctions.Count | Should -Be 4
    }

    It 'names the attribute that could not be read (EIO injected by strace on class) instead of dropping the GPU' {
        # The real read(2) of 0000:02:00.0's class fails with EIO in a child pwsh: strace -P that file -e inject=read:error=EIO.
        $class = (Resolve-Path -LiteralPath (Join-Path $Seed.Root 'sys/bus/pci/devices/0000:02:00.0/class')).Path
        $pwsh = [Environment]::GetCommandLineArgs()[0]
        $script = "Import-Module '$env:GPUVIRT_MODULE'; `$e = @(); `$g = Get-GpuDevice -Root '$($Seed.Root)' -ErrorVariable e -ErrorAction SilentlyContinue; " +
            "'gpus:' + ((`$g | ForEach-Object { `$_.Address.ToString() }) -join ','); foreach (`$x in `$e) { 'error:' + `$x.FullyQualifiedErrorId + ' ' + `$x.CategoryInfo.Category; `$x.Exception.Message }"
        $out = & strace -f -qq -o /dev/null -P $class -e trace=read -e inject=read:error=EIO dotnet $pwsh -NoProfile -NonInteractive -Command $script 2>&1
        $text = $out -join "`n"
        $text | Should -Match 'error:PciAttributeUnreadable,GpuVirt\.Commands\.GetGpuDeviceCommand InvalidData' -Because $text
        $text | Should -Match "0000:02:00\.0: 'class' could not be read \(.*errno 5\)"
        $text | Should -Match 'gpus:0000:01:00\.0' -Because 'the readable GPU is still listed'
        # Read normally, nothing is reported.
        $e = @(); $null = Get-GpuDevice -Root $Seed.Root -ErrorVariable e; $e | Should -BeNullOrEmpty
    }

    It 'shows a GPU table with companions and vGPU kind' {
        $text = Get-GpuDevice -Root $Seed.Root | Out-String -Width 200
        $text | Should -Match '0000:02:00\.0\s+VGA\s+10de:11fa\s+pci-stub\s+13\s+02:00\.1\s+-\s+NVIDIA Corporation GK106GL \[Quadro K4000\]'
        $text | Should -Match '0000:01:00\.0\s+3D\s+10de:1bb3\s+nvidia\s+14\s+mdev\s+NVIDIA Corporation GP104GL \[Tesla P4\]'
    }
}

Describe 'Get-IommuGroup' {
    It 'pipes from Get-GpuDevice: the seed GPU and its audio in group 13, held back by the audio driver' {
        $groups = Get-GpuDevice -Root $Seed.Root -Address 02:00.0 | Get-IommuGroup -Root $Seed.Root
        $groups.Number | Should -Be 13
        $groups.Devices | Should -Be @('0000:02:00.0', '0000:02:00.1')
        $groups.IsViable | Should -BeFalse
        $groups.Blockers | Should -Be '0000:02:00.1'
        $groups.BlockerReasons | Should -BeLike "0000:02:00.1: bound to host driver 'snd_hda_intel'*"
    }

    It 'pipes from Get-PciDevice and writes each group once' {
        (Get-PciDevice -Root $Seed.Root -Address 02:00.1 | Get-IommuGroup -Root $Seed.Root).Number | Should -Be 13
        (Get-PciDevice -Root $Seed.Root -Address 02:00.* | Get-IommuGroup -Root $Seed.Root).Count | Should -Be 1
    }

    It 'shows the shared group behind a switch with its bridges marked' {
        $g = Get-IommuGroup -Root $Two.Root -Number 22
        @($g.Members | Where-Object { $_ -like '* (bridge) *' }).Count | Should -Be 4
        $g.Endpoints.Count | Should -Be 2
        $g.IsViable | Should -BeFalse
        (Get-IommuGroup -Root $Two.Root 42).IsViable | Should -BeTrue
        ($g | Out-String -Width 200) | Should -Match '0000:06:00\.0 \(bridge\) pcieport'
    }

    It 'reports an absent group as IommuGroupNotFound' {
        { Get-IommuGroup -Root $Seed.Root -Number 999 -ErrorAction Stop } | Should -Throw -ErrorId 'IommuGroupNotFound,GpuVirt.Commands.GetIommuGroupCommand'
    }

    It 'says the IOMMU is off, and how to turn it on, when there are no groups' {
        $off = New-FixtureHost -Name Seed -Configure { param($b) foreach ($d in $b.Devices) { $d.IommuGroup = $null } }
        try {
            { Get-IommuGroup -Root $off.Root -ErrorAction Stop } | Should -Throw -ErrorId 'IommuNotEnabled,GpuVirt.Commands.GetIommuGroupCommand'
            { Get-GpuDevice -Root $off.Root | Get-IommuGroup -Root $off.Root -ErrorAction Stop } | Should -Throw '*Enable-IommuBoot*'
        }
        finally { $off | Remove-FixtureHost }
    }
}

Describe 'Wildcard parameters' {
    It '<Command> -<Parameter> ''['' is InvalidWildcard naming the parameter, not a bare RuntimeException' -TestCases @(
        @{ Command = 'Get-PciDevice'; Parameter = 'Address' }
        @{ Command = 'Get-PciDevice'; Parameter = 'Driver' }
        @{ Command = 'Get-GpuDevice'; Parameter = 'Address' }
        @{ Command = 'Enable-IommuBoot'; Parameter = 'Address'; Extra = @{ CpuVendor = 'Intel'; WhatIf = $true } }
        @{ Command = 'Get-VgpuType'; Parameter = 'Parent' }
        @{ Command = 'Get-VgpuType'; Parameter = 'Name' }
        @{ Command = 'Get-VgpuDevice'; Parameter = 'Uuid' }
        @{ Command = 'Get-VgpuDevice'; Parameter = 'Parent' }
        @{ Command = 'Export-VgpuDefinition'; Parameter = 'Uuid' }
        @{ Command = 'Export-VgpuDefinition'; Parameter = 'Parent' }
        @{ Command = 'Get-GpuHostdev'; Parameter = 'Domain'; Extra = @{ Connect = 'test:///default' } }
    ) {
        param($Command, $Parameter, $Extra)
        $arguments = @{ $Parameter = '[' }
        if ($Command -ne 'Get-GpuHostdev') { $arguments.Root = $Seed.Root }
        if ($Extra) { foreach ($k in $Extra.Keys) { $arguments[$k] = $Extra[$k] } }
        $err = $null
        try { & $Command @arguments -ErrorAction Stop | Out-Null } catch { $err = $_ }
        $err | Should -Not -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -BeLike "InvalidWildcard,GpuVirt.Commands.*" -Because $err.Exception.ToString()
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match ('^' + [regex]::Escape("-$Parameter '[' is not a valid wildcard pattern"))
    }
}
