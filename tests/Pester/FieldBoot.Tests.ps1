# Field defects of the boot and driver-binding commands: -WhatIf that wrote, grubby-bls rewriting /etc/default/grub,
# -Persistent without driverctl, and a driver move killed half-way. grubby, grub2-mkconfig and dracut are stand-ins
# (they cannot run here; their argv is asserted); the kernel's PCI driver core is a stand-in on the fixture tree.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt

    function Get-TreeState {
        <#
        Every file, directory and link under a root, with its size, its last write time (to the tick) and, for a file,
        its SHA-256; links are listed, not followed (sysfs trees loop). Equal before and after: nothing there was
        created, removed, written or touched.
        #>
        param([Parameter(Mandatory)] [string] $Root)
        $lines = [Collections.Generic.List[string]]::new()
        $lines.Add('/ dir ' + [IO.Directory]::GetLastWriteTimeUtc($Root).Ticks)
        $pending = [Collections.Generic.Stack[string]]::new()
        $pending.Push($Root)
        while ($pending.Count -gt 0) {
            foreach ($child in [IO.DirectoryInfo]::new($pending.Pop()).EnumerateFileSystemInfos()) {
                $path = $child.FullName.Substring($Root.Length)
                $ticks = $child.LastWriteTimeUtc.Ticks
                if ($null -ne $child.LinkTarget) { $lines.Add("$path link -> $($child.LinkTarget)") }
                elseif ($child -is [IO.DirectoryInfo]) { $lines.Add("$path dir $ticks"); $pending.Push($child.FullName) }
                else { $lines.Add("$path file $($child.Length) $ticks $((Get-FileHash -LiteralPath $child.FullName).Hash)") }
            }
        }
        ($lines | Sort-Object) -join "`n"
    }

    function New-WhatIfHost {
        <# The seed host with RHEL 9 (BLS) boot files, grubby and dracut stand-ins, a loaded vfio-pci and an H100 whose SR-IOV functions are off. #>
        $b = New-FixtureHost -Name Seed -Configure {
            param($b)
            $null = $b.AddDriver('vfio-pci')
            $null = [GpuVirt.Fixtures.SampleHosts]::AddSriovGpu($b, [GpuVirt.Fixtures.FixtureSriovBoard]::H100, '0000:03:00.0', '0000:00:03.0', 40, 0)
        }
        [GpuVirt.Fixtures.BootFixture]::Rhel9($b.Root, 'grub/rhel9-default-grub')
        $null = [GpuVirt.Fixtures.StandIns]::InstallGrubby($b.Root, 0, $null)
        $null = [GpuVirt.Fixtures.StandIns]::Install($b.Root, 'dracut', 0, $null, $null)
        $b
    }

    function Invoke-EveryChangeWhatIf {
        <# Every cmdlet that changes the host, with -WhatIf; errors and warnings are kept out of the way (what counts is the tree). #>
        param([string] $Root, [string] $Uri, [string] $Vm, [string] $Uuid, [string] $DefinitionFile)
        $quiet = @{ WhatIf = $true; ErrorAction = 'SilentlyContinue'; WarningAction = 'SilentlyContinue' }
        $ran = [Collections.Generic.List[string]]::new()
        $calls = [ordered]@{
            'Enable-IommuBoot'         = { Get-GpuDevice -Root $Root -Address 02:00.0 | Enable-IommuBoot -Root $Root -IncludeCompanion @quiet; Get-GpuDevice -Root $Root -Address 02:00.0 | Enable-IommuBoot -Root $Root @quiet }
            'Disable-IommuBoot'        = { Disable-IommuBoot -Root $Root @quiet }
            'Disable-NouveauDriver'    = { Disable-NouveauDriver -Root $Root @quiet }
            'Enable-NouveauDriver'     = { Enable-NouveauDriver -Root $Root @quiet }
            'Dismount-GpuHostDriver'   = { Dismount-GpuHostDriver 02:00.1 -Root $Root @quiet; Dismount-GpuHostDriver 02:00.1 -Persistent -Root $Root @quiet }
            'Mount-GpuHostDriver'      = { Mount-GpuHostDriver 02:00.1 -Root $Root @quiet; Mount-GpuHostDriver 02:00.1 -Persistent -Root $Root @quiet }
            'New-VgpuDevice'           = { New-VgpuDevice -Root $Root -Parent 01:00.0 -Type 'GRID P4-1Q' -Uuid $Uuid -Persistent @quiet }
            'Remove-VgpuDevice'        = { Remove-VgpuDevice -Root $Root -Uuid $Uuid -Persistent @quiet }
            'Import-VgpuDefinition'    = { Import-VgpuDefinition -Path $DefinitionFile -Root $Root @quiet }
            'Enable-VgpuSriov'         = { Enable-VgpuSriov -Root $Root -Address 03:00.0 -Count 4 @quiet }
            'Add-GpuHostdev'           = { Add-GpuHostdev $Vm -Address 02:00.0 -Root $Root -Connect $Uri @quiet }
            'Remove-GpuHostdev'        = { Remove-GpuHostdev $Vm -Address 02:00.0 -Root $Root -Connect $Uri @quiet }
            'Set-VgpuConsole'          = { Set-VgpuConsole $Vm -NoEmulatedVideo -Root $Root -Connect $Uri @quiet }
            'Set-GuestMmioSpace'       = { Set-GuestMmioSpace $Vm -Root $Root -Connect $Uri @quiet }
            'Undo-GpuVirtChange'       = { Get-GpuVirtChange -Root $Root -ErrorAction SilentlyContinue | Undo-GpuVirtChange @quiet }
        }
        foreach ($name in $calls.Keys) {
            try { $null = & $calls[$name] *>&1 } catch { }
            $ran.Add($name)
        }
        $ran
    }

    function Get-ChangingCmdlet {
        <# The module's cmdlets that declare ShouldProcess: every one of them must be in Invoke-EveryChangeWhatIf. #>
        @(Get-Command -Module GpuVirt -CommandType Cmdlet | Where-Object { $_.Parameters.ContainsKey('WhatIf') } | ForEach-Object Name | Sort-Object)
    }

    $script:Definition = @'
