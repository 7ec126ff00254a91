# Field defects of the vGPU side: SR-IOV vGPU functions on NVIDIA's vendor-specific VFIO, the host checks by what the
# host's vGPU parents need, -Count planned as a whole, the one-type rule of placement, and mdevctl parity (the real
# mdevctl 1.2.0, run on a fixture's /etc/mdevctl.d in a private mount namespace).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Uuid = '9f579710-6ffc-4201-987a-4ffa0fb1f3a5'
    $script:Gvt = '4a0a190f-dcf3-4def-9342-c48768f0c940'

    function New-StandInSystemctl {
        # systemctl cannot run here (no systemd as PID 1): a stand-in that records each argv and answers 'enabled'.
        $dir = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-systemctl-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $dir
        Set-Content -Path (Join-Path $dir 'systemctl') -Value "#!/bin/sh`nprintf '%s\n' `"`$@`" >> '$dir/argv'`necho enabled`nexit 0`n"
        & chmod +x (Join-Path $dir 'systemctl')
        $dir
    }

    function New-BareHost([scriptblock] $Configure) {
        # A host with no NVIDIA GPU: a host bridge, SATA and a NIC, what Configure adds.
        $root = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-pester-' + [guid]::NewGuid().ToString('N'))
        $b = [GpuVirt.Fixtures.HostTreeBuilder]::new($root)
        $b.CpuVendor = 'GenuineIntel'
        $b.Cmdline = 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro intel_iommu=on iommu=pt'
        $null = $b.Add('0000:00:00.0', 0x8086, 0x0c00, 0x060000, { param($d) $d.IommuGroup = 0 })
        $null = $b.Add('0000:00:1f.2', 0x8086, 0x8c02, 0x010601, { param($d) $d.IommuGroup = 8; $d.Driver = 'ahci' })
        $null = $b.Add('0000:00:19.0', 0x8086, 0x153a, 0x020000, { param($d) $d.IommuGroup = 5; $d.Driver = 'e1000e' })
        if ($Configure) { & $Configure $b }
        $null = $b.Build()
        $b
    }

    function Set-VfType($Builder, [string] $Address, [int] $Type) {
        ($Builder.Devices | Where-Object Address -EQ $Address).CurrentVgpuType = $Type
    }
}

