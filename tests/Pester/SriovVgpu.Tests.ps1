# NVIDIA vGPU 17+ (SR-IOV virtual functions carrying nvidia/creatable_vgpu_types and nvidia/current_vgpu_type) on
# the L40S / H100 sample host, with the stand-in for NVIDIA's host driver answering the writes.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force

    function New-SriovHost([switch] $H100VfsEnabled) {
        $root = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-pester-' + [guid]::NewGuid().ToString('N'))
        $b = [GpuVirt.Fixtures.SampleHosts]::SriovVgpu($root, [bool]$H100VfsEnabled)
        $null = $b.Build()
        $b
    }

    function Get-VfType([string] $Root, [string] $Vf) {
        (Get-Content -Raw (Join-Path $Root "sys/bus/pci/devices/$Vf/nvidia/current_vgpu_type")).Trim()
    }
}

Describe 'The L40S / H100 sample host' {
    It 'lists each GPU''s VF types with NVIDIA''s names and series, and the Tesla P4''s mdev types beside them' {
        $h = New-SriovHost -H100VfsEnabled
        try {
            $types = Get-VgpuType -Root $h.Root
            $l40s = $types | Where-Object Parent -EQ '0000:41:00.0'
            $l40s.Name | Should -Contain 'NVIDIA L40S-48Q'
            @($l40s | Where-Object Series -EQ 'Q').Count | Should -Be 10
            @($l40s | ForEach-Object Series | Sort-Object -Unique) | Should -Be @('A', 'B', 'C', 'Q')
            ($l40s | Where-Object Name -EQ 'NVIDIA L40S-4Q').AvailableInstances | Should -Be 4 -Because 'four free virtual functions list it'
            ($l40s | Select-Object -First 1).Kind | Should -Be 'SriovVf'
            $h100 = $types | Where-Object Parent -EQ '0000:c1:00.0'
            @($h100 | ForEach-Object Series | Sort-Object -Unique) | Should -Be 'C'
            ($types | Where-Object Parent -EQ '0000:01:00.0').Id | Should -Contain 'nvidia-63'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'is what the real lspci reads: the PFs and VFs are NVIDIA 3D controllers bound to nvidia' {
        $h = New-SriovHost
        try {
            $l = Get-LspciDevice -Root $h.Root
            ($l | Where-Object Address -EQ '0000:41:00.5').Ids | Should -Be '10de:26b9'
            ($l | Where-Object Address -EQ '0000:41:00.5').Driver | Should -Be 'nvidia'
            ($l | Where-Object Address -EQ '0000:c1:00.0').Ids | Should -Be '10de:2331'
            @($l | Where-Object Address -Like '0000:c1:*').Count | Should -Be 1 -Because 'the H100''s VFs are not enabled'
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'New-VgpuDevice on an SR-IOV GPU' {
    It '-Parent (the PF) -Count 2 sets the type on two free VFs in one plan; Get-VgpuDevice shows VF, PF and type name' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $made = New-VgpuDevice -Root $h.Root -Parent 41:00.0 -Type 'NVIDIA L40S-24Q' -Count 2
            $driver.WaitIdle()
            ($made | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:41:00.4', '0000:41:00.5')
            Get-VfType $h.Root 0000:41:00.4 | Should -Be '1168'
            Get-VfType $h.Root 0000:41:00.5 | Should -Be '1168'
            $driver.Log | Should -Be @('set 0000:41:00.4 1168', 'set 0000:41:00.5 1168')
            $listed = Get-VgpuDevice -Root $h.Root
            ($listed | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:41:00.4', '0000:41:00.5')
            $listed.Parent | Should -Be @('0000:41:00.0', '0000:41:00.0')
            $listed.TypeName | Should -Be @('NVIDIA L40S-24Q', 'NVIDIA L40S-24Q')
            $table = $listed | Format-Table | Out-String -Width 200
            $table | Should -BeLike '*0000:41:00.4*0000:41:00.0*1168*NVIDIA L40S-24Q*'
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'honours what each VF lists now: the GPU runs one type, and says why another does not fit' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $null = New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 'NVIDIA L40S-24Q'
            $driver.WaitIdle()
            (Get-VgpuType -Root $h.Root -Parent 0000:41:00.0 -Available).Name | Should -Be 'NVIDIA L40S-24Q' -Because 'the free VFs list only the type the GPU runs'
            { New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 'NVIDIA L40S-4Q' -ErrorAction Stop } |
                Should -Throw -ErrorId 'VgpuTypeNotFound,GpuVirt.Commands.NewVgpuDeviceCommand' -ExpectedMessage '*runs vGPU type 1168 (NVIDIA L40S-24Q) on 1 of its virtual functions*exclude each other*'
            # Two 24Q fill 48 GB: after the second the free VFs list nothing, and the third is refused before any write.
            $null = New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 1168
            $driver.WaitIdle()
            $err = $null
            try { New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 1168 -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand'
            $err.Exception.Message | Should -BeLike '*0 of its 4 virtual functions can take it now*2 already carry a vGPU (type 1168 (NVIDIA L40S-24Q))*GPU is full*'
            Get-VfType $h.Root 0000:41:00.6 | Should -Be '0'
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'refuses -Count beyond the free VFs before writing anything, and -WhatIf names every write' {
        $h = New-SriovHost
        try {
            { New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 'NVIDIA L40S-1Q' -Count 5 -ErrorAction Stop } |
                Should -Throw -ErrorId 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand'
            $text = Get-WhatIfText { New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 'NVIDIA L40S-1Q' -Count 2 -WhatIf }
            $text | Should -BeLike '*write 1160 to /sys/bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type*write 1160 to /sys/bus/pci/devices/0000:41:00.5/nvidia/current_vgpu_type*'
            foreach ($vf in '0000:41:00.4', '0000:41:00.5', '0000:41:00.6', '0000:41:00.7') { Get-VfType $h.Root $vf | Should -Be '0' }
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'clears the VFs it set when a later write fails (a VF whose current_vgpu_type cannot be written)' {
        $h = New-SriovHost
        try {
            $bad = Join-Path $h.Root 'sys/bus/pci/devices/0000:41:00.5/nvidia/current_vgpu_type'
            Remove-Item $bad
            $null = New-Item -ItemType Directory $bad
            $err = $null
            try { New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 'NVIDIA L40S-1Q' -Count 2 -ErrorAction Stop } catch { $err = $_ }
            $err | Should -Not -BeNullOrEmpty
            $err.Exception.Message | Should -BeLike '*The steps already made were undone (write 1160 to /sys/bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type): nothing was changed.'
            Get-VfType $h.Root 0000:41:00.4 | Should -Be '0'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'says VgpuSriovNotEnabled for a GPU whose VFs are not enabled, naming the cmdlet that enables them' {
        $h = New-SriovHost
        try {
            $err = $null
            try { New-VgpuDevice -Root $h.Root -Parent 0000:c1:00.0 -Type 'NVIDIA H100-10C' -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'VgpuSriovNotEnabled,GpuVirt.Commands.NewVgpuDeviceCommand'
            $err.Exception.Message | Should -BeLike '*sriov_numvfs is 0 of 32*Enable-VgpuSriov -Address 0000:c1:00.0*'
            { Get-VgpuType -Root $h.Root -Parent c1:00.0 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuSriovNotEnabled,GpuVirt.Commands.GetVgpuTypeCommand'
            $null = Get-GpuDevice -Root $h.Root | Get-VgpuType -Root $h.Root -WarningVariable w -WarningAction SilentlyContinue
            "$w" | Should -BeLike '*0000:c1:00.0*not enabled*'
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Add-GpuHostdev with an SR-IOV vGPU' {
    BeforeAll {
        $script:Libvirt = New-EmbeddedLibvirt
    }
    AfterAll { $script:Libvirt | Remove-EmbeddedLibvirt }

    It 'Get-VgpuDevice | Add-GpuHostdev attaches the VF with managed=''no'' (it stays on nvidia) and warns of no companion' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $null = New-VgpuDevice -Root $h.Root -Parent 0000:41:00.0 -Type 'NVIDIA L40S-8Q'
            $driver.WaitIdle()
            $vm = New-TestGuest $Libvirt
            $out = Get-VgpuDevice -Root $h.Root | Add-GpuHostdev -Domain $vm -Root $h.Root -Connect $Libvirt.Uri -WarningVariable w
            $w | Should -HaveCount 0
            $out.Address.ToString() | Should -Be '0000:41:00.4'
            $out.Managed | Should -BeFalse
            $xml = Get-InactiveXml $Libvirt $vm
            ([xml]$xml).domain.devices.hostdev.managed | Should -Be 'no'
            $null = Test-DomainXml $xml
            # A whole PCI function still attaches managed: the NIC of the same host.
            $nic = Add-GpuHostdev -Domain $vm -Address 00:19.0 -Root $h.Root -Connect $Libvirt.Uri
            $nic.Managed | Should -BeTrue
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }
}

Describe 'Enable-VgpuSriov' {
    It 'writes sriov_numvfs when NVIDIA''s sriov-manage is not installed, waits for the VFs, and the GPU then offers its types' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $pf = Enable-VgpuSriov -Root $h.Root -Address 0000:c1:00.0 -Count 4 -Verbose 4>&1 | Tee-Object -Variable all | Where-Object { $_ -is [GpuVirt.Core.PciDevice] }
            "$($all | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })" | Should -BeLike '*Writing 4 to /sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs*'
            $driver.Log | Should -Be @('enable 0000:c1:00.0 4')
            $pf.VirtualFunctions.Count | Should -Be 4
            (Get-VgpuType -Root $h.Root -Parent 0000:c1:00.0).Name | Should -Contain 'NVIDIA H100-10C'
            $vgpu = New-VgpuDevice -Root $h.Root -Parent 0000:c1:00.0 -Type 'NVIDIA H100-10C' -GuestOS Windows
            $vgpu.Address.ToString() | Should -Be '0000:c1:00.4'
            # Enabled already: returned as it is, nothing written.
            (Enable-VgpuSriov -Root $h.Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 4
            { Enable-VgpuSriov -Root $h.Root -Address c1:00.0 -Count 8 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuSriovAlreadyEnabled,GpuVirt.Commands.EnableVgpuSriovCommand'
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'runs NVIDIA''s sriov-manage -e (the PF) inside the root when it is installed (a stand-in, its argv checked); -WhatIf runs nothing' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            # sriov-manage cannot run here (no NVIDIA driver): the stand-in records its argv and enables the VFs as it would.
            $null = [GpuVirt.Fixtures.StandIns]::Install($h.Root, 'sriov-manage', 0, $null,
                'read n < /sys/bus/pci/devices/$2/sriov_totalvfs; echo $n > /sys/bus/pci/devices/$2/sriov_numvfs', '/usr/lib/nvidia')
            $text = Get-WhatIfText { Enable-VgpuSriov -Root $h.Root -Address c1:00.0 -WhatIf }
            $text | Should -BeLike '*run /usr/lib/nvidia/sriov-manage -e 0000:c1:00.0*'
            [GpuVirt.Fixtures.StandIns]::Calls($h.Root) | Should -HaveCount 0
            $pf = Enable-VgpuSriov -Root $h.Root -Address c1:00.0
            $calls = [GpuVirt.Fixtures.StandIns]::Calls($h.Root)
            $calls | Should -HaveCount 1
            $calls[0] | Should -Be @('sriov-manage', '-e', '0000:c1:00.0')
            $pf.VirtualFunctions.Count | Should -Be 32
            $driver.Log | Should -Be @('enable 0000:c1:00.0 32')
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'undoes the write and says so when no virtual function appears in time (no driver answering)' {
        $h = New-SriovHost
        try {
            $err = $null
            try { Enable-VgpuSriov -Root $h.Root -Address c1:00.0 -TimeoutSeconds 1 -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'VgpuSriovEnableFailed,GpuVirt.Commands.EnableVgpuSriovCommand'
            $err.Exception.Message | Should -BeLike '*did not finish within 1 s: no virtual function appeared.*The steps already made were undone (write 32 to /sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs): nothing was changed.'
            (Get-Content -Raw (Join-Path $h.Root 'sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs')).Trim() | Should -Be '0'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'refuses what is not an NVIDIA SR-IOV physical function, changing nothing' {
        $h = New-SriovHost -H100VfsEnabled
        try {
            { Enable-VgpuSriov -Root $h.Root -Address 00:19.0 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuSriovNotSupported,GpuVirt.Commands.EnableVgpuSriovCommand'
            { Enable-VgpuSriov -Root $h.Root -Address 41:00.5 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuSriovNotSupported,GpuVirt.Commands.EnableVgpuSriovCommand' -ExpectedMessage '*virtual function of 0000:41:00.0*'
            { Enable-VgpuSriov -Root $h.Root -Address c1:00.0 -Count 33 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuSriovNotSupported,GpuVirt.Commands.EnableVgpuSriovCommand' -ExpectedMessage '*at most 32*'
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Enable-VgpuSriov -Connect' {
    BeforeAll {
        $script:Libvirt = New-EmbeddedLibvirt
    }
    AfterAll { $script:Libvirt | Remove-EmbeddedLibvirt }

    It 'journals the connection, and the undo reads that connection''s guests: a guest with a virtual function refuses it by name, -Force goes on' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $pf = Enable-VgpuSriov -Root $h.Root -Address c1:00.0 -Count 4 -Connect $Libvirt.Uri
            $vf = "$(@($pf.VirtualFunctions)[0])"
            (Get-GpuVirtChange -Root $h.Root -Id 1).Connect | Should -Be $Libvirt.Uri

            $vm = New-TestGuest $Libvirt
            $match = [regex]::Match($vf, '^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$')
            $match.Success | Should -BeTrue -Because "$vf is a PCI address"
            $parts = $match.Groups
            $hostdevXml = Join-Path $Libvirt.Directory "$vm-vf.xml"
            Set-Content -LiteralPath $hostdevXml -Value "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x$($parts[1].Value)' bus='0x$($parts[2].Value)' slot='0x$($parts[3].Value)' function='0x$($parts[4].Value)'/></source></hostdev>"
            $null = Invoke-Virsh $Libvirt attach-device $vm $hostdevXml --config

            { Undo-GpuVirtChange -Id 1 -Root $h.Root -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'DeviceReferencedByGuest,GpuVirt.Commands.UndoGpuVirtChangeCommand' -ExpectedMessage "*guest '$vm'*"
            (Get-PciDevice -Root $h.Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 4
            (Get-GpuVirtChange -Root $h.Root -Id 1).Undone | Should -BeFalse

            $null = Undo-GpuVirtChange -Id 1 -Root $h.Root -Force -Confirm:$false -WarningAction SilentlyContinue
            (Get-PciDevice -Root $h.Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 0
            (Get-GpuVirtChange -Root $h.Root -Id 1).Undone | Should -BeTrue
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }
}

Describe 'Undo-GpuVirtChange of Enable-VgpuSriov' {
    BeforeEach {
        $script:H = New-SriovHost
        $script:Driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($H)
        $script:Root = $H.Root
        $script:NumVfs = Join-Path $Root 'sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs'
        $null = Enable-VgpuSriov -Root $Root -Address c1:00.0 -Count 4
    }
    AfterEach {
        $script:Driver.Dispose()
        $script:H | Remove-FixtureHost
    }

    It 'journals the enable with its inverse; -WhatIf shows the planner''s writes; the undo disables the functions and is journaled' {
        $record = Get-GpuVirtChange -Root $Root
        $record.Command | Should -Be 'Enable-VgpuSriov'
        $record.Target | Should -Be '0000:c1:00.0'
        $record.Action | Should -Be 'Enable 4 SR-IOV virtual functions'
        $record.UndoSteps | Should -Be 'disable the virtual functions of 0000:c1:00.0 (write 0 to /sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs)'
        $record.Changes | Should -Be 'virtual functions of 0000:c1:00.0 (sriov_numvfs): 0 -> 4'
        (Get-JournalRecord $Root 1).Inverse[0].ExpectedVirtualFunctions | Should -Be 4

        $text = Get-WhatIfText { Undo-GpuVirtChange -Id 1 -Root $Root -WhatIf }
        $text | Should -Match '(?s)Undo change 1 \(Enable-VgpuSriov.*\n\s+write 0 to /sys/bus/pci/devices/0000:c1:00\.0/sriov_numvfs\n\s+wait \(up to 30 s\) for the virtual functions to go'
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 4

        $undo = Undo-GpuVirtChange -Id 1 -Root $Root -Confirm:$false
        $undo.Undoes | Should -Be 1
        $undo.Changes | Should -Be 'virtual functions of 0000:c1:00.0 (sriov_numvfs): 4 -> 0'
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 0
        (Get-Content -Raw $NumVfs).Trim() | Should -Be '0'
        $Driver.Log | Should -Be @('enable 0000:c1:00.0 4', 'disable 0000:c1:00.0')
        (Get-GpuVirtChange -Root $Root -Id 1).Undone | Should -BeTrue
    }

    It 'undoes sriov-manage -e with sriov-manage -d (a stand-in, its argv checked)' {
        $null = [GpuVirt.Fixtures.StandIns]::Install($Root, 'sriov-manage', 0, $null,
            'if [ "$1" = -e ]; then read n < /sys/bus/pci/devices/$2/sriov_totalvfs; else n=0; fi; echo $n > /sys/bus/pci/devices/$2/sriov_numvfs', '/usr/lib/nvidia')
        $null = Enable-VgpuSriov -Root $Root -Address 41:00.0 -ErrorAction SilentlyContinue
        # The L40S has its four functions already: nothing done, nothing journaled.
        @(Get-GpuVirtChange -Root $Root).Count | Should -Be 1
        $null = Undo-GpuVirtChange -Id 1 -Root $Root -Confirm:$false
        $null = Enable-VgpuSriov -Root $Root -Address c1:00.0
        $record = Get-GpuVirtChange -Root $Root -Last 1
        $record.UndoSteps | Should -Be 'disable the virtual functions of 0000:c1:00.0 (/usr/lib/nvidia/sriov-manage -d 0000:c1:00.0)'
        $text = Get-WhatIfText { $record | Undo-GpuVirtChange -WhatIf }
        $text | Should -BeLike '*run /usr/lib/nvidia/sriov-manage -d 0000:c1:00.0*'
        $null = $record | Undo-GpuVirtChange -Confirm:$false
        $calls = @([GpuVirt.Fixtures.StandIns]::Calls($Root) | ForEach-Object { $_ -join ' ' })
        $calls | Should -Be @('sriov-manage -e 0000:c1:00.0', 'sriov-manage -d 0000:c1:00.0')
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 0
    }

    It 'refuses, naming it, a count changed by hand since; -Force disables the functions anyway' {
        Set-Content -Path $NumVfs -Value 0
        $Driver.WaitIdle()
        Set-Content -Path $NumVfs -Value 8
        $Driver.WaitIdle()
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 8
        $err = $null
        $out = Undo-GpuVirtChange -Id 1 -Root $Root -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'JournalTargetChanged,GpuVirt.Commands.UndoGpuVirtChangeCommand'
        $err[0].Exception.Message | Should -BeLike 'Change 1 (Enable-VgpuSriov, 0000:c1:00.0) is not undone: 0000:c1:00.0 has 8 virtual functions now, not 4 as the change left it (sriov_numvfs was changed since)*-Force*'
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 8

        $done = Undo-GpuVirtChange -Id 1 -Root $Root -Force -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        "$w" | Should -BeLike '*has 8 virtual functions now*-Force undoes it anyway.*'
        $done.Changes | Should -Be 'virtual functions of 0000:c1:00.0 (sriov_numvfs): 8 -> 0'
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 0
    }

    It 'refuses while a function carries a vGPU, -Force too (it would destroy it), and goes once the vGPU is removed' {
        $vgpu = New-VgpuDevice -Root $Root -Parent c1:00.0 -Type 'NVIDIA H100-10C' -GuestOS Windows
        $Driver.WaitIdle()
        $text = Get-WhatIfText { Undo-GpuVirtChange -Id 1 -Root $Root -WhatIf }
        $text | Should -BeLike '*write 0 to /sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs*'
        foreach ($force in $false, $true) {
            $err = $null
            $null = Undo-GpuVirtChange -Id 1 -Root $Root -Force:$force -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -Be 'VgpuParentInUse,GpuVirt.Commands.UndoGpuVirtChangeCommand'
            $err[0].Exception.Message | Should -BeLike "Change 1 (Enable-VgpuSriov, 0000:c1:00.0) is not undone: 0000:c1:00.0 has live vGPUs: virtual function 0000:c1:00.4 (vGPU type*). Disabling its virtual functions would destroy them.*"
            (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 4
            Get-VfType $Root 0000:c1:00.4 | Should -Not -Be '0'
        }
        $vgpu | Remove-VgpuDevice -Root $Root -Confirm:$false
        $Driver.WaitIdle()
        $null = Undo-GpuVirtChange -Id 1 -Root $Root -Confirm:$false
        (Get-PciDevice -Root $Root -Address c1:00.0).VirtualFunctions.Count | Should -Be 0
    }
}

Describe 'SR-IOV vGPUs that survive a reboot (New-VgpuDevice -Persistent on a VF)' {
    It 'records PF, VF and type in /etc/gpuvirt/vgpu-profiles.conf and installs an enabled unit that the real systemd-analyze verify accepts' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $text = Get-WhatIfText { New-VgpuDevice -Root $h.Root -Parent 41:00.0 -Type 'NVIDIA L40S-24Q' -Persistent -WhatIf }
            $text | Should -BeLike '*add to /etc/gpuvirt/vgpu-profiles.conf*write /usr/libexec/gpuvirt/vgpu-restore and /etc/systemd/system/gpuvirt-vgpu.service*'
            Test-Path (Join-Path $h.Root 'etc/gpuvirt') | Should -BeFalse

            $made = New-VgpuDevice -Root $h.Root -Parent 41:00.0 -Type 'NVIDIA L40S-24Q' -Persistent
            $made.Persistent | Should -BeTrue
            $made.DefinitionPath | Should -Be '/etc/gpuvirt/vgpu-profiles.conf'
            @(Get-Content (Join-Path $h.Root 'etc/gpuvirt/vgpu-profiles.conf') | Where-Object { $_ -notlike '#*' }) | Should -Be @('0000:41:00.0 0000:41:00.4 1168 NVIDIA L40S-24Q')
            $unit = Get-Content -Raw (Join-Path $h.Root 'etc/systemd/system/gpuvirt-vgpu.service')
            $unit | Should -BeLike '*After=*nvidia-vgpu-mgr.service nvidia-sriov.service*'
            $unit | Should -BeLike '*ExecStart=/usr/libexec/gpuvirt/vgpu-restore /etc/gpuvirt/vgpu-profiles.conf*'

            # The real systemctl, offline on the tree, sees the unit enabled.
            (& systemctl "--root=$($h.Root)" is-enabled gpuvirt-vgpu.service) | Should -Be 'enabled'
            # The real systemd-analyze verify, with the tree's script where the unit names it (a private mount namespace).
            $out = & unshare -m --propagation private sh -c "mount --bind '$($h.Root)/usr/libexec' /usr/libexec && systemd-analyze verify '$($h.Root)/etc/systemd/system/gpuvirt-vgpu.service'" 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
            "$out" | Should -BeNullOrEmpty
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'brings the VF types back on a fresh host: what the unit runs, run in the new tree, enables the H100''s VFs and sets every type' {
        $before = New-SriovHost -H100VfsEnabled
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($before)
        $after = New-SriovHost
        $driver2 = $null
        try {
            $null = New-VgpuDevice -Root $before.Root -Parent 41:00.0 -Type 'NVIDIA L40S-24Q' -Count 2 -Persistent
            $null = New-VgpuDevice -Root $before.Root -Parent c1:00.0 -Type 'NVIDIA H100-20C' -Persistent -GuestOS Windows
            # The reboot: a fresh tree (no type set, the H100's VFs gone) with the same /etc and /usr/libexec.
            foreach ($dir in 'etc/gpuvirt', 'etc/systemd', 'usr/libexec/gpuvirt') {
                $null = New-Item -ItemType Directory -Force (Split-Path (Join-Path $after.Root $dir))
                & cp -a (Join-Path $before.Root $dir) (Join-Path $after.Root $dir)   # keeps the enabling link as the link it is
            }
            [GpuVirt.Fixtures.StandIns]::InstallShell($after.Root, 'sleep')
            $driver2 = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($after)
            (Get-VgpuDevice -Root $after.Root).Active | Should -Be @($false, $false, $false) -Because 'recorded, not set yet'

            $exec = (Get-Content (Join-Path $after.Root 'etc/systemd/system/gpuvirt-vgpu.service') | Where-Object { $_ -like 'ExecStart=*' }).Substring(10) -split ' '
            $out = & chroot $after.Root @exec 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
            $driver2.WaitIdle()
            $out | Should -Contain 'gpuvirt: enabling 32 virtual functions of 0000:c1:00.0'
            $out | Should -Contain 'gpuvirt: 0000:41:00.4 set to type 1168 NVIDIA L40S-24Q'
            Get-VfType $after.Root 0000:41:00.4 | Should -Be '1168'
            Get-VfType $after.Root 0000:41:00.5 | Should -Be '1168'
            Get-VfType $after.Root 0000:c1:00.4 | Should -Be '1304'
            # The stand-in driver notices writes by polling, so writes to different VFs may be logged in either
            # order; what must hold is every write once, and the H100's VFs enabled before one of them is set.
            $driver2.Log | Sort-Object | Should -Be @('enable 0000:c1:00.0 32', 'set 0000:41:00.4 1168', 'set 0000:41:00.5 1168', 'set 0000:c1:00.4 1304')
            $driver2.Log.IndexOf('enable 0000:c1:00.0 32') | Should -BeLessThan $driver2.Log.IndexOf('set 0000:c1:00.4 1304')
            $back = Get-VgpuDevice -Root $after.Root
            $back.Active | Should -Be @($true, $true, $true)
            $back.Persistent | Should -Be @($true, $true, $true)
            # Run again (a restart of the unit): nothing changes and it still succeeds.
            $again = & chroot $after.Root @exec 2>&1
            $LASTEXITCODE | Should -Be 0
            $again | Should -Contain 'gpuvirt: 0000:c1:00.4 already has type 1304'

            # Remove-VgpuDevice -Persistent takes them out; with the last one the unit goes too.
            Get-VgpuDevice -Root $after.Root | Remove-VgpuDevice -Root $after.Root -Persistent -Confirm:$false
            Get-VfType $after.Root 0000:41:00.4 | Should -Be '0'
            Test-Path (Join-Path $after.Root 'etc/gpuvirt/vgpu-profiles.conf') | Should -BeFalse
            Test-Path (Join-Path $after.Root 'etc/systemd/system/gpuvirt-vgpu.service') | Should -BeFalse
            Test-Path (Join-Path $after.Root 'etc/systemd/system/multi-user.target.wants/gpuvirt-vgpu.service') | Should -BeFalse
        }
        finally {
            $driver.Dispose(); if ($driver2) { $driver2.Dispose() }
            $before | Remove-FixtureHost; $after | Remove-FixtureHost
        }
    }
}

Describe 'Find-VgpuPlacement' {
    It 'bounds an idle SR-IOV GPU by its framebuffer, fills one GPU first, and pipes into New-VgpuDevice' {
        $h = New-SriovHost
        $driver = [GpuVirt.Fixtures.SriovVgpuDriverStandIn]::ForSample($h)
        try {
            $p = Find-VgpuPlacement -Root $h.Root -Type 'NVIDIA L40S-24Q' -Count 2
            $p | Should -HaveCount 1
            $p.Parent | Should -Be '0000:41:00.0'
            $p.Type | Should -Be '1168'
            $p.Count | Should -Be 2
            $p.Available | Should -Be 2 -Because '48 GB hold two 24 GB vGPUs though four VFs list the type'
            ($p.VirtualFunctions | ForEach-Object ToString) | Should -Be @('0000:41:00.4', '0000:41:00.5')
            $table = $p | Format-Table | Out-String -Width 250
            $table | Should -BeLike '*0000:41:00.0*1168*NVIDIA L40S-24Q*2*2*SR-IOV*framebuffer*'
            { Find-VgpuPlacement -Root $h.Root -Type 'NVIDIA L40S-24Q' -Count 3 -ErrorAction Stop } |
                Should -Throw -ErrorId 'VgpuPlacementNotFound,GpuVirt.Commands.FindVgpuPlacementCommand' -ExpectedMessage '*3 vGPUs of type*2 can be made now*0000:41:00.0: 2 (*'

            $made = $p | New-VgpuDevice -Root $h.Root
            $driver.WaitIdle()
            ($made | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:41:00.4', '0000:41:00.5')
            $err = $null
            try { Find-VgpuPlacement -Root $h.Root -Type 'NVIDIA L40S-4Q' -ErrorAction Stop } catch { $err = $_ }
            $err.Exception.Message | Should -BeLike '*0000:41:00.0: 0 (The GPU 0000:41:00.0 runs vGPU type 1168 (NVIDIA L40S-24Q)*exclude each other*'
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'places over mdev pools: the Tesla P4''s available_instances, several GPUs, -Spread one per GPU' {
        $h = New-FixtureHost -Name Seed -Configure {
            param($b)
            # A second Tesla P4 behind the other root port, the same nine types.
            $p4 = $b.Add('0000:03:00.0', 0x10de, 0x1bb3, 0x030200, { param($d) $d.Parent = '0000:00:01.0'; $d.IommuGroup = 15; $d.Driver = 'nvidia' })
            foreach ($t in [GpuVirt.Fixtures.SampleHosts]::TeslaP4Types) {
                $ft = [GpuVirt.Fixtures.FixtureMdevType]::new($t.Item1, $t.Item3)
                $ft.Name = $t.Item2
                $p4.MdevTypes.Add($ft)
            }
        }
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $p = Find-VgpuPlacement -Root $h.Root -Type 'GRID P4-2Q' -Count 6
            ($p | ForEach-Object { "$($_.Parent)=$($_.Count)" }) | Should -Be @('0000:01:00.0=4', '0000:03:00.0=2')
            $spread = Find-VgpuPlacement -Root $h.Root -Type nvidia-64 -Count 2 -Spread
            ($spread | ForEach-Object { "$($_.Parent)=$($_.Count)" }) | Should -Be @('0000:01:00.0=1', '0000:03:00.0=1')
            $made = $spread | New-VgpuDevice -Root $h.Root
            @($made).Count | Should -Be 2
            # The GPU that runs the type now comes first.
            (Find-VgpuPlacement -Root $h.Root -Type nvidia-64 -Count 1).Reason | Should -BeLike 'runs this type already;*'
            { Find-VgpuPlacement -Root $h.Root -Type 'GRID P4-8Q' -Count 3 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuPlacementNotFound,GpuVirt.Commands.FindVgpuPlacementCommand'
            { Find-VgpuPlacement -Root $h.Root -Type 'NVIDIA L40S-1Q' -ErrorAction Stop } | Should -Throw -ExpectedMessage '*no GPU of this host offers it*'
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }
}
