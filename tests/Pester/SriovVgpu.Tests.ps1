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
            $err.Exception.Message | Should -BeLike '*Undone: 0000:41:00.4 cleared again.'
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
