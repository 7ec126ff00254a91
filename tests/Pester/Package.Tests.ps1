# The module as a user gets it from a Gallery: build.ps1 -Task Package publishes it with PSResourceGet to a local file
# repository; here it is installed from there with Install-PSResource into a clean CurrentUser scope (a temporary
# user profile) and imported by name.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Package = Get-GpuVirtPackage
    $script:Manifest = Import-PowerShellDataFile (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.psd1')

    function Get-TreeState([string[]] $Path) {
        # Every file under the given folders with its hash: what "left alone" is compared against.
        foreach ($p in $Path) {
            if (-not (Test-Path -LiteralPath $p)) { "$p absent"; continue }
            Get-ChildItem -LiteralPath $p -Recurse -Force -File | Sort-Object FullName | ForEach-Object { "$($_.FullName) $((Get-FileHash -LiteralPath $_.FullName).Hash)" }
        }
    }
}

Describe 'build.ps1 -Task Package' {
    It 'makes GpuVirt.<version>.nupkg that holds exactly the laid-out module, byte for byte' {
        Split-Path -Leaf $Package.Path | Should -Be "GpuVirt.$($Manifest.ModuleVersion).nupkg"
        $zip = [IO.Compression.ZipFile]::OpenRead($Package.Path)
        try {
            # NuGet's own parts of every package: the nuspec, the OPC content types, relationships and core properties.
            $packaging = '^(GpuVirt\.nuspec|\[Content_Types\]\.xml|_rels/.*|package/services/metadata/.*)$'
            $entries = @($zip.Entries | Where-Object { $_.FullName -notmatch $packaging } | Sort-Object FullName)
            $module = (Resolve-Path $env:GPUVIRT_MODULE).Path
            $files = @(Get-ChildItem -LiteralPath $module -Recurse -File | Sort-Object FullName)
            $files.Count | Should -BeGreaterThan 4
            $entries.FullName | Should -Be @($files | ForEach-Object { [IO.Path]::GetRelativePath($module, $_.FullName) } | Sort-Object)
            foreach ($entry in $entries) {
                $stream = $entry.Open()
                try { $packed = (Get-FileHash -InputStream $stream).Hash } finally { $stream.Dispose() }
                $packed | Should -Be (Get-FileHash -LiteralPath (Join-Path $module $entry.FullName)).Hash -Because "$($entry.FullName) is packed as laid out"
            }
        }
        finally { $zip.Dispose() }
    }

    It "carries the manifest's identity in its nuspec" {
        $zip = [IO.Compression.ZipFile]::OpenRead($Package.Path)
        try {
            $reader = [IO.StreamReader]::new($zip.GetEntry('GpuVirt.nuspec').Open())
            try { $nuspec = [xml]$reader.ReadToEnd() } finally { $reader.Dispose() }
        }
        finally { $zip.Dispose() }
        $meta = $nuspec.package.metadata
        $meta.id | Should -Be 'GpuVirt'
        $meta.version | Should -Be $Manifest.ModuleVersion
        $meta.description | Should -Be $Manifest.Description
        $meta.authors | Should -Be $Manifest.Author
        $tags = $meta.tags -split ' '
        $tags | Should -Contain 'PSModule'
        foreach ($tag in $Manifest.PrivateData.PSData.Tags) { $tags | Should -Contain $tag }
    }

    It 'has a manifest that passes Test-ModuleManifest and exports exactly its CmdletsToExport' {
        $tested = Test-ModuleManifest -Path (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.psd1') -ErrorAction Stop
        $tested.Name | Should -Be 'GpuVirt'
        $tested.Version | Should -Be ([version]$Manifest.ModuleVersion)
        @($tested.ExportedCmdlets.Keys | Sort-Object) | Should -Be @($Manifest.CmdletsToExport | Sort-Object)
        @((Get-Module GpuVirt).ExportedCmdlets.Keys | Sort-Object) | Should -Be @($Manifest.CmdletsToExport | Sort-Object)
        # The license ships with the module; no project or license address the module cannot vouch for.
        (Get-FileHash (Join-Path $env:GPUVIRT_MODULE 'LICENSE')).Hash | Should -Be (Get-FileHash (Join-Path $PSScriptRoot '../../LICENSE')).Hash
        $tested.ProjectUri | Should -BeNullOrEmpty
        $tested.LicenseUri | Should -BeNullOrEmpty
    }
}

Describe 'Install-PSResource from the local repository' {
    BeforeAll {
        $script:UserState = @(
            (Join-Path $HOME '.local/share/PSResourceGet'), (Join-Path $HOME '.local/share/powershell/Modules/GpuVirt'),
            (Join-Path $HOME '.config/NuGet')
        )
        $script:Before = @(Get-TreeState $UserState)
        $script:ProfileDir = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-install-' + [guid]::NewGuid().ToString('N'))
        $script:Installed = Install-GpuVirtPackage -ProfileDirectory $ProfileDir
        $script:Seed = New-FixtureHost -Name Seed
    }
    AfterAll {
        $Seed | Remove-FixtureHost
        if (Test-Path $ProfileDir) { Remove-Item -Recurse -Force $ProfileDir }
    }

    It 'installs into the clean CurrentUser scope, and Import-Module GpuVirt by name loads it from there' {
        $Installed | Should -Be (Join-Path $ProfileDir ".local/share/powershell/Modules/GpuVirt/$($Package.Version)")
        @(Get-ChildItem -LiteralPath (Join-Path $ProfileDir '.local/share/powershell/Modules')).Name | Should -Be 'GpuVirt'
        $probe = @(
            '$ErrorActionPreference = ''Stop'''
            'Import-Module GpuVirt'
            '$m = Get-Module GpuVirt'
            "`$table = Get-GpuDevice -Root $(ConvertTo-PwshLiteral $Seed.Root) | Format-Table | Out-String -Width 300"
            '[pscustomobject]@{'
            '    Base = $m.ModuleBase; Version = "$($m.Version)"; Cmdlets = @($m.ExportedCmdlets.Keys | Sort-Object)'
            '    Installed = "$((Get-InstalledPSResource -Name GpuVirt).Version)"'
            '    Manifest = (Test-ModuleManifest -Path (Join-Path $m.ModuleBase GpuVirt.psd1)).Name'
            '    Synopsis = (Get-Help Get-GpuDevice).Synopsis; Table = $table'
            '} | ConvertTo-Json -Compress'
        ) -join "`n"
        $result = Invoke-PwshInProfile -ProfileDirectory $ProfileDir -Command $probe | Select-Object -Last 1 | ConvertFrom-Json
        $result.Base | Should -Be $Installed
        $result.Version | Should -Be $Package.Version
        $result.Installed | Should -Be $Package.Version
        $result.Manifest | Should -Be 'GpuVirt'
        $result.Cmdlets | Should -Be @($Manifest.CmdletsToExport | Sort-Object)
        $result.Synopsis | Should -Be (Get-Help Get-GpuDevice).Synopsis
        # The installed module's views format its objects as the laid-out module's do.
        $result.Table | Should -Be (Get-GpuDevice -Root $Seed.Root | Format-Table | Out-String -Width 300)
        $result.Table | Should -Match 'Quadro K4000'
    }

    It "leaves the user's own PSResourceGet repositories, NuGet configuration and modules alone" {
        @(Get-TreeState $UserState) | Should -Be $Before
        Join-Path $ProfileDir '.local/share/PSResourceGet/PSResourceRepository.xml' | Should -FileContentMatch 'GpuVirtLocal'
    }
}
