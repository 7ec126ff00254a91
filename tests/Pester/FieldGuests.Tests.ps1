# Field defects of issue 29 about libvirt guests and their hostdevs: an IOMMU group split between guests (item 2),
# functions a guest holds through <interface type='hostdev'> (item 3), the lock of a guest's definition wherever -Root
# points (item 4), false warnings at the seed's own steps (item 6) and two attaches of one group at once (item 23).
# Real cmdlets, real virsh on the embedded QEMU driver, kernel-shaped fixture trees.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uri = $Libvirt.Uri
    # The embedded driver's root: the guests' locks lie under it (run/gpuvirt), whatever -Root a command is given.
    $script:EmbedRoot = ([uri]$Uri).Query -replace '^\?root=', ''
    $script:Seed = New-FixtureHost -Name Seed
    $script:Root = $Seed.Root
    $script:Trees = [System.Collections.Generic.List[object]]::new()

    function New-Tree([scriptblock] $Configure, [string] $Name = 'Seed') {
        $t = New-FixtureHost -Name $Name -Configure $Configure
        $script:Trees.Add($t)
        $t.Root
    }

    function New-GuestWith([string] $Name, [string] $DeviceXml) {
        <# Defines a shut-off guest whose definition holds $DeviceXml, as another tool would have written it. #>
        $doc = [xml][GpuVirt.Fixtures.LibvirtFixture]::Domain($Name, $false, $null, 4)
        $null = $doc.domain.devices.AppendChild($doc.ImportNode(([xml]$DeviceXml).DocumentElement, $true))
        $file = Join-Path $Libvirt.Directory ('def-' + [guid]::NewGuid().ToString('N') + '.xml')
        $doc.Save($file)
        $null = Invoke-Virsh $Libvirt define --file $file
        $Name
    }

    function Get-GuestUuid([string] $Domain) { (Invoke-Virsh $Libvirt domuuid --domain $Domain).Trim() }

    function Get-HostdevCount([string] $Domain) {
        $xml = [xml](Get-InactiveXml $Libvirt $Domain)
        @($xml.domain.devices.hostdev).Where({ $_ }).Count + @($xml.domain.devices.interface | Where-Object type -eq 'hostdev').Count
    }

    $script:NicInterface = "<interface type='hostdev' managed='yes'><mac address='52:54:00:6d:90:02'/><source><address type='pci' domain='0x0000' bus='0x00' slot='0x19' function='0x0'/></source></interface>"
}

AfterAll {
    $script:Libvirt | Remove-EmbeddedLibvirt
    $script:Seed | Remove-FixtureHost
    foreach ($t in $script:Trees) { $t | Remove-FixtureHost }
}

