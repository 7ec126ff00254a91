# Field defects of issue 29 in what a pipeline carries and what a guest's hostdevs point at: member lists that keep
# their host across a pipe (item 1), hostdevs whose device is gone or changed (item 5), and the Xorg Device sections of
# a guest's display functions (item 8). Real cmdlets in a child pwsh, kernel-shaped fixture trees, real virsh on the
# embedded QEMU driver. This machine's / is a real host with PCI functions of its own: nothing here may fall back to it,
# so every pipeline first shows that its objects carry the fixture's root before anything that changes a host runs.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uri = $Libvirt.Uri
    # The default connection is a daemon that is not running here: a command that fell back to it fails.
    $script:DefaultUri = $env:LIBVIRT_DEFAULT_URI
    $env:LIBVIRT_DEFAULT_URI = $null

    # Rewrites what the kernel shows of one function of a fixture tree: another card now sits at that address.
    function Set-FunctionIds([string] $Root, [string] $Address, [string] $Vendor, [string] $Device, [string] $Class) {
        $dir = Join-Path $Root "sys/bus/pci/devices/$Address"
        Set-Content -LiteralPath (Join-Path $dir 'vendor') -Value $Vendor
        Set-Content -LiteralPath (Join-Path $dir 'device') -Value $Device
        Set-Content -LiteralPath (Join-Path $dir 'class') -Value $Class
    }

    # Takes a function out of a fixture tree, as the kernel does when the card is gone.
    function Remove-Function([string] $Root, [string] $Address) {
        $link = Join-Path $Root "sys/bus/pci/devices/$Address"
        $target = (Get-Item -LiteralPath $link).ResolveLinkTarget($true).FullName
        Remove-Item -LiteralPath $link
        Remove-Item -LiteralPath $target -Recurse -Force
    }
}

AfterAll {
    $env:LIBVIRT_DEFAULT_URI = $script:DefaultUri
    $script:Libvirt | Remove-EmbeddedLibvirt
}

