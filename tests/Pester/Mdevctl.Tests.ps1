# mdevctl parity for mediated devices: define without starting, start modes, attributes, and definitions exported and
# imported as mdevctl's JSON, checked against the real mdevctl (run on the fixture's /etc/mdevctl.d in a private mount
# namespace).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
    $script:Other = 'ba26a3e2-8e1e-4f39-9de7-b26bd210268a'
}

Describe 'New-VgpuDevice -DefineOnly, -StartMode and -Attribute' {
    It 'defines without creating, with start manual and ordered attributes, in the file the real mdevctl lists' {
        $h = New-FixtureHost -Name Seed
        try {
            $etc = New-MdevctlDir $h.Root
            $d = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -DefineOnly -StartMode Manual -Attribute ([ordered]@{ zeta = '1'; alpha = 'two words' })
            $d.Active | Should -BeFalse
            $d.StartMode | Should -Be 'manual'
            $d.Persistent | Should -BeFalse -Because 'a manual definition does not come back at boot by itself'
            Test-Path (Join-Path $h.Root "sys/bus/mdev/devices/$Uuid") | Should -BeFalse
            $listed = Invoke-Mdevctl $etc "mdevctl list --defined --dumpjson" | ConvertFrom-Json
            $def = $listed[0].'0000:01:00.0'[0].$Uuid
            $def.start | Should -Be 'manual'
            ($def.attrs | ForEach-Object { $_.PSObject.Properties.Name }) | Should -Be @('zeta', 'alpha')
            $def.attrs[1].alpha | Should -Be 'two words'
            { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -DefineOnly -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDefinitionConflict,GpuVirt.Commands.NewVgpuDeviceCommand'
            { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -StartMode Manual -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuOptionNotApplicable,GpuVirt.Commands.NewVgpuDeviceCommand'
            { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Attribute @{ '../x' = 1 } -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuOptionNotApplicable,GpuVirt.Commands.NewVgpuDeviceCommand'
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'writes the attributes to the new device; one that cannot be written removes the device again (stand-in mdev driver)' {
        $h = New-FixtureHost -Name Seed
        $driver = [GpuVirt.Fixtures.MdevDriverStandIn]::new($h.Root)
        try {
            $err = $null
            try { New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -Persistent -Attribute ([ordered]@{ no_such_attribute = '1' }) -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'VgpuAttributeFailed,GpuVirt.Commands.NewVgpuDeviceCommand'
            $err.Exception.Message | Should -BeLike "*'no_such_attribute'*/sys/bus/mdev/devices/$Uuid/no_such_attribute*The steps already made were undone (write $Uuid to /sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63/create): nothing was changed."
            $deadline = [DateTime]::UtcNow.AddSeconds(10)
            while ((Test-Path (Join-Path $h.Root "sys/bus/mdev/devices/$Uuid")) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $driver.Log | Should -Be @("create nvidia-63 $Uuid", "remove $Uuid")
            Test-Path (Join-Path $h.Root "etc/mdevctl.d/0000:01:00.0/$Uuid") | Should -BeFalse
        }
        finally { $driver.Dispose(); $h | Remove-FixtureHost }
    }

    It 'hands attributes and a manual start to the real mdevctl as define --jsonfile on the live host (fixture bound over /sys and /etc/mdevctl.d)' {
        $h = New-FixtureHost -Name Seed
        try {
            $etc = New-MdevctlDir $h.Root
            $script = Join-Path $h.Root 'live.ps1'
            Set-Content $script @'
param($Module, $Uuid)
Import-Module $Module
$d = New-VgpuDevice -Parent 01:00.0 -Type nvidia-64 -Uuid $Uuid -DefineOnly -StartMode Manual -Attribute ([ordered]@{ a = '1' }) -Verbose 4>&1 |
    ForEach-Object { if ($_ -is [GpuVirt.Core.Vgpu.VgpuDevice]) { "returned StartMode=$($_.StartMode) Active=$($_.Active)" } else { "$_" } }
$d
'@
            Push-Location $Repo
            try {
                $out = & unshare -m --propagation private sh -c "mount --bind '$($h.Root)/sys' /sys && mount --bind '$etc' /etc/mdevctl.d && exec dotnet pwsh -NoProfile -NonInteractive -File '$script' '$env:GPUVIRT_MODULE' $Uuid" 2>&1
            }
            finally { Pop-Location }
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
            ($out | Where-Object { "$_" -like 'Running: /usr/bin/mdevctl define*' }) | Should -BeLike "Running: /usr/bin/mdevctl define --uuid $Uuid --parent 0000:01:00.0 --jsonfile /*/$Uuid.json"
            $out | Should -Contain 'returned StartMode=manual Active=False'
            $written = Get-Content -Raw (Join-Path $etc "0000:01:00.0/$Uuid") | ConvertFrom-Json
            $written.mdev_type | Should -Be 'nvidia-64'
            $written.start | Should -Be 'manual'
            $written.attrs[0].a | Should -Be '1'
        }
        finally { $h | Remove-FixtureHost }
    }
}

Describe 'Export-VgpuDefinition and Import-VgpuDefinition' {
    It 'exports exactly what the real mdevctl list --defined --dumpjson prints' {
        $h = New-FixtureHost -Name Seed -Configure { param($b) $b.AddMdevDefinition('0000:01:00.0', $Other, 'nvidia-64', 'auto') }
        try {
            $etc = New-MdevctlDir $h.Root
            $null = New-VgpuDevice -Root $h.Root 01:00.0 nvidia-63 -Uuid $Uuid -DefineOnly -StartMode Manual -Attribute ([ordered]@{ k = 'v' })
            # A definition the real mdevctl makes, on another parent.
            $null = Invoke-Mdevctl $etc "mdevctl define -u 11111111-2222-3333-4444-555555555555 -p 0000:00:02.0 -t i915-GVTg_V5_4"
            $theirs = Invoke-Mdevctl $etc "mdevctl list --defined --dumpjson"
            $ours = Export-VgpuDefinition -Root $h.Root
            $ours | Should -Be $theirs
            (Export-VgpuDefinition -Root $h.Root -Parent 01:00.0 | ConvertFrom-Json)[0].PSObject.Properties.Name | Should -Be @('0000:01:00.0')
            Get-VgpuDevice -Root $h.Root -Uuid $Other | Export-VgpuDefinition -Root $h.Root | Should -BeLike "*$Other*"
        }
        finally { $h | Remove-FixtureHost }
    }

    It 'imports what the real mdevctl dumps into a fresh host, byte for byte its files; again changes nothing; a conflict is refused' {
        $src = New-FixtureHost -Name Seed
        $dst = New-FixtureHost -Name Seed
        try {
            $etc = New-MdevctlDir $src.Root
            $json = Join-Path $src.Root 'one.json'
            [IO.File]::WriteAllText($json, '{"mdev_type":"nvidia-65","start":"manual","attrs":[{"x":"1"},{"y":"2"}]}')
            $null = Invoke-Mdevctl $etc "mdevctl define -u $Uuid -p 0000:01:00.0 --jsonfile '$json' && mdevctl define -u $Other -p 0000:01:00.0 -t nvidia-63 --auto"
            $dump = Invoke-Mdevctl $etc "mdevctl list --defined --dumpjson"

            $text = Get-WhatIfText { $dump | Import-VgpuDefinition -Root $dst.Root -WhatIf }
            $text | Should -BeLike "*Define the mediated device (start manual, attributes x=1, y=2)*$Uuid*"
            Test-Path (Join-Path $dst.Root 'etc/mdevctl.d') | Should -BeFalse
            $dumpFile = Join-Path $src.Root 'dump.json'
            [IO.File]::WriteAllText($dumpFile, $dump)
            $imported = Import-VgpuDefinition -Root $dst.Root -Path $dumpFile
            ($imported | ForEach-Object Uuid) | Should -Be @($Uuid, $Other)
            ($imported | ForEach-Object StartMode) | Should -Be @('manual', 'auto')
            foreach ($u in $Uuid, $Other) {
                Get-Content -Raw (Join-Path $dst.Root "etc/mdevctl.d/0000:01:00.0/$u") | Should -Be (Get-Content -Raw (Join-Path $etc "0000:01:00.0/$u"))
            }
            $again = Import-VgpuDefinition -Root $dst.Root -Path $dumpFile -Verbose 4>&1
            "$($again | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })" | Should -BeLike "*$Uuid is defined so already*"
            $conflict = $dump -replace 'nvidia-65', 'nvidia-66'
            { $conflict | Import-VgpuDefinition -Root $dst.Root -ErrorAction Stop } | Should -Throw -ErrorId 'VgpuDefinitionConflict,GpuVirt.Commands.ImportVgpuDefinitionCommand'
            { '{"not": "a dump"}' | Import-VgpuDefinition -Root $dst.Root -ErrorAction Stop } | Should -Throw -ErrorId 'MdevDefinitionInvalid,GpuVirt.Commands.ImportVgpuDefinitionCommand'
            # Journaled: the import of each definition can be undone.
            (Get-GpuVirtChange -Root $dst.Root | Where-Object Command -EQ 'Import-VgpuDefinition').Count | Should -Be 2
        }
        finally { $src | Remove-FixtureHost; $dst | Remove-FixtureHost }
    }
}
