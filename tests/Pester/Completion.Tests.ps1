# Tab completion as a user meets it: CommandCompletion.CompleteInput on a command line, against the host of the
# -Root typed on that line (a kernel-shaped fixture tree), never the machine's own /sys.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:InUse = New-FixtureHost -Name InUse
    $script:R = $InUse.Root
    $script:Mdev = [GpuVirt.Fixtures.SampleHosts]::InUseMdev
    function Complete([string] $Line) { [System.Management.Automation.CommandCompletion]::CompleteInput($Line, $Line.Length, $null).CompletionMatches }
    function Get-TreeName([string] $Dir, [string] $Like = '*') { @(Get-ChildItem -LiteralPath $Dir -Name | Where-Object { $_ -like $Like } | Sort-Object) }
}

AfterAll {
    $script:InUse | Remove-FixtureHost
}

Describe 'Completion of -Address' {
    It 'offers every function of the typed -Root that matches, typed in full or without the domain' {
        $expected = Get-TreeName (Join-Path $R 'sys/bus/pci/devices') '0000:02:*'
        $expected.Count | Should -Be 2
        (Complete "Get-PciDevice -Root $R -Address 02:").CompletionText | Should -Be $expected
        (Complete "Dismount-GpuHostDriver -Root $R -Address 0000:02:").CompletionText | Should -Be $expected
        (Complete "Add-GpuHostdev -Domain vm1 -Root $R -Address 02:").CompletionText | Should -Be $expected
        (Complete "Enable-IommuBoot -Root $R -Address 02:").CompletionText | Should -Be $expected
    }

    It 'names the vendor, the device and the driver in the tip' {
        $match = Complete "Get-PciDevice -Root $R -Address 02:00.0" | Select-Object -First 1
        $device = Get-PciDevice -Root $R -Address 02:00.0
        $match.ToolTip | Should -Be "0000:02:00.0 $($device.VendorName) $($device.DeviceName) ($($device.Driver))"
    }

    It 'offers only GPUs to Get-GpuDevice' {
        $gpus = @(Get-GpuDevice -Root $R | ForEach-Object { $_.Address.ToString() })
        $all = Get-TreeName (Join-Path $R 'sys/bus/pci/devices')
        $gpus.Count | Should -BeLessThan $all.Count
        (Complete "Get-GpuDevice -Root $R -Address ").CompletionText | Should -Be $gpus
    }

    It 'reads a relative -Root from the current location' {
        Push-Location -LiteralPath (Split-Path -Parent $R)
        try { (Complete "Get-PciDevice -Root $(Split-Path -Leaf $R) -Address 02:00.1").CompletionText | Should -Be '0000:02:00.1' }
        finally { Pop-Location }
    }

    It 'offers nothing for a root that does not exist' {
        Complete "Get-PciDevice -Root $R/missing -Address 0" | Should -BeNullOrEmpty
    }
}

Describe 'Completion of -Uuid, -Number and -Driver' {
    It 'offers the mediated devices of the typed -Root for -Uuid' {
        $match = Complete "Remove-VgpuDevice -Root $R -Uuid $($Mdev.Substring(0, 4))"
        $match.CompletionText | Should -Be $Mdev
        $match.ToolTip | Should -BeLike "$Mdev nvidia-63 * on 0000:01:00.0"
        (Complete "Get-VgpuDevice -Root $R -Uuid ").CompletionText | Should -Be $Mdev
        (Complete "Export-VgpuDefinition -Root $R -Uuid ").CompletionText | Should -Be $Mdev
    }

    It 'offers the IOMMU group numbers for Get-IommuGroup -Number, with their members in the tip' {
        $groups = Join-Path $R 'sys/kernel/iommu_groups'
        $numbers = @(Get-ChildItem -LiteralPath $groups -Name | ForEach-Object { [int] $_ } | Sort-Object | ForEach-Object { "$_" })
        (Complete "Get-IommuGroup -Root $R -Number ").CompletionText | Should -Be $numbers
        (Complete "Get-IommuGroup -Root $R -Number 1").CompletionText | Should -Be @($numbers | Where-Object { $_ -like '1*' })
        $members = (Get-TreeName (Join-Path $groups '13/devices')) -join ', '
        (Complete "Get-IommuGroup -Root $R -Number 13").ToolTip | Should -Be "IOMMU group 13: $members"
    }

    It 'offers the loaded PCI drivers for Get-PciDevice -Driver' {
        $drivers = Get-TreeName (Join-Path $R 'sys/bus/pci/drivers')
        $drivers | Should -Contain 'pci-stub'
        (Complete "Get-PciDevice -Root $R -Driver ").CompletionText | Should -Be $drivers
        (Complete "Get-PciDevice -Root $R -Driver pci").CompletionText | Should -Be @($drivers | Where-Object { $_ -like 'pci*' })
    }
}