Describe 'Item 1: member lists keep their host across a pipe' {
    BeforeEach {
        $script:H = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        $script:R = $H.Root
    }
    AfterEach {
        Clear-TestGuest $Libvirt
        $script:H | Remove-FixtureHost
    }

    It 'Item 1: Get-IommuGroup -Root R | ForEach-Object Endpoints | Dismount-GpuHostDriver binds R''s functions, not the live host''s' {
        $endpoints = @(Get-IommuGroup -Root $R -Number 13 | ForEach-Object Endpoints)
        @($endpoints | ForEach-Object { "$_" }) | Should -Be @('0000:02:00.0', '0000:02:00.1')
        # First without changing anything: each address still says which host it was read from.
        @($endpoints | ForEach-Object Root) | Should -Be @($R, $R)
        @($endpoints | Get-PciDevice -ErrorAction Stop | ForEach-Object { "$($_.Root) $($_.Address) $($_.Ids)" }) |
            Should -Be @("$R 0000:02:00.0 10de:11fa", "$R 0000:02:00.1 10de:0e0b")

        $core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($R)
        try {
            $out = @(Get-IommuGroup -Root $R -Number 13 | ForEach-Object Endpoints |
                Dismount-GpuHostDriver -Confirm:$false -WarningAction SilentlyContinue -ErrorAction Stop)
            @($out | ForEach-Object { "$($_.Root) $($_.Address) $($_.Driver)" }) |
                Should -Be @("$R 0000:02:00.0 vfio-pci", "$R 0000:02:00.1 vfio-pci")
            $core.Log | Should -Contain 'unbind 0000:02:00.1 snd_hda_intel'
            (Get-PciDevice -Root $R 02:00.1).Driver | Should -Be 'vfio-pci'
            @(Get-GpuVirtChange -Root $R).Count | Should -Be 2 -Because 'both changes went into R''s journal'
        }
        finally { $core.Dispose() }
    }

    It 'Item 1: Devices, Blockers and Companions keep Root R, and Companions the libvirt connection U, into the next cmdlet' {
        $group = Get-IommuGroup -Root $R -Number 13
        @($group | ForEach-Object Devices | Get-PciDevice -ErrorAction Stop | ForEach-Object { "$($_.Root) $($_.Address)" }) |
            Should -Be @("$R 0000:02:00.0", "$R 0000:02:00.1")
        @($group | ForEach-Object Blockers | Get-PciDevice -ErrorAction Stop | ForEach-Object { "$($_.Root) $($_.Address) $($_.Driver)" }) |
            Should -Be @("$R 0000:02:00.1 snd_hda_intel")
        @($group.Endpoints | ForEach-Object Root | Select-Object -Unique) | Should -Be @($R) -Because 'member access reads the same lists'

        $gpu = Get-GpuDevice -Root $R -Connect $Uri 02:00.0
        @($gpu.Companions | ForEach-Object { "$_ $($_.Root) $($_.Connect)" }) | Should -Be @("0000:02:00.1 $R $Uri")
        $vm = New-TestGuest $Libvirt
        $added = @($gpu | ForEach-Object Companions | Add-GpuHostdev -Domain $vm -WarningAction SilentlyContinue -ErrorAction Stop)
        $added.Count | Should -Be 1
        $added[0].Root | Should -Be $R
        $added[0].Connect | Should -Be $Uri
        ([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev.source.address.function | Should -Be '0x1'
        (Get-GpuVirtChange -Root $R -Last 1).Connect | Should -Be $Uri

        # Read without -Connect, the lists carry no connection: the next command uses its own default.
        @((Get-GpuDevice -Root $R 02:00.0).Companions | Where-Object { $null -ne $_.Connect }).Count | Should -Be 0
        # The SR-IOV lists and single addresses of a function too.
        $sriov = New-FixtureHost -Name SriovVgpu
        try {
            $pf = Get-GpuDevice -Root $sriov.Root | Where-Object { @($_.VirtualFunctions).Count -gt 0 } | Select-Object -First 1
            $vfs = @($pf | ForEach-Object VirtualFunctions)
            $vfs.Count | Should -BeGreaterThan 0
            @($vfs | ForEach-Object Root | Select-Object -Unique) | Should -Be @($sriov.Root)
            @($pf | ForEach-Object VgpuVirtualFunctions | Get-PciDevice -ErrorAction Stop | ForEach-Object Root | Select-Object -Unique) | Should -Be @($sriov.Root)
            $vf = Get-PciDevice -Root $sriov.Root $vfs[0]
            ($vf | ForEach-Object PhysicalFunction | Get-PciDevice -ErrorAction Stop).Root | Should -Be $sriov.Root
            ($vf | ForEach-Object ParentBridge | Get-PciDevice -ErrorAction Stop).Root | Should -Be $sriov.Root
        }
        finally { $sriov | Remove-FixtureHost }
    }

    It 'Item 1: a vGPU''s Parent, a guest MMIO space''s Hostdevs and a doctor check''s Device keep their host into the next cmdlet, flat in JSON' {
        # The guest's MMIO space: its hostdev addresses are R's, with the connection they were read through.
        $vm = New-TestGuest $Libvirt
        $null = Get-GpuDevice -Root $R -Connect $Uri 02:00.0 | Add-GpuHostdev -Domain $vm -WarningAction SilentlyContinue -ErrorAction Stop
        $space = Get-GuestMmioSpace -Domain $vm -Root $R -Connect $Uri
        @($space.Hostdevs | ForEach-Object { "$_ $($_.Root) $($_.Connect)" }) | Should -Be @("0000:02:00.0 $R $Uri")
        @($space | ForEach-Object Hostdevs | Get-PciDevice -ErrorAction Stop | ForEach-Object { "$($_.Root) $($_.Address)" }) |
            Should -Be @("$R 0000:02:00.0")
        ($space | ConvertTo-Json -Compress -WarningAction Stop) | Should -Match '"Hostdevs":\["0000:02:00.0"\]'

        # A doctor check's GPU.
        $check = Test-GpuVirtHost -Root $R | Where-Object Device | Select-Object -First 1
        $check.Device.Root | Should -Be $R
        ($check | ForEach-Object Device | Get-GpuDevice -ErrorAction Stop).Root | Should -Be $R

        # A vGPU's parent GPU.
        $inUse = New-FixtureHost -Name InUse
        try {
            $vgpu = Get-VgpuDevice -Root $inUse.Root | Select-Object -First 1
            $vgpu.Parent.Root | Should -Be $inUse.Root
            $parent = $vgpu | ForEach-Object Parent | Get-GpuDevice -ErrorAction Stop
            "$($parent.Root) $($parent.Address)" | Should -Be "$($inUse.Root) $($vgpu.Parent)"
            ($vgpu | ConvertTo-Json -Compress -WarningAction Stop) | Should -Match ('"Parent":"' + [regex]::Escape("$($vgpu.Parent)") + '"')
        }
        finally { $inUse | Remove-FixtureHost }
    }

    It 'Item 1: the lists stay flat in JSON and addresses in the tables, and keep their host through Export-Clixml and Import-Clixml' {
        $group = Get-IommuGroup -Root $R -Number 13
        $json = $group | ConvertTo-Json -Compress -WarningAction Stop
        $json | Should -Match '"Devices":\["0000:02:00.0","0000:02:00.1"\]'
        $json | Should -Match '"Endpoints":\["0000:02:00.0","0000:02:00.1"\]'
        $json | Should -Match '"Blockers":\["0000:02:00.1"\]'
        $gpu = Get-GpuDevice -Root $R -Connect $Uri 02:00.0
        ($gpu | ConvertTo-Json -Compress -WarningAction Stop) | Should -Match '"Companions":\["0000:02:00.1"\]'

        $table = $group | Format-Table | Out-String -Width 300
        $table | Should -Match '0000:02:00.0 pci-stub'
        $table | Should -Match '0000:02:00.1'
        ($gpu | Format-Table | Out-String -Width 300) | Should -Match '02:00.1'
        ($group.Blockers | Out-String).Trim() | Should -Be '0000:02:00.1'

        $file = Join-Path $R 'group.xml'
        $group, $gpu | Export-Clixml -LiteralPath $file
        $back = Import-Clixml -LiteralPath $file
        @($back[0].Endpoints | ForEach-Object { "$_ $($_.Root)" }) | Should -Be @("0000:02:00.0 $R", "0000:02:00.1 $R")
        @($back[1].Companions | ForEach-Object { "$_ $($_.Root) $($_.Connect)" }) | Should -Be @("0000:02:00.1 $R $Uri")
        @($back[0] | ForEach-Object Endpoints | Get-PciDevice -ErrorAction Stop | ForEach-Object Root) | Should -Be @($R, $R)
    }
}

Describe 'Item 5: hostdevs whose device is gone or changed' {
    BeforeEach {
        $script:H = New-FixtureHost -Name Seed
        $script:R = $H.Root
        $script:Vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev -Domain $Vm -Address 02:00.0 -Root $R -Connect $Uri -WarningAction SilentlyContinue -ErrorAction Stop
    }
    AfterEach {
        Clear-TestGuest $Libvirt
        $script:H | Remove-FixtureHost
    }

    It 'Item 5: Add-GpuHostdev records the vendor:device it attached, and the hostdev shows it Present with what is there now' {
        $record = Get-JournalRecord $R -Id (Get-GpuVirtChange -Root $R -Last 1).Id
        $record.Inverse[0].Address | Should -Be '0000:02:00.0'
        $record.Inverse[0].Ids | Should -Be '10de:11fa'
        $hostdev = Get-GpuHostdev -Root $R -Connect $Uri $Vm -Inactive
        $hostdev.Present | Should -BeTrue
        $hostdev.Ids | Should -Be '10de:11fa'
        $hostdev.AttachedIds | Should -Be '10de:11fa'
        $hostdev.Description | Should -BeLike 'NVIDIA Corporation *'
        $checks = @(Test-GpuVirtHost -Root $R -Connect $Uri | Where-Object Name -like 'guest hostdev*')
        @($checks | Where-Object Status -ne 'Pass') | Should -BeNullOrEmpty
        @($checks | Where-Object Status -eq 'Pass').Count | Should -Be 1
    }

    It 'Item 5: a hostdev whose address no longer exists is not Present, and Test-GpuVirtHost warns about it' {
        Remove-Function $R '0000:02:00.0'
        $hostdev = Get-GpuHostdev -Root $R -Connect $Uri $Vm -Inactive
        $hostdev.Present | Should -BeFalse
        $hostdev.Ids | Should -BeNullOrEmpty
        $hostdev.AttachedIds | Should -Be '10de:11fa'
        ($hostdev | Format-Table | Out-String -Width 300) | Should -Match 'missing'
        $warn = @(Test-GpuVirtHost -Root $R -Connect $Uri | Where-Object { $_.Name -like 'guest hostdev*' -and $_.Status -eq 'Warn' })
        $warn.Count | Should -Be 1
        $warn[0].Device | Should -Be '0000:02:00.0'
        $warn[0].Detail | Should -BeLike "*guest '$Vm'*no PCI function at 0000:02:00.0*"
        $warn[0].Fix | Should -BeLike '*Remove-GpuHostdev*'
    }

    It 'Item 5: a hostdev whose address now holds another vendor:device shows both, and Test-GpuVirtHost warns' {
        # A NIC now sits where the GPU was.
        Set-FunctionIds $R '0000:02:00.0' '0x8086' '0x153a' '0x020000'
        $hostdev = Get-GpuHostdev -Root $R -Connect $Uri $Vm -Inactive
        $hostdev.Present | Should -BeTrue
        $hostdev.Ids | Should -Be '8086:153a'
        $hostdev.AttachedIds | Should -Be '10de:11fa'
        ($hostdev | Format-Table | Out-String -Width 300) | Should -Match 'now 8086:153a'
        $warn = @(Test-GpuVirtHost -Root $R -Connect $Uri | Where-Object { $_.Name -like 'guest hostdev*' -and $_.Status -eq 'Warn' })
        $warn.Count | Should -Be 1
        $warn[0].Device | Should -Be '0000:02:00.0'
        $warn[0].Detail | Should -BeLike "*guest '$Vm'*10de:11fa when it was attached*now 8086:153a*"
    }

    It 'Item 5: an mdev hostdev whose vGPU is gone is not Present, and one that exists is' {
        $uuid = [guid]::NewGuid().ToString()
        $withMdev = New-FixtureHost -Name Seed -Configure { param($b) $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($uuid, '0000:01:00.0', 'nvidia-63', 20)) }
        try {
            $other = New-TestGuest $Libvirt
            $null = Add-GpuHostdev -Domain $other -Uuid $uuid -Root $withMdev.Root -Connect $Uri -ErrorAction Stop
            (Get-GpuHostdev -Root $withMdev.Root -Connect $Uri $other -Inactive).Present | Should -BeTrue
            (Get-GpuHostdev -Root $R -Connect $Uri $other -Inactive).Present | Should -BeFalse -Because "R has no mdev $uuid"
            $warn = @(Test-GpuVirtHost -Root $R -Connect $Uri | Where-Object { $_.Name -like 'guest hostdev*' -and $_.Status -eq 'Warn' })
            @($warn | ForEach-Object Detail) | Should -BeLike "*guest '$other'*mediated device $uuid*"
        }
        finally { $withMdev | Remove-FixtureHost }
    }
}

Describe 'Item 8: ConvertTo-XorgBusId -DeviceSection writes the guest''s display functions' {
    BeforeAll {
        # The seed's Quadro and its HDMI audio, its NIC, an AMD GPU and Intel's integrated GPU.
        $script:X = New-FixtureHost -Name Seed -Configure {
            param($b)
            $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b)
            $null = $b.Add('0000:03:00.0', 0x1002, 0x67df, 0x030000, [Action[GpuVirt.Fixtures.FixtureDevice]] { param($d) $d.IommuGroup = 15; $d.Driver = 'amdgpu' })
        }
        $script:XR = $X.Root
    }
    AfterAll { $script:X | Remove-FixtureHost }
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 8: one numbered section per display function, the driver by vendor, nothing for the audio function or the NIC' {
        $vm = New-TestGuest $Libvirt
        foreach ($a in '02:00.0', '02:00.1', '00:19.0', '03:00.0', '00:02.0') {
            $null = Add-GpuHostdev -Domain $vm -Address $a -Root $XR -Connect $Uri -Config -Force -WarningAction SilentlyContinue -ErrorAction Stop
        }
        $hostdevs = @(Get-GpuHostdev -Root $XR -Connect $Uri $vm -Inactive)
        $hostdevs.Count | Should -Be 5
        $sections = @($hostdevs | ConvertTo-XorgBusId -DeviceSection -ErrorAction Stop)
        $sections.Count | Should -Be 3
        $bus = @{}
        foreach ($h in $hostdevs) { $bus[$h.Address] = ConvertTo-XorgBusId $h.GuestAddress }
        $sections[0] | Should -BeExactly (@(
                'Section "Device"'
                '    Identifier     "Device0"'
                '    Driver         "nvidia"'
                '    VendorName     "NVIDIA Corporation"'
                "    BusID          `"$($bus['0000:02:00.0'])`""
                'EndSection') -join "`n")
        $sections[1] | Should -BeLike '*Identifier     "Device1"*Driver         "amdgpu"*'
        $sections[1] | Should -BeLike "*BusID          `"$($bus['0000:03:00.0'])`"*"
        $sections[2] | Should -BeLike '*Identifier     "Device2"*Driver         "modesetting"*VendorName     "Intel Corporation"*'
        $sections[2] | Should -BeLike "*BusID          `"$($bus['0000:00:02.0'])`"*"
        $joined = $sections -join "`n"
        $joined | Should -Not -Match ([regex]::Escape($bus['0000:02:00.1']) + '"')
        $joined | Should -Not -Match ([regex]::Escape($bus['0000:00:19.0']) + '"')

        # The BusIDs alone stay one per hostdev; a given -Driver still wins, and -Identifier numbers from its own.
        @($hostdevs | ConvertTo-XorgBusId).Count | Should -Be 5
        @($hostdevs | ConvertTo-XorgBusId -DeviceSection -Driver nouveau -Identifier Card) -join "`n" |
            Should -BeLike '*"Card"*"nouveau"*"Card1"*"nouveau"*"Card2"*"nouveau"*'
        # Deserialized hostdevs (remoting, Import-Clixml) are read on their own host the same way.
        $file = Join-Path $XR 'hostdevs.xml'
        $hostdevs | Export-Clixml -LiteralPath $file
        @(Import-Clixml -LiteralPath $file | ConvertTo-XorgBusId -DeviceSection -ErrorAction Stop) | Should -Be $sections
    }

    It 'Item 8: the pipeline of the README and about_GpuVirt gives a guest with the seed GPU and its audio function one nvidia section' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev -Domain $vm -Address 02:00.0 -IncludeCompanion -Root $XR -Connect $Uri -Force -WarningAction SilentlyContinue -ErrorAction Stop
        @(Get-GpuHostdev -Root $XR -Connect $Uri -Domain $vm -Inactive).Count | Should -Be 2
        $sections = @(Get-GpuHostdev -Root $XR -Connect $Uri -Domain $vm -Inactive | ConvertTo-XorgBusId -DeviceSection -ErrorAction Stop)
        $sections.Count | Should -Be 1
        $sections[0] | Should -BeLike '*Identifier     "Device0"*Driver         "nvidia"*'
    }
}