Describe 'Item 2: an IOMMU group split between guests' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 2: Add-GpuHostdev refuses the audio function for a second guest with IommuGroupSplit naming the guest that has the GPU, and -Force attaches it with a warning' {
        $pa = New-TestGuest $Libvirt -Name 'pa'
        $pb = New-TestGuest $Libvirt -Name 'pb'
        $null = Add-GpuHostdev $pa -Address 02:00.0 -Root $Root -Connect $Uri -Confirm:$false -WarningAction SilentlyContinue

        $err = $null
        $out = Get-PciDevice 02:00.1 -Root $Root | Add-GpuHostdev -Domain $pb -Connect $Uri -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Be 'IommuGroupSplit,GpuVirt.Commands.AddGpuHostdevCommand'
        $err[0].Exception.Message | Should -BeLike "*0000:02:00.1 is in IOMMU group 13*assigned to guest 'pa'*0000:02:00.0 in guest 'pa'*neither of them can start*Nothing was attached*"
        Get-HostdevCount $pb | Should -Be 0
        # -WhatIf says the same, and attaches nothing.
        { Add-GpuHostdev $pb -Address 02:00.1 -Root $Root -Connect $Uri -WhatIf -ErrorAction Stop } | Should -Throw -ErrorId 'IommuGroupSplit,GpuVirt.Commands.AddGpuHostdevCommand'

        $warnings = $null
        $forced = Add-GpuHostdev $pb -Address 02:00.1 -Root $Root -Connect $Uri -Force -Confirm:$false -WarningVariable warnings
        $forced.Address | Should -Be '0000:02:00.1'
        "$warnings" | Should -BeLike "*IOMMU group 13*guest 'pa'*-Force attaches it anyway*"
        Get-HostdevCount $pb | Should -Be 1
    }

    It 'Item 2: Test-GpuVirtHost lists a group split between guests (Fail, naming each function and guest), and passes when every group is in one guest' {
        $pa = New-TestGuest $Libvirt -Name 'pa'
        $pb = New-TestGuest $Libvirt -Name 'pb'
        $null = Add-GpuHostdev $pa -Address 02:00.0 -Root $Root -Connect $Uri -Confirm:$false -WarningAction SilentlyContinue
        $check = Test-GpuVirtHost -Root $Root -Connect $Uri | Where-Object Name -eq 'IOMMU group in one guest'
        @($check).Count | Should -Be 1
        $check.Status | Should -Be 'Pass'

        # Another tool gave the audio function to the second guest.
        $null = Invoke-Virsh $Libvirt attach-device --domain $pb --file (New-Item -Force (Join-Path $Libvirt.Directory 'audio.xml') -Value "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x02' slot='0x00' function='0x1'/></source></hostdev>").FullName --config
        $check = Test-GpuVirtHost -Root $Root -Connect $Uri | Where-Object Name -eq 'IOMMU group in one guest'
        @($check).Count | Should -Be 1
        $check.Status | Should -Be 'Fail'
        $check.Device | Should -Be '0000:02:00.0'
        $check.Detail | Should -BeLike "IOMMU group 13 is split between guest 'pa' and guest 'pb': 0000:02:00.0 in guest 'pa', 0000:02:00.1 in guest 'pb'*"
        $check.Fix | Should -BeLike "*Remove-GpuHostdev*"
        Test-GpuVirtHost -Root $Root -Connect $Uri -Quiet | Should -BeFalse
    }
}

