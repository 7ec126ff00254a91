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

Describe 'Item 14: grubby-bls and /etc/default/grub (grubby is a stand-in doing what Fedora''s grubby-bls script does)' {
    BeforeAll {
        function New-BlsHost {
            <# The seed host on RHEL 9 (BLS) with /etc/default/grub given as text and the grubby-bls stand-in. #>
            param([string] $Grub, [switch] $OldGrubby, [switch] $EtcKernel, [string] $KernelCmdline)
            $b = New-FixtureHost -Name Seed
            [GpuVirt.Fixtures.BootFixture]::Rhel9($b.Root, 'grub/rhel9-default-grub')
            $null = [GpuVirt.Fixtures.StandIns]::InstallGrubby($b.Root, 0, $null, -not $OldGrubby)
            if ($Grub) { Set-HostFile -Root $b.Root -Path 'etc/default/grub' -Text $Grub }
            if ($EtcKernel -or $KernelCmdline) { $null = New-Item -ItemType Directory -Force (Join-Path $b.Root 'etc/kernel') }
            if ($KernelCmdline) { Set-HostFile -Root $b.Root -Path 'etc/kernel/cmdline' -Text $KernelCmdline }
            $b
        }
        $script:Base = 'crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet'
        $script:IommuArgs = 'intel_iommu=on iommu=pt pci-stub.ids=10de:11fa'
    }

    It 'Item 14: the stand-in rewrites /etc/default/grub as grubby-bls does when --no-etc-grub-update is missing, and refuses an option after it' {
        $h = New-BlsHost -Grub "GRUB_CMDLINE_LINUX=`"`$(echo rhgb) quiet`"`r`nGRUB_CMDLINE_LINUX_DEFAULT=`"splash`"`r`nGRUB_ENABLE_BLSCFG=true`r`n"
        try {
            $grubby = Join-Path $h.Root 'usr/sbin/grubby'
            & chroot $h.Root /usr/sbin/grubby --update-kernel=ALL --args=iommu=pt 2>$null
            $LASTEXITCODE | Should -Be 0
            [IO.File]::ReadAllText((Join-Path $h.Root 'etc/default/grub')) |
                Should -BeExactly "GRUB_CMDLINE_LINUX=`"rhgb quiet`r iommu=pt`"`nGRUB_CMDLINE_LINUX=`"rhgb quiet`r iommu=pt`"`nGRUB_ENABLE_BLSCFG=true`r`n"
            & chroot $h.Root /usr/sbin/grubby --update-kernel=ALL --no-etc-grub-update --args=iommu=pt 2>$null
            $LASTEXITCODE | Should -Be 1 -Because 'grubby-bls shifts twice for the flag, so the option after it is invalid'
            (& chroot $h.Root /usr/sbin/grubby --help) -join "`n" | Should -BeLike '*--no-etc-grub-update*'
            $grubby | Should -Exist
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 14: <Name>: Enable-IommuBoot passes --no-etc-grub-update last, keeps its own byte-exact edit, and Disable-IommuBoot gives the file back byte for byte' -ForEach @(
        @{ Name = 'a $(...) in GRUB_CMDLINE_LINUX'; Grub = "GRUB_TIMEOUT=5`nGRUB_CMDLINE_LINUX=`"`$([ -x /usr/sbin/rhcrashkernel-param ] && /usr/sbin/rhcrashkernel-param || :) rhgb quiet`"`nGRUB_ENABLE_BLSCFG=true`n" }
        @{ Name = 'a CRLF file'; Grub = "GRUB_TIMEOUT=5`r`nGRUB_CMDLINE_LINUX=`"rhgb quiet`"`r`nGRUB_ENABLE_BLSCFG=true`r`n" }
        @{ Name = 'a file with GRUB_CMDLINE_LINUX_DEFAULT'; Grub = "GRUB_CMDLINE_LINUX=`"rhgb quiet`"`nGRUB_CMDLINE_LINUX_DEFAULT=`"splash`"`nGRUB_ENABLE_BLSCFG=true`n" }
        @{ Name = 'the RHEL 9 file'; Grub = $null }
    ) {
        $h = New-BlsHost -Grub $Grub
        try {
            $file = Join-Path $h.Root 'etc/default/grub'
            $before = [IO.File]::ReadAllBytes($file)
            $text = Get-WhatIfText { Get-GpuDevice -Root $h.Root -Address 02:00.0 | Enable-IommuBoot -Root $h.Root -WhatIf -WarningAction SilentlyContinue }
            $text | Should -BeLike "*grubby --update-kernel=ALL '--args=$IommuArgs' --no-etc-grub-update*"

            $change = Get-GpuDevice -Root $h.Root -Address 02:00.0 | Enable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            $change.Commands | Should -Be @("grubby --update-kernel=ALL '--args=$IommuArgs' --no-etc-grub-update")
            (Get-StandInCall $h.Root)[0] | Should -Be @('grubby', '--update-kernel=ALL', "--args=$IommuArgs", '--no-etc-grub-update')
            $enabled = [IO.File]::ReadAllText($file)
            $expected = [Text.Encoding]::UTF8.GetString($before) -replace '(GRUB_CMDLINE_LINUX="[^"]*)"', "`$1 $IommuArgs`""
            $enabled | Should -BeExactly $expected -Because 'only the module edits the file, and only GRUB_CMDLINE_LINUX'
            Get-Content -Raw (Join-Path $h.Root 'boot/loader/entries/*.conf') | Should -Match ([regex]::Escape($IommuArgs))

            $null = Disable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            (Get-StandInCall $h.Root)[1] | Should -Be @('grubby', '--update-kernel=ALL', "--remove-args=$IommuArgs", '--no-etc-grub-update')
            [IO.File]::ReadAllBytes($file) | Should -Be $before
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 14: a grubby-bls that rewrites /etc/default/grub and does not know the flag (8.40-41): the module''s edit is kept and the undo is byte for byte' {
        $grub = "GRUB_CMDLINE_LINUX=`"`$(echo rhgb) quiet`"`r`nGRUB_CMDLINE_LINUX_DEFAULT=`"splash`"`r`nGRUB_ENABLE_BLSCFG=true`r`n"
        $h = New-BlsHost -Grub $grub -OldGrubby
        try {
            $file = Join-Path $h.Root 'etc/default/grub'
            $change = Get-GpuDevice -Root $h.Root -Address 02:00.0 | Enable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            (Get-StandInCall $h.Root)[0] | Should -Be @('grubby', '--update-kernel=ALL', "--args=$IommuArgs") -Because 'this grubby would refuse the flag'
            [IO.File]::ReadAllText($file) | Should -BeExactly ($grub.Replace('$(echo rhgb) quiet"', "`$(echo rhgb) quiet $IommuArgs`""))
            $change.Changed | Should -BeTrue
            $null = Disable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            [IO.File]::ReadAllText($file) | Should -BeExactly $grub
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 14: with /etc/kernel and no cmdline file, Enable and Disable leave no /etc/kernel/cmdline behind' {
        $h = New-BlsHost -EtcKernel
        try {
            $null = Get-GpuDevice -Root $h.Root -Address 02:00.0 | Enable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            Join-Path $h.Root 'etc/kernel/cmdline' | Should -Not -Exist
            $null = Disable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            Join-Path $h.Root 'etc/kernel/cmdline' | Should -Not -Exist
            (Get-StandInCall $h.Root).Count | Should -Be 2
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'Item 14: an /etc/kernel/cmdline gets the arguments (new kernels inherit them) with its bytes kept, and comes back byte for byte' {
        $cmdline = "root=/dev/mapper/rhel-root ro  $Base`n"
        $h = New-BlsHost -KernelCmdline $cmdline
        try {
            $path = Join-Path $h.Root 'etc/kernel/cmdline'
            $null = Get-GpuDevice -Root $h.Root -Address 02:00.0 | Enable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            [IO.File]::ReadAllText($path) | Should -BeExactly "root=/dev/mapper/rhel-root ro  $Base $IommuArgs`n"
            $null = Disable-IommuBoot -Root $h.Root -Confirm:$false -WarningAction SilentlyContinue
            [IO.File]::ReadAllText($path) | Should -BeExactly $cmdline
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Item 9: Dismount-GpuHostDriver -Persistent where driverctl is not installed' {
    BeforeAll {
        function Get-Softdeps([string] $Root) {
            # What the real modprobe (kmod) reads from the tree's modprobe.d.
            @(& modprobe -C (Join-Path $Root 'etc/modprobe.d') --showconfig 2>&1 | Where-Object { "$_" -like 'softdep *' } | ForEach-Object { "$_".Trim() })
        }
    }
    BeforeEach {
        $script:P = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci'); $null = $b.AddDriver('pci-stub') }
        $script:Core = [GpuVirt.Fixtures.PciDriverCoreStandIn]::new($P.Root)
        $script:Rule = Join-Path $P.Root 'etc/udev/rules.d/61-gpuvirt-driver-override-0000:02:00.1.rules'
        $script:Record = Join-Path $P.Root 'etc/driverctl.d/pci-0000:02:00.1'
        $script:Softdep = Join-Path $P.Root 'etc/modprobe.d/gpuvirt-vfio-pci.conf'
    }
    AfterEach {
        $script:Core.Dispose()
        $script:P | Remove-FixtureHost
    }

    It 'Item 9: writes a udev rule that sets driver_override (not driverctl''s record, which nothing would read), says so under -WhatIf, and the undo and Mount-GpuHostDriver -Persistent take it back' {
        Join-Path $P.Root 'usr/sbin/driverctl' | Should -Not -Exist
        $before = Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json'
        $text = Get-WhatIfText { Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike "*write /etc/udev/rules.d/61-gpuvirt-driver-override-0000:02:00.1.rules (driverctl is not installed: a udev rule that sets driver_override to vfio-pci for 0000:02:00.1 at every boot)*add 'softdep snd_hda_intel pre: vfio-pci'*"
        $text | Should -Not -BeLike '*driverctl.d*'
        $Rule | Should -Not -Exist

        $out = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        $out.Driver | Should -Be 'vfio-pci'
        $Record | Should -Not -Exist
        Get-Content -Raw $Rule | Should -BeExactly ("# Written by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back):`n" +
            "# driverctl is not installed: this rule binds 0000:02:00.1 to vfio-pci at every boot (driver_override, as driverctl does).`n" +
            "ACTION==`"add`", SUBSYSTEM==`"pci`", KERNEL==`"0000:02:00.1`", ATTR{driver_override}=`"vfio-pci`"`n")
        Get-Softdeps $P.Root | Should -Be @('softdep snd_hda_intel pre: vfio-pci')

        $null = Get-GpuVirtChange -Root $P.Root -Last 1 | Undo-GpuVirtChange -Confirm:$false
        (Get-PciDevice 02:00.1 -Root $P.Root).Driver | Should -Be 'snd_hda_intel'
        Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $before

        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        $text = Get-WhatIfText { Mount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike '*remove /etc/udev/rules.d/61-gpuvirt-driver-override-0000:02:00.1.rules (the udev rule of the boot-time binding)*'
        $null = Mount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $before
    }

    It 'Item 9: with driverctl installed in the image, driverctl''s record is written as before' {
        $null = New-Item -ItemType Directory -Force (Join-Path $P.Root 'usr/sbin')
        Copy-Item /usr/sbin/driverctl (Join-Path $P.Root 'usr/sbin/driverctl')
        $null = Dismount-GpuHostDriver 02:00.1 -Persistent -Root $P.Root -Confirm:$false
        Get-Content -Raw $Record | Should -Be "vfio-pci`n"
        $Rule | Should -Not -Exist
    }

    It 'Item 9: from pci-stub the softdep loads pci-stub before the host driver, pci-stub goes in the initramfs (stand-in dracut), and both go with the undo' {
        $null = [GpuVirt.Fixtures.StandIns]::Install($P.Root, 'dracut', 0, $null, $null)
        $before = Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json'
        $text = Get-WhatIfText { Dismount-GpuHostDriver 02:00.1 -Driver pci-stub -Persistent -Root $P.Root -WhatIf }
        $text | Should -BeLike "*add 'softdep snd_hda_intel pre: pci-stub'*write /etc/dracut.conf.d/gpuvirt-pci-stub.conf (put pci-stub in the initramfs: force_drivers+=`" pci_stub `"), then run chroot $($P.Root) dracut --force*"
        $out = Dismount-GpuHostDriver 02:00.1 -Driver pci-stub -Persistent -Root $P.Root -Confirm:$false
        $out.Driver | Should -Be 'pci-stub'
        Get-Softdeps $P.Root | Should -Be @('softdep snd_hda_intel pre: pci-stub')
        Get-Content -Raw $Softdep | Should -BeLike '*# address 0000:02:00.1 from snd_hda_intel to pci-stub*'
        Get-Content -Raw $Rule | Should -BeLike '*ATTR{driver_override}="pci-stub"*'
        Get-Content -Raw (Join-Path $P.Root 'etc/dracut.conf.d/gpuvirt-pci-stub.conf') |
            Should -BeExactly "# Added by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back): pci-stub in the initramfs`nforce_drivers+=`" pci_stub `"`n"
        Join-Path $P.Root 'etc/dracut.conf.d/gpuvirt-vfio-pci.conf' | Should -Not -Exist
        (Get-StandInCall $P.Root)[0] | Should -Be @('dracut', '--force')
        $null = Get-GpuVirtChange -Root $P.Root -Last 1 | Undo-GpuVirtChange -Confirm:$false -WarningAction SilentlyContinue
        Get-TreeHash $P.Root -Exclude '/var/lib/gpuvirt/journal.json' | Should -Be $before
        (Get-StandInCall $P.Root).Count | Should -Be 2
    }
}

Describe 'Item 14: a BLS change killed while grubby-bls ran (it had rewritten /etc/default/grub)' {
    BeforeAll {
        function Get-RootedProcess([string] $Root) {
            <# The processes whose root directory is $Root (the stand-in run by chroot). #>
            foreach ($d in [IO.Directory]::EnumerateDirectories('/proc')) {
                if ((Split-Path -Leaf $d) -notmatch '^\d+$') { continue }
                try { $target = [IO.File]::ResolveLinkTarget("$d/root", $false) } catch { continue }
                if ($target -and $target.FullName -eq $Root) { [int](Split-Path -Leaf $d) }
            }
        }
    }

    It 'Item 14: the next Enable-IommuBoot finishes it and puts the module''s byte-exact /etc/default/grub back; Disable gives the original back' {
        $grub = "GRUB_CMDLINE_LINUX=`"`$(echo rhgb) quiet`"`r`nGRUB_CMDLINE_LINUX_DEFAULT=`"splash`"`r`nGRUB_ENABLE_BLSCFG=true`r`n"
        $b = New-FixtureHost -Name Seed
        try {
            $root = $b.Root
            [GpuVirt.Fixtures.BootFixture]::Rhel9($root, 'grub/rhel9-default-grub')
            Set-HostFile -Root $root -Path 'etc/default/grub' -Text $grub
            # A grubby-bls of 8.40-41 (no --no-etc-grub-update) that, the first time, rewrites the file, then waits to be killed.
            $grubby = [GpuVirt.Fixtures.StandIns]::InstallGrubby($root, 0, $null, $false)
            $script = [IO.File]::ReadAllText($grubby)
            $sleepOnce = 'if [ ! -f /regenerated-once ]; then : > /regenerated-once; echo $$ > /regenerating; /bin/busybox sleep 600; fi'
            [IO.File]::WriteAllText($grubby, $script.Substring(0, $script.LastIndexOf('exit 0')) + $sleepOnce + "`nexit 0`n")

            $pwsh = [Environment]::GetCommandLineArgs()[0]
            $out = [IO.Path]::GetTempFileName()
            $command = "Import-Module '$env:GPUVIRT_MODULE'; Enable-IommuBoot -Root '$root' -StubId 10de:11fa -Confirm:`$false"
            $child = Start-Process -FilePath dotnet -ArgumentList @($pwsh, '-NoProfile', '-NonInteractive', '-Command', $command) -PassThru -RedirectStandardOutput $out -RedirectStandardError "$out.err"
            $deadline = [DateTime]::UtcNow.AddMinutes(3)
            while (-not (Test-Path (Join-Path $root 'regenerating')) -and -not $child.HasExited -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
            Join-Path $root 'regenerating' | Should -Exist -Because 'grubby ran'
            $child.Kill()
            $child.WaitForExit(60000) | Should -BeTrue
            foreach ($id in Get-RootedProcess $root) { & kill -9 $id 2>$null }
            Remove-Item -Force $out, "$out.err"
            [IO.File]::ReadAllText((Join-Path $root 'etc/default/grub')) | Should -Not -BeLike '*$(echo rhgb)*' -Because 'grubby-bls rewrote the file before the kill'

            $null = Enable-IommuBoot -Root $root -StubId 10de:11fa -Confirm:$false -WarningAction SilentlyContinue
            $expected = $grub.Replace('$(echo rhgb) quiet"', '$(echo rhgb) quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa"')
            [IO.File]::ReadAllText((Join-Path $root 'etc/default/grub')) | Should -BeExactly $expected
            Join-Path $root 'var/lib/gpuvirt/boot-pending.json' | Should -Not -Exist
            $null = Disable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
            [IO.File]::ReadAllText((Join-Path $root 'etc/default/grub')) | Should -BeExactly $grub
        }
        finally {
            foreach ($id in Get-RootedProcess $b.Root) { & kill -9 $id 2>$null }
            $b | Remove-FixtureHost
        }
    }
}
