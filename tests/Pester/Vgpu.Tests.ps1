BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'

    function New-VgpuHost([switch] $Gvt, [scriptblock] $Configure) {
        New-FixtureHost -Name Seed -Configure {
            param($b)
            if ($Gvt) { $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b) }
            if ($Configure) { & $Configure $b }
        }
    }

    function Start-ChildPwsh([string] $Script, [string[]] $Arguments) {
        # A second process running the laid-out module, as a second user's session would.
        $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        $psi.WorkingDirectory = $Repo
        foreach ($a in @('pwsh', '-NoProfile', '-NonInteractive', '-File', $Script) + $Arguments) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        [System.Diagnostics.Process]::Start($psi)
    }

    function New-StandInSystemctl([string] $Answer, [int] $ExitCode) {
        # systemctl cannot run here (no systemd as PID 1): a stand-in that records its argv and answers as told.
        $dir = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-systemctl-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $dir
        Set-Content -Path (Join-Path $dir 'systemctl') -Value "#!/bin/sh`nprintf '%s\n' `"`$@`" > '$dir/argv'`necho $Answer`nexit $ExitCode`n"
        & chmod +x (Join-Path $dir 'systemctl')
        $dir
    }
}

Describe 'Get-VgpuType' {
    BeforeAll { $script:H = New-VgpuHost -Gvt }
    AfterAll { $H | Remove-FixtureHost }

    It "pipes from Get-GpuDevice: the seed's Tesla P4 types with the names and counts virsh nodedev-dumpxml shows" {
        $types = Get-GpuDevice -Root $H.Root -Address 01:00.0 | Get-VgpuType -Root $H.Root
        $types | Should -HaveCount 9
        $types[0] | Should -BeOfType ([GpuVirt.Core.Vgpu.VgpuType])
        $expected = @{ 'nvidia-70' = 'GRID P4-8A', 1; 'nvidia-69' = 'GRID P4-4A', 2; 'nvidia-67' = 'GRID P4-1A', 8; 'nvidia-65' = 'GRID P4-4Q', 2; 'nvidia-63' = 'GRID P4-1Q', 8
            'nvidia-71' = 'GRID P4-1B', 8; 'nvidia-68' = 'GRID P4-2A', 4; 'nvidia-66' = 'GRID P4-8Q', 1; 'nvidia-64' = 'GRID P4-2Q', 4 }
        foreach ($t in $types) {
            $t.Name | Should -Be $expected[$t.Id][0]
            $t.AvailableInstances | Should -Be $expected[$t.Id][1]
            $t.DeviceApi | Should -Be 'vfio-pci'
            $t.Parent | Should -Be '0000:01:00.0'
        }
        $q = $types | Where-Object Id -eq 'nvidia-64'
        $q.Framebuffer | Should -Be '2048M'
        $q.MaxResolution | Should -Be '7680x4320'
        $q.MaxInstance | Should -Be 4
        $q.Series | Should -Be 'Q'
    }

    It 'passes over piped GPUs without vGPU types but names an explicit one as VgpuParentNotFound' {
        (Get-GpuDevice -Root $H.Root | Get-VgpuType -Root $H.Root -ErrorAction Stop).Count | Should -Be 11
        { Get-VgpuType -Root $H.Root -Parent 02:00.0 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuParentNotFound,GpuVirt.Commands.GetVgpuTypeCommand'
    }

    It 'reads Intel GVT-g types with their multi-line descriptions' {
        $gvt = Get-VgpuType -Root $H.Root -Parent 00:02.0
        $gvt.Id | Should -Be @('i915-GVTg_V5_4', 'i915-GVTg_V5_8')
        $gvt[0].Name | Should -BeNullOrEmpty
        $gvt[0].Description | Should -Be "low_gm_size: 128MB`nhigh_gm_size: 512MB`nfence: 4`nresolution: 1920x1200`nweight: 4"
        $gvt[0].Properties['weight'] | Should -Be '4'
        $gvt[1].MaxResolution | Should -Be '1024x768'
    }

    It 'reports a type name or id given exactly that matches nothing as VgpuTypeNotFound, a wildcard that matches nothing quietly' {
        { Get-VgpuType -Root $H.Root -Name nosuch -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuTypeNotFound,GpuVirt.Commands.GetVgpuTypeCommand'
        $e = @(); $t = Get-VgpuType -Root $H.Root -Name 'GRID P4-1Q', nosuch -ErrorVariable e -ErrorAction SilentlyContinue
        $t.Id | Should -Be 'nvidia-63'
        $e.Count | Should -Be 1
        $e[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e[0].Exception.Message | Should -Match "'nosuch'"
        $e = @(); Get-VgpuType -Root $H.Root -Name 'nosuch*' -ErrorVariable e | Should -BeNullOrEmpty; $e | Should -BeNullOrEmpty
    }

    It 'filters by name or id with wildcards and to types with free instances' {
        (Get-VgpuType -Root $H.Root -Name 'GRID P4-1Q').Id | Should -Be 'nvidia-63'
        (Get-VgpuType -Root $H.Root -Name '*-2?').Id | Should -Be @('nvidia-64', 'nvidia-68')
        (Get-VgpuType -Root $H.Root -Name 'i915-*').Count | Should -Be 2
        Set-Content (Join-Path $H.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-66/available_instances') '0'
        (Get-VgpuType -Root $H.Root -Parent 01:00.0 -Available).Id | Should -Not -Contain 'nvidia-66'
        (Get-VgpuType -Root $H.Root -Parent 01:00.0 -Available).Count | Should -Be 8
    }

    It 'sums SR-IOV vGPU types over the free virtual functions, once even when the functions are piped too' {
        $two = New-FixtureHost -Name TwoSocket
        try {
            $types = Get-GpuDevice -Root $two.Root | Get-VgpuType -Root $two.Root
            $types.Id | Should -Be @('557', '558', '563')
            $types.Name | Should -Be @('NVIDIA A40-1Q', 'NVIDIA A40-2Q', 'NVIDIA A40-48Q')
            $types.AvailableInstances | Should -Be @(4, 4, 4)
            $types[0].Kind | Should -Be 'SriovVf'
            (Get-VgpuType -Root $two.Root -Parent 0000:01:00.6).AvailableInstances | Should -Be @(1, 1, 1)
        }
        finally { $two | Remove-FixtureHost }
    }

    It 'shows a table that reads like the mdev_types of virsh nodedev-dumpxml' {
        $text = Get-VgpuType -Root $H.Root -Name 'GRID P4-1Q' | Out-String -Width 200
        $text | Should -Match '0000:01:00\.0\s+nvidia-63\s+GRID P4-1Q\s+8\s+1024M\s+4\s+5120x2880\s+mdev'
    }
}

Describe 'New-VgpuDevice' {
    It 'makes the seed''s nvidia-63 device from the pipeline and returns an object that binds by Uuid (stand-in mdev driver)' {
        $h = New-VgpuHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $device = Get-GpuDevice -Root $h.Root | Get-VgpuType -Root $h.Root -Name 'GRID P4-1Q' | New-VgpuDevice -Root $h.Root -Uuid $Uuid
            $device | Should -BeOfType ([GpuVirt.Core.Vgpu.VgpuDevice])
            $device.Uuid | Should -Be $Uuid
            $device.Parent | Should -Be '0000:01:00.0'
            $device.TypeId | Should -Be 'nvidia-63'
            $device.Active | Should -BeTrue
            $driver.Log | Should -Be @("create nvidia-63 $Uuid")
            function Receive-Hostdev { param([Parameter(Mandatory, ValueFromPipelineByPropertyName)] [string] $Uuid) process { $Uuid } }
            $device | Receive-Hostdev | Should -Be $Uuid
            (Get-VgpuType -Root $h.Root -Name 'GRID P4-1Q').AvailableInstances | Should -Be 7
            $more = New-VgpuDevice -Root $h.Root -Parent 01:00.0 -Type 'GRID P4-1Q' -Count 2
            $more | Should -HaveCount 2
            $more.Uuid | ForEach-Object { [guid]::Parse($_) } | Should -Not -BeNullOrEmpty
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'writes the UUID to create and, when no device appears, says so and defines nothing' {
        $h = New-VgpuHost
        try {
            { New-VgpuDevice -Root $h.Root -Parent 0000:01:00.0 -Type nvidia-64 -Uuid $Uuid -Persistent -ErrorAction Stop } |
                Should -Throw -ErrorId 'VgpuDeviceNotCreated,GpuVirt.Commands.NewVgpuDeviceCommand'
            Get-Content -Raw (Join-Path $h.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-64/create') | Should -Be "$Uuid`n"
            Join-Path $h.Root 'etc/mdevctl.d' | Should -Not -Exist
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'checks available_instances first: NoVgpuInstanceAvailable with the numbers, nothing written' {
        $h = New-VgpuHost -Configure { param($b) $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($Uuid, '0000:01:00.0', 'nvidia-66', 30)) }
        try {
            Set-Content (Join-Path $h.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-66/available_instances') '0'
            $err = { New-VgpuDevice -Root $h.Root 01:00.0 'GRID P4-8Q' -ErrorAction Stop } | Should -Throw -ErrorId 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand' -PassThru
            $err.Exception.Message | Should -BeLike "*available_instances is 0 of 1 (max_instance); 1 device(s) of this type exist: $Uuid*"
            $err.CategoryInfo.Category | Should -Be 'ResourceUnavailable'
            Get-Content -Raw (Join-Path $h.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-66/create') | Should -BeNullOrEmpty
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'turns the kernel''s ENOSPC into NoVgpuInstanceAvailable (create answered by /dev/full)' {
        $h = New-VgpuHost
        try {
            $create = Join-Path $h.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-65/create'
            Remove-Item $create; $null = New-Item -ItemType SymbolicLink -Path $create -Target '/dev/full'
            $err = { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-65 -ErrorAction Stop } | Should -Throw -ErrorId 'NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand' -PassThru
            $err.Exception.Message | Should -BeLike "*the kernel answered 'No space left on device' (errno 28)*"
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'rejects bad input clearly and writes nothing: an unknown type, a malformed UUID, -Uuid with -Count' {
        $h = New-VgpuHost
        try {
            $err = { New-VgpuDevice -Root $h.Root 01:00.0 'GRID P4-3Q' -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuTypeNotFound,GpuVirt.Commands.NewVgpuDeviceCommand' -PassThru
            $err.Exception.Message | Should -BeLike '*nvidia-63 (GRID P4-1Q)*'
            { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid 'not-a-uuid' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidMdevUuid,GpuVirt.Commands.NewVgpuDeviceCommand'
            { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -Count 2 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuUuidNotApplicable,GpuVirt.Commands.NewVgpuDeviceCommand'
            { New-VgpuDevice -Root $h.Root 02:00.0 nvidia-63 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuParentNotFound,GpuVirt.Commands.NewVgpuDeviceCommand'
            Get-ChildItem (Join-Path $h.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/*/create') | Get-Content | Should -BeNullOrEmpty
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'warns that Linux guests take only Q-series types, unless the guest runs Windows; -WhatIf writes nothing' {
        $h = New-VgpuHost
        try {
            $null = New-VgpuDevice -Root $h.Root 01:00.0 'GRID P4-2A' -GuestOS Linux -WhatIf -WarningVariable w -WarningAction SilentlyContinue
            $w | Should -HaveCount 1
            "$($w[0])" | Should -BeLike "*'GRID P4-2A' is a vGPU type of the A series. Linux guests support only Q-series types*"
            $null = New-VgpuDevice -Root $h.Root 01:00.0 'GRID P4-2A' -GuestOS Windows -WhatIf -WarningVariable w2
            $w2 | Should -HaveCount 0
            $null = New-VgpuDevice -Root $h.Root 01:00.0 'GRID P4-2Q' -WhatIf -WarningVariable w3
            $w3 | Should -HaveCount 0
            Get-Content -Raw (Join-Path $h.Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-68/create') | Should -BeNullOrEmpty
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'completes type names (quoted) and ids of the typed parent' {
        $h = New-VgpuHost
        try {
            $line = "New-VgpuDevice -Root $($h.Root) -Parent 01:00.0 -Type 'GRID P4-1"
            $names = [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches.CompletionText
            $names | Should -Be @("'GRID P4-1Q'", "'GRID P4-1A'", "'GRID P4-1B'")
            $line = "New-VgpuDevice -Root $($h.Root) -Parent 01:00.0 -Type nvidia-6"
            ([System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches.CompletionText).Count | Should -Be 7
            $line = "Get-VgpuType -Root $($h.Root) -Parent "
            [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches.CompletionText | Should -Be '0000:01:00.0'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'sets an SR-IOV vGPU type on a free virtual function and returns it by Address' {
        $two = New-FixtureHost -Name TwoSocket
        try {
            $vgpu = Get-GpuDevice -Root $two.Root -Address 01:00.0 | Get-VgpuType -Root $two.Root -Name 'NVIDIA A40-2Q' | New-VgpuDevice -Root $two.Root
            $vgpu.Address.ToString() | Should -Be '0000:01:00.4'
            $vgpu.Uuid | Should -BeNullOrEmpty
            $vgpu.TypeId | Should -Be '558'
            Get-Content -Raw (Join-Path $two.Root 'sys/bus/pci/devices/0000:01:00.4/nvidia/current_vgpu_type') | Should -Be "558`n"
            $kept = Get-VgpuType -Root $two.Root -Name 'NVIDIA A40-2Q' | New-VgpuDevice -Root $two.Root -Persistent
            $kept.Address.ToString() | Should -Be '0000:01:00.5'
            $kept.Persistent | Should -BeTrue
            # Flat for ConvertTo-Json: the function's address is text, as the kernel writes it.
            ($kept | ConvertTo-Json -WarningAction Stop) | Should -Match '"Address": "0000:01:00.5"'
            # A device is named by one of Uuid (mdev) or Address (SR-IOV); neither or both is a clear error that removes nothing.
            $err = $null
            Remove-VgpuDevice -Root $two.Root -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'VgpuDeviceNotSpecified,*'
            Remove-VgpuDevice -Root $two.Root -Uuid $Uuid -Address 01:00.4 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'VgpuDeviceAmbiguous,*'
            Remove-VgpuDevice -Root $two.Root -Address 01:00.x -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
            $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPciAddress,*'
            @(Get-VgpuDevice -Root $two.Root).Count | Should -Be 2
            Get-VgpuDevice -Root $two.Root | Remove-VgpuDevice -Root $two.Root -Confirm:$false
            Get-Content -Raw (Join-Path $two.Root 'sys/bus/pci/devices/0000:01:00.4/nvidia/current_vgpu_type') | Should -Be "0`n"
            $left = Get-VgpuDevice -Root $two.Root
            $left.Address.ToString() | Should -Be '0000:01:00.5' -Because 'its boot profile stays without -Persistent'
            $left.Active | Should -BeFalse
            $left | Remove-VgpuDevice -Root $two.Root -Persistent -Confirm:$false
            Get-VgpuDevice -Root $two.Root | Should -BeNullOrEmpty
        }
        finally { $two | Remove-FixtureHost }
    }

    It 'two processes racing for the last free instance: one device, one clear refusal, nothing half-made (stand-in mdev driver)' {
        $h = New-VgpuHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        $script = Join-Path $h.Root 'racer.ps1'
        Set-Content $script @'
param($Module, $Root, $Out)
Import-Module $Module
try { $d = New-VgpuDevice -Root $Root -Parent 01:00.0 -Type 'GRID P4-8Q' -Persistent -ErrorAction Stop; "ok $($d.Uuid)" | Set-Content $Out }
catch { "error $($_.FullyQualifiedErrorId)" | Set-Content $Out }
'@
        # The test holds the module's lock first, so both commands must queue on it; /proc/locks shows when they do.
        $lock = [GpuVirt.Fixtures.FixtureLock]::Hold($h.Root)
        try {
            $racers = 1, 2 | ForEach-Object { Start-ChildPwsh $script @($env:GPUVIRT_MODULE, $h.Root, (Join-Path $h.Root "out$_.txt")) }
            $lock.WaitForWaiters(2, [TimeSpan]::FromMinutes(2)) | Should -BeTrue -Because 'both commands wait for the lock'
            $lock.Dispose()
            foreach ($p in $racers) { $p.WaitForExit(); $p.ExitCode | Should -Be 0 -Because $p.StandardError.ReadToEnd() }
            $results = 1, 2 | ForEach-Object { Get-Content (Join-Path $h.Root "out$_.txt") }
            @($results | Where-Object { $_ -like 'ok *' }) | Should -HaveCount 1
            @($results | Where-Object { $_ -eq 'error NoVgpuInstanceAvailable,GpuVirt.Commands.NewVgpuDeviceCommand' }) | Should -HaveCount 1
            $driver.Log | Should -HaveCount 1
            @(Get-ChildItem (Join-Path $h.Root 'sys/bus/mdev/devices')) | Should -HaveCount 1
            @(Get-ChildItem (Join-Path $h.Root 'etc/mdevctl.d/0000:01:00.0')) | Should -HaveCount 1
            (Get-VgpuDevice -Root $h.Root).Uuid | Should -Be (($results | Where-Object { $_ -like 'ok *' }) -replace '^ok ')
        }
        finally { $lock.Dispose(); $driver.Dispose(); $h | Remove-FixtureHost }
    }
}

Describe 'Persistence' {
    It 'writes mdevctl''s JSON to /etc/mdevctl.d/<parent>/<uuid>, read back by its shape (stand-in mdev driver)' {
        $h = New-VgpuHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $d = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -Persistent
            $d.Persistent | Should -BeTrue
            $d.DefinitionPath | Should -Be "/etc/mdevctl.d/0000:01:00.0/$Uuid"
            $json = Get-Content -Raw (Join-Path $h.Root "etc/mdevctl.d/0000:01:00.0/$Uuid") | ConvertFrom-Json
            $json.mdev_type | Should -Be 'nvidia-63'
            $json.start | Should -Be 'auto'
            @($json.attrs) | Should -HaveCount 0
            @($json.PSObject.Properties.Name) | Should -Be @('mdev_type', 'start', 'attrs')
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'is the same file the real mdevctl writes, and each reads the other''s definitions (mdevctl in a private mount namespace)' {
        $h = New-VgpuHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $etc = Join-Path $h.Root 'etc/mdevctl.d'
            $null = New-Item -ItemType Directory -Force (Join-Path $etc 'scripts.d/callouts'), (Join-Path $etc 'scripts.d/notifiers')
            $null = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -Persistent
            $other = 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a'
            $listed = & unshare -m --propagation private sh -c "mount --bind '$etc' /etc/mdevctl.d && mdevctl list --defined --dumpjson && mdevctl define -u $other -p 0000:01:00.0 -t nvidia-64 --auto && mdevctl define -u 11111111-2222-3333-4444-555555555555 -p 0000:01:00.0 -t nvidia-64 --auto"
            $LASTEXITCODE | Should -Be 0
            ($listed -join "`n" | ConvertFrom-Json)[0].'0000:01:00.0'[0].$Uuid.mdev_type | Should -Be 'nvidia-63'
            # Byte for byte: what mdevctl wrote for the same kind of definition is what this module writes.
            $theirs = Get-Content -Raw (Join-Path $etc "0000:01:00.0/11111111-2222-3333-4444-555555555555")
            $ours = Get-Content -Raw (Join-Path $etc "0000:01:00.0/$Uuid")
            $ours | Should -Be ($theirs -replace 'nvidia-64', 'nvidia-63')
            $defined = Get-VgpuDevice -Root $h.Root -Uuid $other
            $defined.Active | Should -BeFalse
            $defined.Persistent | Should -BeTrue
            $defined.TypeName | Should -Be 'GRID P4-2Q'
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'uses mdevctl on the live host: define and undefine run through it (fixture bound over /sys and /etc/mdevctl.d in a private mount namespace)' {
        $h = New-VgpuHost
        try {
            $etc = Join-Path $h.Root 'etc/mdevctl.d'
            $null = New-Item -ItemType Directory -Force (Join-Path $etc 'scripts.d/callouts'), (Join-Path $etc 'scripts.d/notifiers')
            $script = Join-Path $h.Root 'live.ps1'
            Set-Content $script @'
param($Module, $Fixtures, $Uuid)
Import-Module $Module
Add-Type -Path $Fixtures
$driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new('/')
New-VgpuDevice -Parent 01:00.0 -Type nvidia-63 -Uuid $Uuid -Persistent -Verbose 4>&1 | ForEach-Object { if ($_ -is [GpuVirt.Core.Vgpu.VgpuDevice]) { "returned Persistent=$($_.Persistent) StartMode=$($_.StartMode) $($_.DefinitionPath)" } else { "$_" } }
Get-ChildItem /etc/mdevctl.d/0000:01:00.0 | ForEach-Object { 'defined ' + $_.Name }
Remove-VgpuDevice -Uuid $Uuid -Persistent -Confirm:$false -Verbose 4>&1 | ForEach-Object { "$_" }
'left ' + @(Get-ChildItem /etc/mdevctl.d/0000:01:00.0 -ErrorAction SilentlyContinue).Count
'journal ' + ((Get-GpuVirtChange).Command -join ',')
$driver.Dispose()
'@
            Push-Location $Repo
            try {
                $out = & unshare -m --propagation private sh -c "mount --bind '$($h.Root)/sys' /sys && mount --bind '$etc' /etc/mdevctl.d && mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run/lock && exec dotnet pwsh -NoProfile -NonInteractive -File '$script' '$env:GPUVIRT_MODULE' '$env:GPUVIRT_FIXTURES' $Uuid" 2>&1
            }
            finally { Pop-Location }
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
            $out | Should -Contain "Running: /usr/bin/mdevctl define --uuid $Uuid --parent 0000:01:00.0 --type nvidia-63 --auto"
            $out | Should -Contain "defined $Uuid"
            # The object it returns reads the definition mdevctl has just written, not what was there before it ran.
            $out | Should -Contain "returned Persistent=True StartMode=auto /etc/mdevctl.d/0000:01:00.0/$Uuid"
            $out | Should -Contain "Running: /usr/bin/mdevctl undefine --uuid $Uuid --parent 0000:01:00.0"
            $out | Should -Contain 'left 0'
            # The journal of the live host (a tmpfs over /var/lib here): both changes, with the mdevctl definition.
            $out | Should -Contain 'journal Remove-VgpuDevice,New-VgpuDevice'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'reports a malformed definition file without failing the listing' {
        $h = New-VgpuHost -Configure {
            param($b)
            $b.AddMdevDefinition('0000:01:00.0', $Uuid, 'nvidia-63')
            $b.AddMdevDefinition('0000:01:00.0', 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a', 'x', 'auto', '{"mdev_type": nvidia-64}')
        }
        try {
            $devices = Get-VgpuDevice -Root $h.Root -ErrorVariable errs -ErrorAction SilentlyContinue
            $devices.Uuid | Should -Be $Uuid
            $errs | Should -HaveCount 1
            $errs[0].FullyQualifiedErrorId | Should -Be 'MdevDefinitionInvalid,GpuVirt.Commands.GetVgpuDeviceCommand'
            $errs[0].Exception.Message | Should -BeLike '*/etc/mdevctl.d/0000:01:00.0/ba26a3e2-8e1e-4f39-9de7-b26bd210268a*not JSON*'
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Get-VgpuDevice and Remove-VgpuDevice' {
    It 'lists live and defined-but-stopped devices; Get-VgpuDevice | Remove-VgpuDevice removes them, -Persistent with definitions (stand-in mdev driver)' {
        $h = New-VgpuHost -Configure {
            param($b)
            $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($Uuid, '0000:01:00.0', 'nvidia-63', 30))
            $b.AddMdevDefinition('0000:01:00.0', $Uuid, 'nvidia-63')
            $b.AddMdevDefinition('0000:01:00.0', 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a', 'nvidia-65', 'manual')
        }
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $all = Get-VgpuDevice -Root $h.Root
            $all.Uuid | Should -Be @($Uuid, 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a')
            $all.Active | Should -Be @($true, $false)
            $all.Persistent | Should -Be @($true, $false)
            $all[0].IommuGroup | Should -Be 30
            $all[0].TypeName | Should -Be 'GRID P4-1Q'
            (Get-VgpuDevice -Root $h.Root | Out-String -Width 200) | Should -Match "$Uuid\s+0000:01:00\.0\s+nvidia-63\s+GRID P4-1Q\s+30\s+True\s+auto"

            Get-VgpuDevice -Root $h.Root -Uuid $Uuid | Remove-VgpuDevice -Root $h.Root -Confirm:$false
            $driver.Log | Should -Be @("remove $Uuid")
            (Get-VgpuDevice -Root $h.Root -Uuid $Uuid).Active | Should -BeFalse -Because 'its definition stays without -Persistent'
            Get-VgpuDevice -Root $h.Root | Remove-VgpuDevice -Root $h.Root -Persistent -Confirm:$false
            Get-VgpuDevice -Root $h.Root | Should -BeNullOrEmpty
            Join-Path $h.Root 'etc/mdevctl.d/0000:01:00.0' | Should -Not -Exist
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'writes 1 to remove, keeps the definition when the device stays, and reports unknown and stopped devices' {
        $h = New-VgpuHost -Configure {
            param($b)
            $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($Uuid, '0000:01:00.0', 'nvidia-63', 30))
            $b.AddMdevDefinition('0000:01:00.0', $Uuid, 'nvidia-63')
            $b.AddMdevDefinition('0000:01:00.0', 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a', 'nvidia-65')
        }
        try {
            { Remove-VgpuDevice -Root $h.Root -Uuid $Uuid -Persistent -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDeviceNotRemoved,GpuVirt.Commands.RemoveVgpuDeviceCommand'
            Get-Content -Raw (Join-Path $h.Root "sys/bus/mdev/devices/$Uuid/remove") | Should -Be "1`n"
            Join-Path $h.Root "etc/mdevctl.d/0000:01:00.0/$Uuid" | Should -Exist
            { Remove-VgpuDevice -Root $h.Root -Uuid ba26a3e2-8e1e-4f39-9de7-b26bd210268a -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDeviceNotActive,GpuVirt.Commands.RemoveVgpuDeviceCommand'
            { Remove-VgpuDevice -Root $h.Root -Uuid 11111111-2222-3333-4444-555555555555 -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDeviceNotFound,GpuVirt.Commands.RemoveVgpuDeviceCommand'
            { Get-VgpuDevice -Root $h.Root -Uuid 11111111-2222-3333-4444-555555555555 -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDeviceNotFound,GpuVirt.Commands.GetVgpuDeviceCommand'
            # A UUID with a line break after it is not the device's UUID: an error, not an empty answer.
            (Get-VgpuDevice -Root $h.Root -Uuid $Uuid).Uuid | Should -Be $Uuid
            { Get-VgpuDevice -Root $h.Root -Uuid "$Uuid`n" -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDeviceNotFound,GpuVirt.Commands.GetVgpuDeviceCommand'
            Remove-VgpuDevice -Root $h.Root -Uuid ba26a3e2-8e1e-4f39-9de7-b26bd210268a -Persistent -WhatIf
            Join-Path $h.Root 'etc/mdevctl.d/0000:01:00.0/ba26a3e2-8e1e-4f39-9de7-b26bd210268a' | Should -Exist
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'vGPU changes are plans: -WhatIf lists the writes, the executor applies them, the journal takes them back' {
    It '-WhatIf of New-VgpuDevice -Persistent and Remove-VgpuDevice -Persistent names every write and writes nothing' {
        $h = New-VgpuHost -Configure {
            param($b)
            $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new('ba26a3e2-8e1e-4f39-9de7-b26bd210268a', '0000:01:00.0', 'nvidia-65', 31))
            $b.AddMdevDefinition('0000:01:00.0', 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a', 'nvidia-65')
        }
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $before = Get-TreeHash $h.Root
            $text = Get-WhatIfText { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -Persistent -StartMode Manual -WhatIf }
            $text | Should -BeLike "*Create mediated device $Uuid and define it (start manual), of vGPU type nvidia-63 (GRID P4-1Q) on 0000:01:00.0:*"
            $text | Should -BeLike "*write $Uuid to /sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63/create*write the mdevctl definition /etc/mdevctl.d/0000:01:00.0/$Uuid (type nvidia-63, start manual)*"
            $gone = Get-WhatIfText { Remove-VgpuDevice -Root $h.Root ba26a3e2-8e1e-4f39-9de7-b26bd210268a -Persistent -WhatIf }
            $gone | Should -BeLike '*write 1 to /sys/bus/mdev/devices/ba26a3e2-8e1e-4f39-9de7-b26bd210268a/remove*remove the mdevctl definition /etc/mdevctl.d/0000:01:00.0/ba26a3e2-8e1e-4f39-9de7-b26bd210268a*'
            $driver.Log | Should -BeNullOrEmpty
            Get-TreeHash $h.Root | Should -Be $before
            Join-Path $h.Root 'var/lib/gpuvirt/journal.json' | Should -Not -Exist
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It '-PassThru writes the removed vGPU, which New-VgpuDevice makes again from the pipeline (stand-in mdev driver)' {
        $h = New-VgpuHost -Configure { param($b) $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($Uuid, '0000:01:00.0', 'nvidia-63', 30)) }
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            Remove-VgpuDevice -Root $h.Root $Uuid -Confirm:$false | Should -BeNullOrEmpty
            $driver.Log | Should -Be @("remove $Uuid")
            $again = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid
            $removed = Remove-VgpuDevice -Root $h.Root $Uuid -PassThru -Confirm:$false
            $removed | Should -BeOfType ([GpuVirt.Core.Vgpu.VgpuDevice])
            $removed.Uuid | Should -Be $Uuid
            $removed.TypeId | Should -Be 'nvidia-63'
            $removed.Parent | Should -Be '0000:01:00.0'
            Join-Path $h.Root "sys/bus/mdev/devices/$Uuid" | Should -Not -Exist
            ($removed | New-VgpuDevice -Root $h.Root).Uuid | Should -Be $Uuid
            $driver.Log | Should -Be @("remove $Uuid", "create nvidia-63 $Uuid", "remove $Uuid", "create nvidia-63 $Uuid")
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'journals one record per change with its inverse; Undo-GpuVirtChange puts a removed definition back byte for byte and takes a create back to nothing (stand-in mdev driver)' {
        $h = New-VgpuHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $definition = Join-Path $h.Root "etc/mdevctl.d/0000:01:00.0/$Uuid"
            $null = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -Persistent -StartMode Manual
            $bytes = [IO.File]::ReadAllBytes($definition)
            Remove-VgpuDevice -Root $h.Root $Uuid -Persistent -Confirm:$false
            $definition | Should -Not -Exist
            $records = @(Get-GpuVirtChange -Root $h.Root)
            $records.Command | Should -Be @('Remove-VgpuDevice', 'New-VgpuDevice')
            (Get-JournalRecord $h.Root $records[1].Id).Inverse.Kind | Should -Be 'RemoveVgpu'
            $records[1].Files | Should -Be "/etc/mdevctl.d/0000:01:00.0/$Uuid"
            $records[0].UndoSteps.Count | Should -Be 1
            $inverse = (Get-JournalRecord $h.Root $records[0].Id).Inverse[0]
            $inverse.Kind | Should -Be 'CreateVgpu'
            ($inverse.Uuid, $inverse.TypeId, $inverse.Parent) | Should -Be @($Uuid, 'nvidia-63', '0000:01:00.0')
            [Convert]::FromBase64String($inverse.Files[0].Content) | Should -Be $bytes

            $text = Get-WhatIfText { Undo-GpuVirtChange -Root $h.Root -Id $records[0].Id -WhatIf }
            $text | Should -BeLike "*write $Uuid to /sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63/create*write the mdevctl definition /etc/mdevctl.d/0000:01:00.0/$Uuid back as it was ($($bytes.Count) bytes)*"
            $undone = Undo-GpuVirtChange -Root $h.Root -Id $records[0].Id -Confirm:$false
            $undone.Undoes | Should -Be $records[0].Id
            [IO.File]::ReadAllBytes($definition) | Should -Be $bytes
            Join-Path $h.Root "sys/bus/mdev/devices/$Uuid" | Should -Exist

            $null = Get-GpuVirtChange -Root $h.Root | Undo-GpuVirtChange -Confirm:$false
            (Get-GpuVirtChange -Root $h.Root -Id $records[1].Id).Undone | Should -BeTrue
            Join-Path $h.Root "sys/bus/mdev/devices/$Uuid" | Should -Not -Exist
            Join-Path $h.Root 'etc/mdevctl.d/0000:01:00.0' | Should -Not -Exist
            $driver.Log | Should -Be @("create nvidia-63 $Uuid", "remove $Uuid", "create nvidia-63 $Uuid", "remove $Uuid")
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'two processes creating the same UUID: one device, one VgpuDeviceExists, one journal record, nothing lost (stand-in mdev driver)' {
        $h = New-VgpuHost
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        $script = Join-Path $h.Root 'same.ps1'
        Set-Content $script @'
param($Module, $Root, $Uuid, $Out)
Import-Module $Module
try { $d = New-VgpuDevice -Root $Root -Parent 01:00.0 -Type nvidia-63 -Uuid $Uuid -Persistent -ErrorAction Stop; "ok $($d.Uuid)" | Set-Content $Out }
catch { "error $($_.FullyQualifiedErrorId)" | Set-Content $Out }
'@
        $lock = [GpuVirt.Fixtures.FixtureLock]::Hold($h.Root)
        try {
            $racers = 1, 2 | ForEach-Object { Start-ChildPwsh $script @($env:GPUVIRT_MODULE, $h.Root, $Uuid, (Join-Path $h.Root "out$_.txt")) }
            $lock.WaitForWaiters(2, [TimeSpan]::FromMinutes(2)) | Should -BeTrue -Because 'both commands planned the device and wait for the lock'
            $lock.Dispose()
            foreach ($p in $racers) { $p.WaitForExit(); $p.ExitCode | Should -Be 0 -Because $p.StandardError.ReadToEnd() }
            $results = 1, 2 | ForEach-Object { Get-Content (Join-Path $h.Root "out$_.txt") }
            @($results | Where-Object { $_ -eq "ok $Uuid" }) | Should -HaveCount 1
            @($results | Where-Object { $_ -eq 'error VgpuDeviceExists,GpuVirt.Commands.NewVgpuDeviceCommand' }) | Should -HaveCount 1
            $driver.Log | Should -Be @("create nvidia-63 $Uuid")
            @(Get-ChildItem (Join-Path $h.Root 'etc/mdevctl.d/0000:01:00.0')).Name | Should -Be @($Uuid)
            @(Get-GpuVirtChange -Root $h.Root).Command | Should -Be @('New-VgpuDevice')
        }
        finally { $lock.Dispose(); $driver.Dispose(); $h | Remove-FixtureHost }
    }
}

Describe 'Test-VgpuHost' {
    It 'passes every check on a ready host image (stand-in systemctl)' {
        $h = New-VgpuHost -Configure {
            param($b)
            $b.LoadedModules.Add('nvidia_vgpu_vfio')
            $b.AddFile('/etc/modprobe.d/nvidia-installer-disable-nouveau.conf', "blacklist nouveau`noptions nouveau modeset=0`n")
        }
        $bin = New-StandInSystemctl -Answer enabled -ExitCode 0
        $path = $env:PATH
        try {
            $env:PATH = "${bin}:$path"
            $checks = Test-VgpuHost -Root $h.Root
            $checks.Name | Should -Be @('nouveau blacklisted', 'nvidia_vgpu_vfio loaded', 'nvidia-vgpu-mgr.service enabled', 'vGPU parent devices present')
            $checks.Passed | Should -Be @($true, $true, $true, $true)
            @($checks | Where-Object Fix) | Should -HaveCount 0
            Get-Content (Join-Path $bin 'argv') | Should -Be @("--root=$($h.Root)", 'is-enabled', 'nvidia-vgpu-mgr.service')
            Test-VgpuHost -Root $h.Root -Quiet | Should -BeTrue
        }
        finally { $env:PATH = $path; Remove-Item -Recurse -Force $bin; $h | Remove-FixtureHost }
    }

    It 'fails each missing piece with its fix; on the live host it asks systemctl is-active (stand-in systemctl)' {
        $h = New-FixtureHost -Name TwoSocket
        $bin = New-StandInSystemctl -Answer inactive -ExitCode 3
        $path = $env:PATH
        try {
            $env:PATH = "${bin}:$path"
            $checks = Test-VgpuHost -Root $h.Root
            $checks.Passed | Should -Be @($false, $false, $false, $true)
            $checks[0].Fix | Should -Be 'Run Disable-NouveauDriver (it writes the blacklist to /etc/modprobe.d and rebuilds the initramfs), then reboot.'
            Get-Command Disable-NouveauDriver -Module GpuVirt | Should -Not -BeNullOrEmpty
            $checks[1].Fix | Should -BeLike '*modprobe nvidia_vgpu_vfio*'
            $checks[2].Detail | Should -Be "systemctl says 'inactive'"
            $checks[3].Detail | Should -Be '0000:01:00.0 (SR-IOV)'
            Test-VgpuHost -Root $h.Root -Quiet | Should -BeFalse
            # The live host: the fixture's sysfs (an NVIDIA vGPU parent) bound over /sys in a private mount namespace.
            Push-Location $Repo
            try {
                $live = & unshare -m --propagation private sh -c "mount --bind '$($h.Root)/sys' /sys && exec dotnet pwsh -NoProfile -NonInteractive -Command `"Import-Module '$env:GPUVIRT_MODULE'; (Test-VgpuHost)[2].Name`"" 2>&1
            }
            finally { Pop-Location }
            $live | Should -Be 'nvidia-vgpu-mgr.service active'
            Get-Content (Join-Path $bin 'argv') | Should -Be @('is-active', 'nvidia-vgpu-mgr.service')
            ($checks | Out-String -Width 200) | Should -Match 'FAIL\s+nvidia_vgpu_vfio loaded'
            # The table breaks Detail and Fix at spaces for the console's width: every word short enough stays whole.
            $tokens = ($checks | Format-Table | Out-String -Width $Host.UI.RawUI.BufferSize.Width) -split '\s+'
            foreach ($word in (@($checks.Detail) + @($checks.Fix) -split ' ' | Where-Object { $_ -and $_.Length -le 16 })) {
                $tokens | Should -Contain $word
            }
        }
        finally { $env:PATH = $path; Remove-Item -Recurse -Force $bin; $h | Remove-FixtureHost }
    }
}

Describe 'Set-VgpuConsole' {
    BeforeAll {
        $env:LIBVIRT_LOG_FILTERS = '4:*'
        $script:Embed = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-console-' + [guid]::NewGuid().ToString('N'))
        $script:Uri = [GpuVirt.Fixtures.LibvirtFixture]::PrepareEmbedRoot((Join-Path $Embed 'libvirt'))
        $doc = [xml][GpuVirt.Fixtures.LibvirtFixture]::Domain('ws1', $false, $null, 4)
        $devices = $doc.domain.devices
        foreach ($xml in @(
                "<video><model type='cirrus' vram='16384' heads='1' primary='yes'/></video>",
                "<serial type='pty'/>",
                "<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'><source><address uuid='$Uuid'/></source></hostdev>")) {
            $null = $devices.AppendChild($doc.ImportNode(([xml]$xml).DocumentElement, $true))
        }
        $file = Join-Path $Embed 'ws1.xml'
        $doc.Save($file)
        & virsh -c $Uri define --file $file | Out-Null
        if ($LASTEXITCODE -ne 0) { throw 'virsh define failed' }
    }
    AfterAll { Remove-Item -Recurse -Force $Embed -ErrorAction SilentlyContinue }

    It '-WhatIf shows the difference and changes nothing (qemu:///embed)' {
        $before = & virsh -c $Uri dumpxml --inactive ws1
        Push-Location $Repo
        try {
            $out = & dotnet pwsh -NoProfile -NonInteractive -Command "Import-Module '$env:GPUVIRT_MODULE'; Set-VgpuConsole -Domain ws1 -Connect '$Uri' -NoEmulatedVideo -WhatIf"
        }
        finally { Pop-Location }
        $text = $out -join "`n"
        $text | Should -Match "What if: Redefine guest 'ws1' for a vnc vGPU console:"
        $text | Should -Match "hostdev ${Uuid}: display='on'"
        $text | Should -Match '(?m)^- +<model type="cirrus"'
        $text | Should -Match '(?m)^\+ +<model type="none" />'
        $text | Should -Match '(?m)^\+ +<graphics type="vnc" port="-1" autoport="yes">'
        (& virsh -c $Uri dumpxml --inactive ws1) | Should -Be $before
    }

    It 'sets display, video none and a VNC console, keeping every other element (qemu:///embed)' {
        $before = [xml]((& virsh -c $Uri dumpxml --inactive ws1) -join "`n")
        $change = Set-VgpuConsole -Domain ws1 -Connect $Uri -Root $Embed -NoEmulatedVideo -Verbose 4>&1 | Where-Object { $_ -is [GpuVirt.Core.Vgpu.VgpuConsoleChange] }
        $change.Applied | Should -BeTrue
        $change.Changes | Should -Be @("hostdev ${Uuid}: display='on'", "video: model type='none' (was 'cirrus')", "graphics: type='vnc' added")
        $after = [xml]((& virsh -c $Uri dumpxml --inactive ws1) -join "`n")
        $after.domain.devices.hostdev.display | Should -Be 'on'
        $after.domain.devices.video.model.type | Should -Be 'none'
        $after.domain.devices.graphics.type | Should -Be 'vnc'
        foreach ($d in $before, $after) {
            $dev = $d.domain.devices
            foreach ($n in @($dev.SelectNodes('video')) + @($dev.SelectNodes('graphics'))) { $null = $dev.RemoveChild($n) }
            $dev.SelectSingleNode('hostdev').RemoveAttribute('display')
        }
        $after.OuterXml | Should -Be $before.OuterXml
        (Set-VgpuConsole -Domain ws1 -Connect $Uri -Root $Embed -NoEmulatedVideo).Changed | Should -BeFalse
    }

    It 'reports a guest without a vGPU, and an unknown guest, clearly' {
        $file = Join-Path $Embed 'plain.xml'
        Set-Content $file ([GpuVirt.Fixtures.LibvirtFixture]::Domain('plain', $true, $null, 1))
        & virsh -c $Uri define --file $file | Out-Null
        { Set-VgpuConsole -Domain plain -Connect $Uri -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuConsoleNoMdevHostdev,GpuVirt.Commands.SetVgpuConsoleCommand'
        { Set-VgpuConsole -Domain nosuch -Connect $Uri -ErrorAction Stop } | Should -Throw -ErrorId 'DomainNotFound,GpuVirt.Commands.SetVgpuConsoleCommand'
    }
}
