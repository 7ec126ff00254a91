# Objects carry their host: every pipeline started with -Root R (a fixture tree, never /) or -Connect U (an embedded
# libvirt at a URI that is not the default) stays on R and U to its end, each composing pair on its own. This machine's
# / has no IOMMU groups, no vGPU types and no libvirtd: a second cmdlet that fell back to / or the default URI fails
# or finds nothing, so each test asserts what only R and U hold.
BeforeDiscovery {
    # The output types of the module's cmdlets (one test below checks that this is all of them).
    $Cases = @('PciDevice', 'GpuDevice', 'IommuGroup', 'VgpuType', 'VgpuDevice', 'VgpuPlacement', 'Hostdev', 'GuestMmioSpace',
        'VgpuConsoleChange', 'GpuVirtHostCheck', 'VgpuHostCheck', 'BootChange', 'IommuBootStatus', 'ChangeRecord') | ForEach-Object { @{ Type = $_ } }
}

BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    # Output types live in the namespace of their folder (GpuVirt.Core, GpuVirt.Core.Vgpu, ...): name -> full name.
    $script:FullName = @{}
    [GpuVirt.Core.PciDevice].Assembly.GetExportedTypes() | ForEach-Object { $FullName[$_.Name] = $_.FullName }
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uri = $Libvirt.Uri
    # The default connection is a daemon that is not running here: reaching it would fail the command.
    $script:DefaultUri = $env:LIBVIRT_DEFAULT_URI
    $env:LIBVIRT_DEFAULT_URI = $null
}

AfterAll {
    $env:LIBVIRT_DEFAULT_URI = $script:DefaultUri
    $script:Libvirt | Remove-EmbeddedLibvirt
}