Describe 'Item 3: functions held through an interface of type hostdev' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 3: Get-GpuHostdev, the Guests of Get-PciDevice and Add-GpuHostdev''s ownership check see a function a guest holds as an interface' {
        $pa = New-GuestWith 'pa' $NicInterface
        $pb = New-TestGuest $Libvirt -Name 'pb'

        $hostdev = Get-GpuHostdev $pa -Connect $Uri
        @($hostdev).Count | Should -Be 1
        $hostdev.Address | Should -Be '0000:00:19.0'
        $hostdev.Interface | Should -BeTrue
        $hostdev.Managed | Should -BeTrue
        $hostdev.GuestAddress | Should -Not -BeNullOrEmpty
        $hostdev.Xml | Should -BeLike "<interface type=`"hostdev`"*"

        (Get-PciDevice 00:19.0 -Root $Root -Connect $Uri).Guests | Should -Be @('pa')

        { Add-GpuHostdev $pb -Address 00:19.0 -Root $Root -Connect $Uri -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'HostdevInUse,GpuVirt.Commands.AddGpuHostdevCommand'
        Get-HostdevCount $pb | Should -Be 0
    }

    It 'Item 3: Mount-GpuHostDriver refuses to give a function a guest holds as an interface back to its host driver, writing nothing' {
        $tree = New-Tree { param($b) $null = $b.AddDriver('vfio-pci'); $d = $b.Devices | Where-Object Address -eq '0000:00:19.0'; $d.Driver = 'vfio-pci'; $d.DriverOverride = 'vfio-pci' }
        $null = New-GuestWith 'pa' $NicInterface
        $before = Get-TreeHash $tree
        $override = Get-Content -Raw (Join-Path $tree 'sys/bus/pci/devices/0000:00:19.0/driver_override')
        $err = $null
        $out = Mount-GpuHostDriver 00:19.0 -Root $tree -Connect $Uri -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'DeviceReferencedByGuest,GpuVirt.Commands.MountGpuHostDriverCommand'
        $err[0].Exception.Message | Should -BeLike "*referenced by the definition of guest 'pa'*"
        Get-Content -Raw (Join-Path $tree 'sys/bus/pci/devices/0000:00:19.0/driver_override') | Should -Be $override
        Get-TreeHash $tree | Should -Be $before
    }

    It 'Item 3: Remove-GpuHostdev takes the interface out of the definition (a hostdev element of the same source would leave it), and the undo puts it back' {
        $pa = New-GuestWith 'pa' $NicInterface
        $tree = New-Tree {}
        $removed = Get-GpuHostdev $pa -Connect $Uri | Remove-GpuHostdev -Root $tree -Connect $Uri -Confirm:$false -PassThru
        $removed.Interface | Should -BeTrue
        Get-HostdevCount $pa | Should -Be 0
        $record = @(Get-GpuVirtChange -Root $tree | Where-Object Command -eq 'Remove-GpuHostdev')
        $record.Count | Should -Be 1
        $null = $record | Undo-GpuVirtChange -Root $tree -Confirm:$false
        $xml = [xml](Get-InactiveXml $Libvirt $pa)
        @($xml.domain.devices.interface | Where-Object type -eq 'hostdev').Count | Should -Be 1
        $xml.domain.devices.interface.mac.address | Should -Be '52:54:00:6d:90:02'
    }
}

Describe 'Item 6: no false warnings at the seed''s own steps' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 6: after Dismount-GpuHostDriver put 02:00.1 on vfio-pci, Add-GpuHostdev 02:00.0 does not warn that 02:00.1 must leave its host driver (and does while it is on snd_hda_intel)' {
        $tree = New-Tree { param($b) $null = $b.AddDriver('vfio-pci'); $null = $b.AddDriver('nouveau')
            ($b.Devices | Where-Object Address -eq '0000:02:00.0').Driver = 'nouveau'
            $a = $b.Devices | Where-Object Address -eq '0000:02:00.1'; $a.Driver = 'vfio-pci'; $a.DriverOverride = 'vfio-pci' }
        $pa = New-TestGuest $Libvirt -Name 'pa'
        $warnings = $null
        $out = Add-GpuHostdev $pa -Address 02:00.0 -Root $tree -Connect $Uri -Confirm:$false -WarningVariable warnings
        $out.Managed | Should -BeTrue
        "$warnings" | Should -Not -BeLike '*must leave its host driver*'
        "$warnings" | Should -Not -BeLike '*0000:02:00.1*'

        # The audio function still on its host driver: the warning is true, and stays.
        $pb = New-TestGuest $Libvirt -Name 'pb'
        $null = Get-WhatIfText { Add-GpuHostdev $pb -Address 02:00.0 -Root $Root -Connect $Uri -WhatIf -WarningVariable script:seedWarnings -ErrorAction SilentlyContinue }
        "$script:seedWarnings" | Should -BeLike '*0000:02:00.0 shares its slot or IOMMU group 13 with 0000:02:00.1 (Audio device, driver snd_hda_intel)*must leave its host driver*'
    }

    It 'Item 6: Dismount-GpuHostDriver 02:00.1 does not warn "the guest will not start" while the GPU, on its host driver, is to go in managed=yes; -Verbose says how the group becomes viable' {
        $tree = New-Tree { param($b) $null = $b.AddDriver('vfio-pci'); $null = $b.AddDriver('nouveau')
            ($b.Devices | Where-Object Address -eq '0000:02:00.0').Driver = 'nouveau'
            $a = $b.Devices | Where-Object Address -eq '0000:02:00.1'; $a.Driver = 'vfio-pci'; $a.DriverOverride = 'vfio-pci' }
        $warnings = $null
        $out = Dismount-GpuHostDriver 02:00.1 -Root $tree -Confirm:$false -Verbose -WarningVariable warnings 4>&1
        ($out | Where-Object { $_ -is [GpuVirt.Core.PciDevice] }).Driver | Should -Be 'vfio-pci'
        "$warnings" | Should -Not -BeLike '*will not start*'
        "$warnings" | Should -Not -BeLike '*not viable*'
        "$($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })" |
            Should -BeLike "*IOMMU group 13: 0000:02:00.0 (driver nouveau) still on a host driver. Give it to the same guest (Add-GpuHostdev attaches it managed='yes'*"
    }

    It 'Item 6: a group member the host needs still keeps the group: that warning stays' {
        # The NVMe disk of /srv (md0) put in the GPU's group: no guest can be given the group without taking it from the host.
        $tree = New-Tree -Name InUse { param($b) $null = $b.AddDriver('vfio-pci')
            $a = $b.Devices | Where-Object Address -eq '0000:02:00.1'; $a.Driver = 'vfio-pci'; $a.DriverOverride = 'vfio-pci'
            ($b.Devices | Where-Object Address -eq '0000:00:1b.0').IommuGroup = 13 }
        $warnings = $null
        $null = Dismount-GpuHostDriver 02:00.1 -Root $tree -Confirm:$false -WarningVariable warnings -ErrorAction SilentlyContinue
        "$warnings" | Should -BeLike '*IOMMU group 13 is not viable yet: 0000:00:1b.0 (driver nvme) still on host drivers*'
    }
}

Describe 'Item 4: a guest definition is locked per libvirt connection and guest, wherever -Root points' {
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 4: Add-GpuHostdev and Set-VgpuConsole on two other roots wait for the guest''s lock and change nothing while it is held; -WhatIf takes no lock' {
        $vgpu = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
        $vm = New-GuestWith 'locked' "<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'><source><address uuid='$vgpu'/></source></hostdev>"
        $other = New-TestGuest $Libvirt -Name 'free'
        $rootA = New-Tree {}
        $rootB = New-Tree {}
        $lockDir = Join-Path $EmbedRoot 'run/gpuvirt'
        $lockFile = Join-Path $lockDir ('guest-' + (Get-GuestUuid $vm) + '.lock')
        $before = Get-InactiveXml $Libvirt $vm
        $held = [GpuVirt.Fixtures.FixtureLock]::HoldFile($lockFile)
        try {
            $GpuVirtLockTimeout = 1
            $err = $null
            try { Add-GpuHostdev $vm -Address 00:19.0 -Root $rootA -Connect $Uri -Confirm:$false -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'HostLockTimedOut,GpuVirt.Commands.AddGpuHostdevCommand'
            $err.Exception.Message | Should -BeLike "*lock '$lockFile'*change the definition of guest 'locked'*nothing was changed*"
            $err = $null
            try { Set-VgpuConsole -Domain $vm -Root $rootB -Connect $Uri -Confirm:$false -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'HostLockTimedOut,GpuVirt.Commands.SetVgpuConsoleCommand'
            Get-InactiveXml $Libvirt $vm | Should -Be $before

            # -WhatIf plans and shows, and never waits for (nor creates) a lock.
            $text = Get-WhatIfText { Add-GpuHostdev $vm -Address 00:19.0 -Root $rootA -Connect $Uri -WhatIf }
            $text | Should -BeLike "*What if: Attach PCI hostdev 0000:00:19.0 to guest 'locked'*"
            $null = Get-WhatIfText { Set-VgpuConsole -Domain $other -Root $rootB -Connect $Uri -WhatIf -ErrorAction SilentlyContinue }
            $null = Get-WhatIfText { Add-GpuHostdev $other -Address 00:19.0 -Root $rootB -Connect $Uri -WhatIf }
            Test-Path (Join-Path $lockDir ('guest-' + (Get-GuestUuid $other) + '.lock')) | Should -BeFalse
        }
        finally { $held.Dispose() }

        # Let go: the same commands go through, each from its own root.
        (Add-GpuHostdev $vm -Address 00:19.0 -Root $rootA -Connect $Uri -Confirm:$false).Address | Should -Be '0000:00:19.0'
        (Set-VgpuConsole -Domain $vm -Root $rootB -Connect $Uri -Confirm:$false).Applied | Should -BeTrue
        $after = [xml](Get-InactiveXml $Libvirt $vm)
        @($after.domain.devices.hostdev | Where-Object type -eq 'pci').Count | Should -Be 1 -Because 'the console change kept the hostdev attached from the other root'
        ($after.domain.devices.hostdev | Where-Object type -eq 'mdev').display | Should -Be 'on'
    }
}

Describe 'Item 23: two Add-GpuHostdev of one IOMMU group into two guests at once' {
    BeforeAll {
        # virsh, run through flock(1): the embedded driver serves one process at a time where libvirtd would queue
        # the clients. Every answer is the real virsh's.
        $real = (Get-Command virsh -CommandType Application | Select-Object -First 1).Source
        $script:Serial = Join-Path $Libvirt.Directory ('serial-virsh-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $Serial
        [IO.File]::WriteAllText((Join-Path $Serial 'virsh'), "#!/bin/sh`nexec flock '$Serial/embed.lock' '$real' `"`$@`"`n")
        & chmod 755 (Join-Path $Serial 'virsh')

        function Start-Attach([string] $Domain, [string] $Address, [string] $HostRoot) {
            $pwsh = [Environment]::GetCommandLineArgs()[0]
            $script = "`$env:PATH = '${Serial}:' + `$env:PATH; Import-Module '$env:GPUVIRT_MODULE'; " +
                "try { `$null = Add-GpuHostdev '$Domain' -Address $Address -Root '$HostRoot' -Connect '$Uri' -Confirm:`$false -WarningAction SilentlyContinue -ErrorAction Stop; 'result:attached' } " +
                "catch { 'result:' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }"
            $out = Join-Path $Libvirt.Directory ('child-' + [guid]::NewGuid().ToString('N'))
            $p = Start-Process -FilePath dotnet -ArgumentList @($pwsh, '-NoProfile', '-NonInteractive', '-Command', $script) -PassThru -RedirectStandardOutput $out -RedirectStandardError "$out.err"
            [pscustomobject]@{ Process = $p; Out = $out }
        }
    }
    AfterEach { Clear-TestGuest $Libvirt }

    It 'Item 23: <Case>: both plan, wait at the connection''s assignment lock (held by the test), and the second re-check under it refuses with <ErrorId>' -ForEach @(
        @{ Case = 'the GPU and its audio function, from two roots'; A = '02:00.0'; B = '02:00.1'; ErrorId = 'IommuGroupSplit' }
        @{ Case = 'one GPU into two guests, from two roots'; A = '02:00.0'; B = '02:00.0'; ErrorId = 'HostdevInUse' }
    ) {
        $pa = New-TestGuest $Libvirt -Name 'pa'
        $pb = New-TestGuest $Libvirt -Name 'pb'
        $rootA = New-Tree {}
        $rootB = New-Tree {}
        # Held from here: both commands read the guests (no split yet), plan, and queue on it in the kernel.
        $held = [GpuVirt.Fixtures.FixtureLock]::HoldFile((Join-Path $EmbedRoot 'run/gpuvirt/hostdevs.lock'))
        $children = @()
        try {
            $children = @((Start-Attach $pa $A $rootA), (Start-Attach $pb $B $rootB))
            $deadline = [DateTime]::UtcNow.AddMinutes(4)
            while ($held.Waiters() -lt 2 -and @($children | Where-Object { -not $_.Process.HasExited }).Count -gt 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
            $waiting = $held.Waiters()
        }
        finally { $held.Dispose() }
        $results = foreach ($c in $children) {
            $c.Process.WaitForExit(240000) | Should -BeTrue
            (Get-Content -Raw $c.Out) + (Get-Content -Raw "$($c.Out).err")
        }
        $text = $results -join "`n"
        $waiting | Should -Be 2 -Because "both commands wait for the assignment lock of the connection, whatever their root:`n$text"
        @([regex]::Matches($text, 'result:attached')).Count | Should -Be 1 -Because $text
        @([regex]::Matches($text, "result:$ErrorId,GpuVirt\.Commands\.AddGpuHostdevCommand")).Count | Should -Be 1 -Because $text
        $text | Should -Match 'found when the change was about to be made; nothing was changed'
        @(@($pa, $pb) | Where-Object { (Get-HostdevCount $_) -gt 0 }).Count | Should -Be 1 -Because "the group is in one guest:`n$text"
    }
}