[
  {
    "0000:01:00.0": [
      {
        "30820a6f-b1a5-4503-91ca-0c10ba58692b": {
          "mdev_type": "nvidia-63",
          "start": "auto"
        }
      }
    ]
  }
]
'@
}

AfterAll {
    $script:Libvirt | Remove-EmbeddedLibvirt
}

Describe 'Item 13: -WhatIf writes nothing, anywhere, by any cmdlet' {
    BeforeAll {
        $script:Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
        $script:DefinitionFile = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-whatif-' + [guid]::NewGuid().ToString('N') + '.json')
        Set-Content -LiteralPath $DefinitionFile -Value $Definition -NoNewline
    }
    AfterAll { Remove-Item -Force -LiteralPath $DefinitionFile -ErrorAction SilentlyContinue }
    BeforeEach {
        $script:H = New-WhatIfHost
        $script:Root = $H.Root
        $script:Vm = New-TestGuest $Libvirt -Graphics
    }
    AfterEach {
        Clear-TestGuest $Libvirt
        $script:H | Remove-FixtureHost
    }

    It 'Item 13: every changing cmdlet with -WhatIf on a fresh image leaves every file, directory and mtime as it was (no /run/lock either)' {
        $before = Get-TreeState $Root
        $xml = Get-InactiveXml $Libvirt $Vm
        $ran = $null
        $null = Get-WhatIfText { $script:ran = Invoke-EveryChangeWhatIf -Root $Root -Uri $Libvirt.Uri -Vm $Vm -Uuid $Uuid -DefinitionFile $DefinitionFile }
        $script:ran | Sort-Object | Should -Be (Get-ChangingCmdlet) -Because 'every cmdlet that can change the host is run'
        Join-Path $Root 'run' | Should -Not -Exist
        Get-TreeState $Root | Should -Be $before
        Get-InactiveXml $Libvirt $Vm | Should -Be $xml
        (Get-StandInCall $Root).Count | Should -Be 0
    }

    It 'Item 13: every changing cmdlet with -WhatIf after a whole setup (each has something to do or undo) leaves the image as it was' {
        $uri = $Libvirt.Uri
        $core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($Root)
        $mdev = [GpuVirt.Fixtures.MdevDriverStandIn]::new($Root)
        try {
            $null = Get-GpuDevice -Root $Root -Address 02:00.0 | Enable-IommuBoot -Root $Root -Confirm:$false -WarningAction SilentlyContinue
            $null = Disable-NouveauDriver -Root $Root -Confirm:$false
            $null = Dismount-GpuHostDriver 02:00.1 -Root $Root -Confirm:$false
            $null = New-VgpuDevice -Root $Root -Parent 01:00.0 -Type 'GRID P4-1Q' -Uuid $Uuid -Persistent -Confirm:$false
            $null = Add-GpuHostdev $Vm -Address 02:00.0 -Root $Root -Connect $uri -WarningAction SilentlyContinue
        }
        finally { $core.Dispose(); $mdev.Dispose() }
        # The lock's file from the setup goes: a command with nothing to do (Enable-IommuBoot again) must not make it.
        Remove-Item -Recurse -Force (Join-Path $Root 'run')
        $before = Get-TreeState $Root
        $xml = Get-InactiveXml $Libvirt $Vm
        $calls = (Get-StandInCall $Root).Count
        $null = Get-WhatIfText { $script:ran = Invoke-EveryChangeWhatIf -Root $Root -Uri $uri -Vm $Vm -Uuid $Uuid -DefinitionFile $DefinitionFile }
        $script:ran | Sort-Object | Should -Be (Get-ChangingCmdlet)
        Get-TreeState $Root | Should -Be $before
        Get-InactiveXml $Libvirt $Vm | Should -Be $xml
        (Get-StandInCall $Root).Count | Should -Be $calls
    }
}