Describe 'Objects carry their host' {
    BeforeEach {
        $script:H = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        $script:R = $H.Root
    }
    AfterEach {
        Clear-TestGuest $Libvirt
        $script:H | Remove-FixtureHost
    }

    It 'every object read with -Root R carries Root R (the full path), and Connect U when read with -Connect U' {
        $relative = [IO.Path]::GetRelativePath((Get-Location).Path, $R)
        $devices = @(Get-PciDevice -Root $relative)
        $devices.Count | Should -BeGreaterThan 0
        @($devices.Root | Select-Object -Unique) | Should -Be @($R)
        @($devices | Where-Object { $null -ne $_.Connect }).Count | Should -Be 0 -Because 'read without -Connect, the default applies downstream'
        @((Get-GpuDevice -Root $R -Connect $Uri).Connect | Select-Object -Unique) | Should -Be @($Uri)
        @((Get-IommuGroup -Root $R).Root | Select-Object -Unique) | Should -Be @($R)
        @((Get-VgpuType -Root $R).Root | Select-Object -Unique) | Should -Be @($R)
        (Get-IommuBootStatus -Root $R).Root | Should -Be $R
        @((Test-GpuVirtHost -Root $R -Connect $Uri).Root | Select-Object -Unique) | Should -Be @($R)
        @((Test-GpuVirtHost -Root $R -Connect $Uri).Connect | Select-Object -Unique) | Should -Be @($Uri)
        @((Test-VgpuHost -Root $R).Root | Select-Object -Unique) | Should -Be @($R)
    }

    It 'Get-GpuDevice -Root R | Get-IommuGroup reads R''s groups (/ has none), and Get-PciDevice -Root R too' {
        $expected = @(Get-GpuDevice -Root $R | ForEach-Object { Get-IommuGroup -Root $R $_.IommuGroup } | ForEach-Object { "$($_.Number) $($_.Root)" })
        @(Get-GpuDevice -Root $R | Get-IommuGroup -ErrorAction Stop | ForEach-Object { "$($_.Number) $($_.Root)" }) | Should -Be $expected
        @(Get-PciDevice -Root $R 02:00.1 | Get-IommuGroup -ErrorAction Stop | ForEach-Object Number) | Should -Be @(13)
    }

    It 'an explicit -Root on the second command wins over the piped objects'' Root' {
        # Another tree where the audio function is bound to vfio-pci: group 13 is viable there, not in R.
        $other = New-FixtureHost -Name Seed -Configure { param($b) ($b.Devices | Where-Object Address -eq '0000:02:00.1').Driver = 'vfio-pci' }
        try {
            $groups = @(Get-GpuDevice -Root $R 02:00.0 | Get-IommuGroup -Root $other.Root -ErrorAction Stop)
            $groups.Root | Should -Be $other.Root
            $groups.IsViable | Should -BeTrue
            (Get-GpuDevice -Root $R 02:00.0 | Get-IommuGroup).IsViable | Should -BeFalse
            { Get-GpuDevice -Root $R | Get-IommuGroup -Root (Join-Path $R 'no-such-dir') -ErrorAction Stop } |
                Should -Throw -ErrorId 'HostRootNotFound,GpuVirt.Commands.GetIommuGroupCommand'
        }
        finally { $other | Remove-FixtureHost }
    }

    It 'one pipeline with objects from two roots reads each object''s own root' {
        $other = New-FixtureHost -Name TwoSocket
        try {
            $mixed = @(Get-GpuDevice -Root $R) + @(Get-GpuDevice -Root $other.Root)
            $groups = @($mixed | Get-IommuGroup -ErrorAction Stop)
            @($groups | ForEach-Object { "$($_.Root) $($_.Number)" }) |
                Should -Be @(@(Get-GpuDevice -Root $R | Get-IommuGroup -Root $R) + @(Get-GpuDevice -Root $other.Root | Get-IommuGroup -Root $other.Root) | ForEach-Object { "$($_.Root) $($_.Number)" })
            @($groups.Root | Select-Object -Unique) | Should -Be @($R, $other.Root)
            @($mixed | Get-IommuBootStatus | ForEach-Object Root) | Should -Be @($R, $other.Root)
        }
        finally { $other | Remove-FixtureHost }
    }

    It 'Get-GpuDevice -Root R | Get-VgpuType lists R''s vGPU types (/ offers none)' {
        $types = @(Get-GpuDevice -Root $R | Get-VgpuType)
        $types.Count | Should -BeGreaterThan 0
        @($types | ForEach-Object { "$($_.Parent) $($_.Id)" }) | Should -Be @(Get-VgpuType -Root $R | ForEach-Object { "$($_.Parent) $($_.Id)" })
    }

    It 'Get-PciDevice -Root R 02:00.0 | Add-GpuHostdev -Domain vm -Connect U attaches R''s function to the guest at U; the hostdev carries R and U' {
        $vm = New-TestGuest $Libvirt
        $out = Get-PciDevice -Root $R 02:00.0 | Add-GpuHostdev -Domain $vm -Connect $Uri -WarningAction SilentlyContinue -ErrorAction Stop
        $out.Root | Should -Be $R
        $out.Connect | Should -Be $Uri
        ([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev.source.address.bus | Should -Be '0x02'
    }

    It 'Get-PciDevice -Root R -Connect U | Add-GpuHostdev talks to U from the object, and its output | Remove-GpuHostdev detaches at U' {
        $vm = New-TestGuest $Libvirt
        $out = @(Get-PciDevice -Root $R -Connect $Uri 02:00.0 | Add-GpuHostdev -Domain $vm -WarningAction SilentlyContinue -Verbose 4>&1)
        $added = @($out | Where-Object { $_ -is [GpuVirt.Core.Libvirt.Hostdev] })
        $added.Count | Should -Be 1
        $ran = @($out | Where-Object { "$_" -like 'Running: virsh *' } | ForEach-Object { "$_" })
        $ran.Count | Should -BeGreaterThan 0
        @($ran | Where-Object { $_ -notlike "Running: virsh -c '$Uri' *" }) | Should -BeNullOrEmpty
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev).Count | Should -Be 1
        $added | Remove-GpuHostdev -Confirm:$false -ErrorAction Stop
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev | Where-Object { $_ }).Count | Should -Be 0
    }

    It 'Get-GpuHostdev -Root R -Connect U vm | Remove-GpuHostdev detaches at U and journals under R, and objects with no Connect bind to the default (null is no binding error)' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev -Domain $vm -Address 02:00.0 -Root $R -Connect $Uri -WarningAction SilentlyContinue
        # Without -Root the hostdevs belong to the live host (Root /); with it they carry R, and the detach is journaled there.
        (Get-GpuHostdev -Connect $Uri $vm).Root | Should -Be '/'
        $read = Get-GpuHostdev -Root $R -Connect $Uri $vm
        $read.Connect | Should -Be $Uri
        $read.Root | Should -Be $R
        $read | Remove-GpuHostdev -Confirm:$false -ErrorAction Stop
        (Get-GpuVirtChange -Root $R -Last 1).Action | Should -BeLike 'Detach*'
        @(Get-GpuHostdev -Connect $Uri $vm -Inactive).Count | Should -Be 0
        # An object with a null Connect (read through the default connection) binds; the default is then used.
        $err = $null
        [pscustomobject]@{ Domain = $vm; Address = '0000:02:00.0'; Root = $R; Connect = $null } |
            Remove-GpuHostdev -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Not -BeLike 'ParameterArgumentValidationError*'
        $err[0].FullyQualifiedErrorId | Should -BeLike 'LibvirtConnectFailed,*' -Because 'the default connection (no daemon here) was used'
        [pscustomobject]@{ Domain = $vm; Address = '0000:02:00.0'; Root = $R; Connect = '' } |
            Remove-GpuHostdev -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'LibvirtConnectFailed,*'
    }

    It 'Get-GpuHostdev -Connect U vm | Get-GuestMmioSpace -Root R reads the guest at U and the BARs under R' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev -Domain $vm -Address 02:00.0 -Root $R -Connect $Uri -WarningAction SilentlyContinue
        $space = Get-GpuHostdev -Connect $Uri $vm | Get-GuestMmioSpace -Root $R -ErrorAction Stop
        $space.Root | Should -Be $R
        $space = Get-GpuHostdev -Root $R -Connect $Uri $vm | Get-GuestMmioSpace -ErrorAction Stop
        $space.Root | Should -Be $R
        $space.Connect | Should -Be $Uri
        @($space.Hostdevs | ForEach-Object { "$_" }) | Should -Be @('0000:02:00.0')
    }

    It 'Get-PciDevice -Root R 02:00.1 | Dismount-GpuHostDriver binds R''s function, and | Mount-GpuHostDriver gives it back (stand-in PCI driver core)' {
        $core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($R)
        try {
            $out = Get-PciDevice -Root $R 02:00.1 | Dismount-GpuHostDriver -Confirm:$false -ErrorAction Stop
            $out.Driver | Should -Be 'vfio-pci'
            $out.Root | Should -Be $R
            (Get-PciDevice -Root $R 02:00.1).Driver | Should -Be 'vfio-pci'
            $core.Log | Should -Contain 'unbind 0000:02:00.1 snd_hda_intel'
            $core.Log | Should -Contain 'bind 0000:02:00.1 vfio-pci'
            $back = $out | Mount-GpuHostDriver -Confirm:$false -ErrorAction Stop
            $back.Driver | Should -Be 'snd_hda_intel'
            (Get-PciDevice -Root $R 02:00.1).Driver | Should -Be 'snd_hda_intel'
            (Get-GpuVirtChange -Root $R).Count | Should -Be 2 -Because 'both changes went into R''s journal'
        }
        finally { $core.Dispose() }
    }

    It 'Get-GpuDevice -Root R | Enable-IommuBoot changes R''s boot files and runs R''s stand-in grub2-mkconfig' {
        [GpuVirt.Fixtures.BootFixture]::Rhel7($R, 'grub/rhel7-sysconfig-grub', $false)
        $change = Get-GpuDevice -Root $R 02:00.0 | Enable-IommuBoot -Confirm:$false -ErrorAction Stop
        $change.Root | Should -Be $R
        Get-Content -Raw (Join-Path $R 'etc/default/grub') | Should -Match 'intel_iommu=on iommu=pt pci-stub\.ids=10de:11fa"'
        @(Get-StandInCall $R).Count | Should -Be 1
    }

    It 'Get-GpuDevice -Root R | Get-VgpuType | New-VgpuDevice creates under R; Get-VgpuDevice -Root R | Export-VgpuDefinition, Find-VgpuPlacement and Remove-VgpuDevice stay on R (stand-in mdev driver)' {
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($R)
        try {
            $uuid = [guid]::NewGuid().ToString()
            $made = Get-GpuDevice -Root $R | Get-VgpuType -Name 'GRID P4-1Q' | New-VgpuDevice -Uuid $uuid -Persistent -ErrorAction Stop
            $made.Root | Should -Be $R
            Join-Path $R "sys/bus/mdev/devices/$uuid" | Should -Exist
            $driver.Log | Should -Be @("create nvidia-63 $uuid")

            $json = Get-VgpuDevice -Root $R | Export-VgpuDefinition -ErrorAction Stop
            $json | Should -BeLike "*`"0000:01:00.0`"*`"$uuid`"*`"mdev_type`": `"nvidia-63`"*"

            $placed = @(Get-VgpuDevice -Root $R | Find-VgpuPlacement -ErrorAction Stop)
            $placed.Root | Should -Be $R
            $placed.Parent | Should -Be '0000:01:00.0'

            Get-VgpuDevice -Root $R | Remove-VgpuDevice -Persistent -Confirm:$false -ErrorAction Stop
            Join-Path $R "sys/bus/mdev/devices/$uuid" | Should -Not -Exist
            @(Get-VgpuDevice -Root $R).Count | Should -Be 0
        }
        finally { $driver.Dispose() }
    }

    It 'Get-PciDevice -Root R | Test-GpuVirtHost and | Get-IommuBootStatus read R once, not once per object' {
        @(Get-PciDevice -Root $R | Get-IommuBootStatus).Root | Should -Be @($R)
        $checks = @(Get-GpuDevice -Root $R -Connect $Uri | Test-GpuVirtHost)
        @($checks.Root | Select-Object -Unique) | Should -Be @($R)
        ($checks | Where-Object Name -eq 'libvirt').Status | Should -Be 'Pass' -Because "the URI of the objects ($Uri) was used"
        $checks.Count | Should -Be @(Test-GpuVirtHost -Root $R -Connect $Uri).Count
    }
}

Describe 'Objects serialize well' {
    BeforeAll {
        # One host with one of every output type: a vGPU (stand-in mdev driver), a guest at U with a PCI and an mdev
        # hostdev, a boot change (stand-in grub2-mkconfig), and the readers' objects.
        $script:S = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        $script:SR = $S.Root
        [GpuVirt.Fixtures.BootFixture]::Rhel7($SR, 'grub/rhel7-sysconfig-grub', $false)
        $script:Driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($SR)
        $script:Vm = New-TestGuest $Libvirt -Graphics
        $vgpu = New-VgpuDevice -Root $SR -Parent 01:00.0 -Type 'GRID P4-1Q'
        $null = Add-GpuHostdev -Domain $Vm -Address 02:00.0 -Root $SR -Connect $Uri -WarningAction SilentlyContinue
        $null = Add-GpuHostdev -Domain $Vm -Uuid $vgpu.Uuid -Root $SR -Connect $Uri -WarningAction SilentlyContinue
        $script:Objects = [ordered]@{
            PciDevice = @(Get-PciDevice -Root $SR)
            GpuDevice = @(Get-GpuDevice -Root $SR -Connect $Uri)
            IommuGroup = @(Get-IommuGroup -Root $SR)
            VgpuType = @(Get-VgpuType -Root $SR)
            VgpuDevice = @(Get-VgpuDevice -Root $SR -Connect $Uri)
            VgpuPlacement = @(Find-VgpuPlacement -Root $SR -Type 'GRID P4-1Q' -Count 2)
            Hostdev = @(Get-GpuHostdev -Root $SR -Connect $Uri $Vm -Inactive)
            GuestMmioSpace = @(Get-GuestMmioSpace -Root $SR -Connect $Uri $Vm -WarningAction SilentlyContinue)
            VgpuConsoleChange = @(Set-VgpuConsole -Domain $Vm -Root $SR -Connect $Uri -Confirm:$false -WarningAction SilentlyContinue)
            GpuVirtHostCheck = @(Test-GpuVirtHost -Root $SR -Connect $Uri)
            VgpuHostCheck = @(Test-VgpuHost -Root $SR)
            BootChange = @(Get-GpuDevice -Root $SR 02:00.0 | Enable-IommuBoot -Confirm:$false)
            IommuBootStatus = @(Get-IommuBootStatus -Root $SR)
            ChangeRecord = @(Get-GpuVirtChange -Root $SR)
        }

        function Get-Nested($Value, [string] $Path) {
            # The places where a JSON document holds an object inside an object's value (a nested record).
            if ($Value -is [System.Collections.IDictionary]) {
                foreach ($k in $Value.Keys) {
                    $v = $Value[$k]
                    if ($v -is [System.Collections.IDictionary]) { "$Path.$k" }
                    elseif ($v -is [System.Collections.IList]) { foreach ($e in $v) { if ($e -is [System.Collections.IDictionary] -or $e -is [System.Collections.IList]) { "$Path.$k[]" } } }
                }
            }
        }
    }
    AfterAll {
        Clear-TestGuest $Libvirt
        if ($Driver) { $Driver.Dispose() }
        $script:S | Remove-FixtureHost
    }

    It 'has objects of every type to test (<Type>)' -TestCases $Cases {
        param($Type)
        $Objects[$Type].Count | Should -BeGreaterThan 0
        $Objects[$Type][0] | Should -BeOfType $FullName[$Type]
        $Objects[$Type][0].Root | Should -Be $SR
        if ($Type -in 'Hostdev', 'GpuDevice', 'VgpuDevice', 'GuestMmioSpace', 'VgpuConsoleChange', 'GpuVirtHostCheck') { $Objects[$Type][0].Connect | Should -Be $Uri }
    }

    It 'every output type of every cmdlet is among them' {
        $declared = Get-Command -Module GpuVirt | ForEach-Object { $_.OutputType.Type } | Where-Object { $_ -and $_.Namespace -like 'GpuVirt.Core*' } |
            ForEach-Object Name | Sort-Object -Unique
        @($declared) | Should -Be @($Objects.Keys | Sort-Object)
    }

    It 'ConvertTo-Json at its default depth writes <Type> flat, one object or all of them, with no truncation warning' -TestCases $Cases {
        param($Type)
        $all = $Objects[$Type]
        $warnings = $null
        $one = ConvertTo-Json -InputObject $all[0] -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
        # Many objects in one document (at least two: the array is a level of its own).
        $list = @($all) + @($all[0])
        $many = $list | ConvertTo-Json -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
        $doc = $one | ConvertFrom-Json -AsHashtable
        $doc.Root | Should -Be $Objects[$Type][0].Root
        # Flat: no value is an object; lists hold values. (Sub-records of a change, a status or a guest's space are flat records.)
        $allowed = @{ VgpuType = @('.Properties'); GuestMmioSpace = @('.Windows[]') }
        @(Get-Nested $doc '' | Select-Object -Unique | Where-Object { $_ -notin $allowed[$Type] }) | Should -BeNullOrEmpty
        if ($doc.Contains('Address') -and $null -ne $doc.Address) { $doc.Address | Should -Match '^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$' }
        @($many | ConvertFrom-Json -AsHashtable).Count | Should -Be $list.Count
    }

    It 'writes the address as the kernel does: "Address": "0000:02:00.0"' {
        ($Objects.PciDevice | Where-Object Address -eq '0000:02:00.0' | ConvertTo-Json) | Should -Match '"Address": "0000:02:00.0"'
        ($Objects.IommuGroup | Where-Object Number -eq 13 | ConvertTo-Json -Compress) | Should -Match '"Devices":\["0000:02:00.0","0000:02:00.1"\]'
        ($Objects.Hostdev | Where-Object Kind -eq 'Pci' | ConvertTo-Json) | Should -Match '"Address": "0000:02:00.0"'
    }

    It 'Export-Clixml and Import-Clixml round-trip <Type>: Deserialized type name, same properties, same table' -TestCases $Cases {
        param($Type)
        $file = Join-Path $SR "shape-$Type.xml"
        $Objects[$Type] | Export-Clixml -LiteralPath $file
        $back = @(Import-Clixml -LiteralPath $file)
        Remove-Item -LiteralPath $file
        $back.Count | Should -Be $Objects[$Type].Count
        $back[0].pstypenames[0] | Should -Be "Deserialized.$($FullName[$Type])"
        foreach ($p in $Objects[$Type][0].PSObject.Properties) {
            $value = $back[0].($p.Name)
            if ($p.Value -is [System.Collections.IDictionary]) {
                @($value.Keys | Sort-Object | ForEach-Object { "$_=$($value[$_])" }) | Should -Be @($p.Value.Keys | Sort-Object | ForEach-Object { "$_=$($p.Value[$_])" })
                continue
            }
            # An enum comes back as its number with its name as the text (ToString), which is what the views show.
            if ($p.Value -is [enum]) { $value.ToString() | Should -Be $p.Value.ToString() -Because "property $($p.Name) round-trips"; continue }
            "$value" | Should -Be "$($p.Value)" -Because "property $($p.Name) round-trips"
        }
        # Formatted by the module's view (tables, and the status's list), as the live objects are.
        ($back | Out-String -Width 300) | Should -Be ($Objects[$Type] | Out-String -Width 300)
        if ($Type -ne 'IommuBootStatus') { ($back | Format-Table | Out-String -Width 300) | Should -Be ($Objects[$Type] | Format-Table | Out-String -Width 300) }
    }

    It 'deserialized objects bind by property name into the cmdlets, Root and Connect too' {
        $file = Join-Path $SR 'shape-bind.xml'
        try {
            Get-GpuDevice -Root $SR -Connect $Uri | Export-Clixml -LiteralPath $file
            $gpus = Import-Clixml -LiteralPath $file
            @($gpus | Get-IommuGroup -ErrorAction Stop | ForEach-Object { "$($_.Root) $($_.Number)" }) |
                Should -Be @(Get-GpuDevice -Root $SR | Get-IommuGroup | ForEach-Object { "$($_.Root) $($_.Number)" })
            @($gpus | Get-VgpuType -ErrorAction Stop).Count | Should -Be @(Get-GpuDevice -Root $SR | Get-VgpuType).Count

            $vm = New-TestGuest $Libvirt
            Get-PciDevice -Root $SR -Connect $Uri 00:19.0 | Export-Clixml -LiteralPath $file
            $out = Import-Clixml -LiteralPath $file | Add-GpuHostdev -Domain $vm -WarningAction SilentlyContinue -ErrorAction Stop
            $out.Root | Should -Be $SR
            $out.Connect | Should -Be $Uri
            $out | Export-Clixml -LiteralPath $file
            Import-Clixml -LiteralPath $file | Remove-GpuHostdev -Confirm:$false -ErrorAction Stop
            @(Get-GpuHostdev -Connect $Uri $vm -Inactive).Count | Should -Be 0

            $made = New-VgpuDevice -Root $SR -Parent 01:00.0 -Type 'GRID P4-2Q'
            Get-VgpuDevice -Root $SR | Where-Object Uuid -eq $made.Uuid | Export-Clixml -LiteralPath $file
            Import-Clixml -LiteralPath $file | Remove-VgpuDevice -Confirm:$false -ErrorAction Stop
            Join-Path $SR "sys/bus/mdev/devices/$($made.Uuid)" | Should -Not -Exist
        }
        finally { if (Test-Path -LiteralPath $file) { Remove-Item -LiteralPath $file } }
    }
}