Describe 'Item 7: SR-IOV vGPU functions on nvidia' {
    It 'Item 7: a virtual function that runs a vGPU type on nvidia is viable, and Test-GpuVirtHost does not tell to detach it from nvidia' {
        # L40S VF 41:00.4 runs NVIDIA L40S-2Q (1161); 41:00.5 has no type yet.
        $h = New-FixtureHost -Name SriovVgpu -Configure { param($b) Set-VfType $b '0000:41:00.4' 1161 }
        try {
            $running = Get-IommuGroup -Root $h.Root -Number 21
            $running.Endpoints | Should -Be @('0000:41:00.4')
            $running.IsViable | Should -BeTrue -Because 'the VF carries a vGPU on NVIDIA''s vendor-specific VFIO, where a guest takes it'
            @($running.Blockers) | Should -HaveCount 0

            $idle = Get-IommuGroup -Root $h.Root -Number 22
            $idle.IsViable | Should -BeFalse
            $idle.BlockerReasons | Should -Be @('0000:41:00.5: a vGPU virtual function on nvidia with no vGPU type set; give it one with New-VgpuDevice (it stays on nvidia: vfio-pci would lose the vGPU)')

            $checks = @(Test-GpuVirtHost -Root $h.Root -Connect 'test:///default')
            $vf = $checks | Where-Object { $_.Name -eq 'IOMMU group' -and $_.Device -eq '0000:41:00.4' }
            $vf.Status | Should -Be 'Pass'
            $vf.Detail | Should -BeLike 'group 21: 0000:41:00.4 (nvidia); viable*'
            $free = $checks | Where-Object { $_.Name -eq 'IOMMU group' -and $_.Device -eq '0000:41:00.5' }
            $free.Status | Should -Be 'Warn'
            $free.Fix | Should -Not -BeLike '*Dismount-GpuHostDriver*'
            $free.Fix | Should -BeLike '*New-VgpuDevice*'
            # No check of the host tells to detach a vGPU function from nvidia.
            foreach ($c in $checks | Where-Object { $_.Device -like '0000:41:00.[4-7]' }) { $c.Fix | Should -Not -BeLike '*Dismount-GpuHostDriver*' }
            # A function on nvidia that is no vGPU function (the P4, a mediated-device parent) still blocks as before.
            (Get-IommuGroup -Root $h.Root -Number 14).BlockerReasons | Should -Be @("0000:01:00.0: bound to host driver 'nvidia'; it must be bound to vfio-pci or pci-stub, or to no driver")
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Item 10: vGPU host checks by parent' {
    It 'Item 10: an Intel GVT-g host is checked for what GVT-g needs, not for nouveau, nvidia_vgpu_vfio or nvidia-vgpu-mgr (stand-in systemctl)' {
        $h = New-BareHost -Configure {
            param($b)
            $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b)
            $b.LoadedModules.Add('i915')
            $b.LoadedModules.Add('kvmgt')
            $b.AddFile('/sys/module/i915/parameters/enable_gvt', "Y`n")
        }
        $bin = New-StandInSystemctl
        $path = $env:PATH
        try {
            $env:PATH = "${bin}:$path"
            $checks = @(Test-VgpuHost -Root $h.Root)
            $checks.Name | Should -Be @('i915 GVT-g enabled', 'kvmgt loaded', 'vGPU parent devices present')
            $checks.Passed | Should -Be @($true, $true, $true)
            $checks[2].Detail | Should -Be '0000:00:02.0'
            Test-VgpuHost -Root $h.Root -Quiet | Should -BeTrue
            Join-Path $bin 'argv' | Should -Not -Exist -Because 'nvidia-vgpu-mgr is NVIDIA''s, and systemctl is not asked about it'

            $doctor = @(Test-GpuVirtHost -Root $h.Root -Connect 'test:///default')
            @($doctor | Where-Object Name -like 'vGPU: *').Name | Should -Be @('vGPU: i915 GVT-g enabled', 'vGPU: kvmgt loaded', 'vGPU: vGPU parent devices present')
            @($doctor | Where-Object { $_.Name -like '*nouveau*' -or $_.Name -like '*nvidia*' }) | Should -HaveCount 0
            @($doctor | Where-Object { $_.Name -like 'vGPU: *' -and $_.Status -ne 'Pass' }) | Should -HaveCount 0
        }
        finally { $env:PATH = $path; Remove-Item -Recurse -Force $bin; $h | Remove-FixtureHost }
    }

    It 'Item 10: GVT-g turned off is named with its fix' {
        $h = New-BareHost -Configure {
            param($b)
            $null = $b.Add('0000:00:02.0', 0x8086, 0x0412, 0x030000, { param($d) $d.IommuGroup = 3; $d.Driver = 'i915'; $d.BootVga = $true })
            $b.LoadedModules.Add('i915')
            $b.AddFile('/sys/module/i915/parameters/enable_gvt', "N`n")
        }
        try {
            $checks = @(Test-VgpuHost -Root $h.Root)
            $checks.Name | Should -Be @('i915 GVT-g enabled', 'kvmgt loaded', 'vGPU parent devices present')
            $checks.Passed | Should -Be @($false, $false, $false)
            $checks[0].Detail | Should -BeLike '*enable_gvt is N*'
            $checks[0].Fix | Should -BeLike '*i915.enable_gvt=1*'
            $checks[1].Fix | Should -BeLike '*modprobe kvmgt*'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 10: a host with no NVIDIA GPU and no vGPU parent fails only the parent check (stand-in systemctl)' {
        $h = New-BareHost -Configure {
            param($b)
            $null = $b.Add('0000:03:00.0', 0x1002, 0x73a3, 0x030000, { param($d) $d.IommuGroup = 20; $d.Driver = 'amdgpu' })
        }
        $bin = New-StandInSystemctl
        $path = $env:PATH
        try {
            $env:PATH = "${bin}:$path"
            $checks = @(Test-VgpuHost -Root $h.Root)
            $checks.Name | Should -Be @('vGPU parent devices present')
            $checks[0].Passed | Should -BeFalse
            Join-Path $bin 'argv' | Should -Not -Exist
        }
        finally { $env:PATH = $path; Remove-Item -Recurse -Force $bin; $h | Remove-FixtureHost }
    }

    It 'Item 10: an NVIDIA host is still checked for the NVIDIA vGPU Manager; beside a GVT-g parent, each parent''s checks (stand-in systemctl)' {
        $h = New-FixtureHost -Name Seed -Configure {
            param($b)
            $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b)
            $b.LoadedModules.Add('kvmgt')
            $b.AddFile('/sys/module/i915/parameters/enable_gvt', "Y`n")
        }
        $bin = New-StandInSystemctl
        $path = $env:PATH
        try {
            $env:PATH = "${bin}:$path"
            $checks = @(Test-VgpuHost -Root $h.Root)
            $checks.Name | Should -Be @('nouveau blacklisted', 'nvidia_vgpu_vfio loaded', 'nvidia-vgpu-mgr.service enabled', 'i915 GVT-g enabled', 'kvmgt loaded', 'vGPU parent devices present')
            $checks.Passed | Should -Be @($false, $false, $true, $true, $true, $true)
        }
        finally { $env:PATH = $path; Remove-Item -Recurse -Force $bin; $h | Remove-FixtureHost }
    }
}

Describe 'Item 11: New-VgpuDevice -Count as one plan' {
    It 'Item 11: -Count 2 with one instance available is refused before any write with NoVgpuInstanceAvailable, under -WhatIf too (stand-in mdev driver)' {
        $h = New-FixtureHost -Name Seed
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            # GRID P4-8Q (nvidia-66): available_instances is 1.
            $before = Get-TreeHash $h.Root
            $err = $null
            try { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-66 -Count 2 -WhatIf -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand'
            $err.Exception.Message | Should -BeLike "*'nvidia-66'*available_instances is 1*2 asked for*"
            Get-WhatIfText { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-66 -Count 2 -WhatIf -ErrorAction SilentlyContinue } | Should -Not -Match 'What if:'
            Get-TreeHash $h.Root | Should -Be $before

            $err = $null
            try { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-66 -Count 2 -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand'
            $driver.Log | Should -Be @() -Because 'nothing was written to create'
            @(Get-VgpuDevice -Root $h.Root) | Should -HaveCount 0
            @(Get-GpuVirtChange -Root $h.Root) | Should -HaveCount 0
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'Item 11: -Count 2 that fits is one plan: -WhatIf lists both, one journal record, one undo takes both back (stand-in mdev driver)' {
        $h = New-FixtureHost -Name Seed
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            # GRID P4-4Q (nvidia-65): available_instances is 2.
            $text = Get-WhatIfText { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-65 -Count 2 -Persistent -WhatIf }
            @([regex]::Matches($text, 'What if:')) | Should -HaveCount 1
            @([regex]::Matches($text, 'write [0-9a-f-]{36} to /sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-65/create')) | Should -HaveCount 2
            $driver.Log | Should -Be @()

            $made = @(New-VgpuDevice -Root $h.Root 01:00.0 nvidia-65 -Count 2 -Persistent -ErrorAction Stop)
            $made | Should -HaveCount 2
            ($made.Uuid | Select-Object -Unique) | Should -HaveCount 2
            $made.Persistent | Should -Be @($true, $true)
            $records = @(Get-GpuVirtChange -Root $h.Root)
            $records | Should -HaveCount 1
            $null = Undo-GpuVirtChange -Root $h.Root -Id $records[0].Id -Confirm:$false -ErrorAction Stop
            @(Get-VgpuDevice -Root $h.Root) | Should -HaveCount 0
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }
}

Describe 'Item 12: Find-VgpuPlacement keeps one vGPU type per physical GPU' {
    It 'Item 12: an mdev GPU running GRID P4-1Q is not proposed for GRID P4-2Q, and the reason names the running type' {
        $h = New-FixtureHost -Name Seed -Configure {
            param($b) $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new('6f0e3a4c-2b1d-4e5f-8a9b-0c1d2e3f4a5b', '0000:01:00.0', 'nvidia-63', 100))
        }
        try {
            $err = $null
            try { Find-VgpuPlacement -Root $h.Root -Type 'GRID P4-2Q' -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'VgpuPlacementNotFound,GpuVirt.Commands.FindVgpuPlacementCommand'
            $err.Exception.Message | Should -BeLike '*0000:01:00.0: 0 (it runs nvidia-63 (GRID P4-1Q)*one vGPU type at a time*'
            # The type it runs is still proposed there.
            (Find-VgpuPlacement -Root $h.Root -Type 'GRID P4-1Q').Parent | Should -Be '0000:01:00.0'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 12: an SR-IOV GPU running NVIDIA L40S-2Q on one function is not proposed for NVIDIA L40S-4Q on another' {
        $h = New-FixtureHost -Name SriovVgpu -Configure { param($b) Set-VfType $b '0000:41:00.4' 1161 }
        try {
            $err = $null
            try { Find-VgpuPlacement -Root $h.Root -Type 'NVIDIA L40S-4Q' -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'VgpuPlacementNotFound,GpuVirt.Commands.FindVgpuPlacementCommand'
            $err.Exception.Message | Should -BeLike '*0000:41:00.0: 0 (it runs 1161 (NVIDIA L40S-2Q) on 1 of its virtual functions*one vGPU type at a time*'
            $p = Find-VgpuPlacement -Root $h.Root -Type 'NVIDIA L40S-2Q' -Count 3
            $p.Parent | Should -Be '0000:41:00.0'
            ($p.VirtualFunctions | ForEach-Object ToString) | Should -Be @('0000:41:00.5', '0000:41:00.6', '0000:41:00.7')
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 12: Intel GVT-g mixes types on one GPU, so a running type does not rule out another' {
        $h = New-BareHost -Configure {
            param($b)
            $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b)
            $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($Gvt, '0000:00:02.0', 'i915-GVTg_V5_8', 100))
        }
        try {
            (Find-VgpuPlacement -Root $h.Root -Type 'i915-GVTg_V5_4').Parent | Should -Be '0000:00:02.0'
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Item 15: mdevctl parity' {
    BeforeAll {
        # A document in the shape of mdevctl's list/defined.json: a GVT-g device, and one UUID defined under two
        # parents with vfio_ap's repeated attribute names.
        $script:Attrs = @(@{ assign_adapter = '5' }, @{ assign_adapter = '6' }, @{ assign_domain = '0xab' }, @{ assign_control_domain = '0xab' }, @{ assign_domain = '4' }, @{ assign_control_domain = '4' })
        $script:AttrText = @('assign_adapter=5', 'assign_adapter=6', 'assign_domain=0xab', 'assign_control_domain=0xab', 'assign_domain=4', 'assign_control_domain=4')
        function New-DefinedDump([string] $Etc, [string] $Dir) {
            $ap = Join-Path $Dir 'ap.json'
            $body = [ordered]@{ mdev_type = 'vfio_ap-passthrough'; start = 'manual'; attrs = @($Attrs | ForEach-Object { [ordered]@{} + $_ }) }
            [IO.File]::WriteAllText($ap, ($body | ConvertTo-Json -Depth 5))
            $null = Invoke-Mdevctl $Etc ("mdevctl define -u $Gvt -p 0000:00:02.0 -t i915-GVTg_V5_8 --auto && " +
                "mdevctl define -u $Uuid -p 0000:00:02.0 --jsonfile '$ap' && mdevctl define -u $Uuid -p 0000:00:03.0 --jsonfile '$ap'")
            Invoke-Mdevctl $Etc 'mdevctl list --defined --dumpjson'
        }
    }

    It 'Item 15: Import-VgpuDefinition takes one UUID defined under two parents, as mdevctl does; the real mdevctl lists the result as it was' {
        $src = New-FixtureHost -Name Seed
        $dst = New-FixtureHost -Name Seed
        try {
            $dump = New-DefinedDump (New-MdevctlDir $src.Root) $src.Root
            $dump | Should -BeLike '*"0000:00:03.0"*'
            $etc = New-MdevctlDir $dst.Root
            $imported = @($dump | Import-VgpuDefinition -Root $dst.Root -ErrorAction Stop)
            ($imported | ForEach-Object { "$($_.Parent)/$($_.Uuid)" }) | Should -Be @("0000:00:02.0/$Gvt", "0000:00:02.0/$Uuid", "0000:00:03.0/$Uuid")
            Invoke-Mdevctl $etc 'mdevctl list --defined --dumpjson' | Should -Be $dump
            # Again: nothing to do, no error.
            @($dump | Import-VgpuDefinition -Root $dst.Root -ErrorAction Stop) | Should -HaveCount 3
            # Undoing the import of one parent's definition leaves the other parent's.
            $record = Get-GpuVirtChange -Root $dst.Root | Where-Object { $_.Target -eq $Uuid -and $_.Action -like '*on 0000:00:03.0' }
            @($record) | Should -HaveCount 1
            $null = Undo-GpuVirtChange -Root $dst.Root -Id $record.Id -Confirm:$false -ErrorAction Stop
            (Invoke-Mdevctl $etc "mdevctl list --defined -u $Uuid").TrimEnd() | Should -Be "$Uuid 0000:00:02.0 vfio_ap-passthrough manual"
        }
        finally { $src | Remove-FixtureHost; $dst | Remove-FixtureHost }
    }

    It 'Item 15: New-VgpuDevice -DefineOnly defines a UUID under a second parent, as mdevctl define does; under the same parent it is refused' {
        $h = New-FixtureHost -Name Seed -Configure { param($b) $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b) }
        try {
            $etc = New-MdevctlDir $h.Root
            $null = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -DefineOnly -ErrorAction Stop
            $second = New-VgpuDevice -Root $h.Root 00:02.0 i915-GVTg_V5_4 -Uuid $Uuid -DefineOnly -ErrorAction Stop
            $second.Parent | Should -Be '0000:00:02.0'
            (Invoke-Mdevctl $etc "mdevctl list -d -u $Uuid").TrimEnd() | Should -Be "$Uuid 0000:00:02.0 i915-GVTg_V5_4 auto`n$Uuid 0000:01:00.0 nvidia-63 auto"
            { New-VgpuDevice -Root $h.Root 00:02.0 i915-GVTg_V5_8 -Uuid $Uuid -DefineOnly -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDefinitionConflict,GpuVirt.Commands.NewVgpuDeviceCommand'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 15: a definition that differs under the same parent is a conflict that says what differs' {
        $h = New-FixtureHost -Name Seed
        try {
            $null = New-MdevctlDir $h.Root
            $null = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -DefineOnly
            $doc = "[{`"0000:01:00.0`": [{`"$Uuid`": {`"mdev_type`": `"nvidia-64`", `"start`": `"auto`", `"attrs`": []}}], `"0000:00:02.0`": [{`"$Uuid`": {`"mdev_type`": `"nvidia-64`", `"start`": `"auto`", `"attrs`": []}}]}]"
            $err = $null
            $out = @($doc | Import-VgpuDefinition -Root $h.Root -ErrorVariable err -ErrorAction SilentlyContinue)
            @($err) | Should -HaveCount 1
            $err[0].FullyQualifiedErrorId | Should -Be 'VgpuDefinitionConflict,GpuVirt.Commands.ImportVgpuDefinitionCommand'
            $err[0].Exception.Message | Should -BeLike "*$Uuid is already defined on 0000:01:00.0 with type 'nvidia-63' (the document has 'nvidia-64')*"
            # The same UUID under another parent is no conflict.
            ($out | ForEach-Object Parent) | Should -Be @('0000:00:02.0')
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 15: Export-VgpuDefinition -Uuid prints what mdevctl list -d -u UUID --dumpjson prints, the single-device form for one device' {
        $h = New-FixtureHost -Name Seed
        try {
            $etc = New-MdevctlDir $h.Root
            $null = New-DefinedDump $etc $h.Root
            foreach ($case in @(
                    @{ Ours = { Export-VgpuDefinition -Root $h.Root -Uuid $Gvt }; Theirs = "mdevctl list -d -u $Gvt --dumpjson"; Single = $true },
                    @{ Ours = { Export-VgpuDefinition -Root $h.Root -Uuid $Uuid -Parent 0000:00:03.0 }; Theirs = "mdevctl list -d -u $Uuid -p 0000:00:03.0 --dumpjson"; Single = $true },
                    @{ Ours = { Export-VgpuDefinition -Root $h.Root -Uuid $Uuid }; Theirs = "mdevctl list -d -u $Uuid --dumpjson"; Single = $false },
                    @{ Ours = { Export-VgpuDefinition -Root $h.Root -Uuid 11111111-2222-3333-4444-555555555555 }; Theirs = 'mdevctl list -d -u 11111111-2222-3333-4444-555555555555 --dumpjson'; Single = $false })) {
                $ours = & $case.Ours
                $ours | Should -Be (Invoke-Mdevctl $etc $case.Theirs)
                if ($case.Single) { $ours | Should -BeLike '{*"mdev_type"*' }
            }
            # The single-device form is what mdevctl define --jsonfile reads: the real mdevctl defines it on another parent.
            $file = Join-Path $h.Root 'one.json'
            [IO.File]::WriteAllText($file, (Export-VgpuDefinition -Root $h.Root -Uuid $Gvt))
            $null = Invoke-Mdevctl $etc "mdevctl define -u $Gvt -p 0000:00:03.0 --jsonfile '$file'"
            (Invoke-Mdevctl $etc "mdevctl list -d -u $Gvt").TrimEnd() | Should -Be "$Gvt 0000:00:02.0 i915-GVTg_V5_8 auto`n$Gvt 0000:00:03.0 i915-GVTg_V5_8 auto"
            # Piped devices make the whole document, which Import-VgpuDefinition reads.
            Get-VgpuDevice -Root $h.Root -Uuid $Gvt | Export-VgpuDefinition | Should -BeLike '`[*"0000:00:02.0"*'
            # The help no longer says mdevctl reads the whole document.
            (Get-Help Export-VgpuDefinition -Full | Out-String) | Should -Not -Match "mdevctl's own tools"
            (Get-Help Export-VgpuDefinition -Full | Out-String -Width 300) | Should -Match 'mdevctl define --uuid <uuid> --parent <parent> --jsonfile'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 15: names and values with +, <, &, non-ASCII and control characters export byte for byte as mdevctl prints them' {
        $h = New-FixtureHost -Name Seed
        try {
            $etc = New-MdevctlDir $h.Root
            $file = Join-Path $h.Root 'odd.json'
            [IO.File]::WriteAllText($file, '{"mdev_type":"t+1","start":"manual","attrs":[{"k<&>":"a+b é \u0001 \u007f \t \u2028 😀 \"q\" \\ ''s"}]}')
            $null = Invoke-Mdevctl $etc "mdevctl define -u $Uuid -p 0000:00:02.0 --jsonfile '$file'"
            Export-VgpuDefinition -Root $h.Root | Should -BeExactly (Invoke-Mdevctl $etc 'mdevctl list -d --dumpjson')
            Export-VgpuDefinition -Root $h.Root -Uuid $Uuid | Should -BeExactly (Invoke-Mdevctl $etc "mdevctl list -d -u $Uuid --dumpjson")
            # What this module writes itself reads back the same through mdevctl.
            $dst = New-FixtureHost -Name Seed
            try {
                $dstEtc = New-MdevctlDir $dst.Root
                $null = Export-VgpuDefinition -Root $h.Root | Import-VgpuDefinition -Root $dst.Root -ErrorAction Stop
                [IO.File]::ReadAllBytes((Join-Path $dstEtc "0000:00:02.0/$Uuid")) | Should -Be ([IO.File]::ReadAllBytes((Join-Path $etc "0000:00:02.0/$Uuid")))
            }
            finally { $dst | Remove-FixtureHost }
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 15: New-VgpuDevice -Attribute repeats an attribute name in order, as mdevctl''s vfio_ap example; Get-VgpuDevice shows the attributes' {
        $h = New-FixtureHost -Name Seed
        try {
            $etc = New-MdevctlDir $h.Root
            $d = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -DefineOnly -StartMode Manual -Attribute $Attrs -ErrorAction Stop
            $d.Attributes | Should -Be $AttrText
            $listed = Invoke-Mdevctl $etc "mdevctl list -d -u $Uuid --dumpjson" | ConvertFrom-Json
            ($listed.attrs | ForEach-Object { $p = $_.PSObject.Properties; "$($p.Name)=$($p.Value)" }) | Should -Be $AttrText
            (Get-VgpuDevice -Root $h.Root -Uuid $Uuid).Attributes | Should -Be $AttrText
            (Get-VgpuDevice -Root $h.Root -Uuid $Uuid | Format-List Attributes | Out-String) | Should -BeLike '*assign_adapter=5, assign_adapter=6*'
            # One [ordered] dictionary still works, and mdevctl's own attrs read back with ConvertFrom-Json -AsHashtable.
            $again = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Gvt -DefineOnly -Attribute ($listed | ConvertTo-Json -Depth 5 | ConvertFrom-Json -AsHashtable).attrs -ErrorAction Stop
            $again.Attributes | Should -Be $AttrText
            (New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -DefineOnly -Attribute ([ordered]@{ b = '1'; a = '2' })).Attributes | Should -Be @('b=1', 'a=2')
        }
        finally { $h | Remove-FixtureHost }
    }
}
