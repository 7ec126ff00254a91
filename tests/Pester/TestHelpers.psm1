# Shared by the Pester tests: the module under test, fixture hosts and the real lspci.
Add-Type -Path $env:GPUVIRT_FIXTURES

function New-FixtureHost {
    <# Builds a sample host ('Seed', 'TwoSocket', 'SriovVgpu' or 'InUse') in a new temporary directory and returns its builder. #>
    param([ValidateSet('Seed', 'TwoSocket', 'SriovVgpu', 'InUse')] [string] $Name = 'Seed', [scriptblock] $Configure)
    $root = Join-Path ([IO.Path]::GetTempPath()) ("gpuvirt-pester-" + [guid]::NewGuid().ToString('N'))
    $builder = [GpuVirt.Fixtures.SampleHosts]::$Name($root)
    if ($Configure) { & $Configure $builder }
    $null = $builder.Build()
    $builder
}

function Remove-FixtureHost {
    param([Parameter(ValueFromPipeline)] $Builder)
    process { if ($Builder -and (Test-Path $Builder.Root)) { Remove-Item -Recurse -Force $Builder.Root } }
}

function Get-LspciDevice {
    <# Runs the real lspci against a root (or the live /sys when none) and parses -Dnnk output into records. #>
    param([string] $Root)
    $lspciArgs = @()
    if ($Root) { $lspciArgs += @('-A', 'linux-sysfs', '-O', "sysfs.path=$Root/sys/bus/pci", '-O', 'hwdb.disable=1') }
    $lspciArgs += '-Dnnk'
    $lines = & lspci @lspciArgs 2>$null
    if ($LASTEXITCODE -ne 0) { throw "lspci failed: $LASTEXITCODE" }
    $current = $null
    foreach ($line in $lines) {
        if ($line -match '^(?<addr>[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*\[(?<class>[0-9a-f]{4})\]: .*\[(?<ids>[0-9a-f]{4}:[0-9a-f]{4})\](?: \(rev (?<rev>[0-9a-f]{2})\))?') {
            if ($current) { [pscustomobject]$current }
            $current = [ordered]@{ Address = $Matches.addr; ClassId = $Matches.class; Ids = $Matches.ids; Revision = $Matches.rev; Driver = $null }
        }
        elseif ($current -and $line -match '^\s+Kernel driver in use: (?<driver>\S+)') {
            $current.Driver = $Matches.driver
        }
    }
    if ($current) { [pscustomobject]$current }
}

function Set-HostFile {
    <#
        Writes Text to the file at the root-relative Path under Root. Named parameters, and a check that the file lands
        inside Root: a swapped path and content once left files named after grub lines in the working directory.
    #>
    param(
        [Parameter(Mandatory)] [string] $Root,
        [Parameter(Mandatory)] [string] $Path,
        [Parameter(Mandatory)] [AllowEmptyString()] [string] $Text
    )
    if ([IO.Path]::IsPathRooted($Path) -or $Path -match '[\r\n"]') { throw "Set-HostFile: '$Path' is not a path relative to the host root." }
    $full = [IO.Path]::GetFullPath((Join-Path $Root $Path))
    $rootFull = [IO.Path]::GetFullPath($Root).TrimEnd('/') + '/'
    if (-not $full.StartsWith($rootFull, [StringComparison]::Ordinal)) { throw "Set-HostFile: '$Path' leaves the host root '$Root'." }
    [IO.File]::WriteAllText($full, $Text)
}

Import-Module (Join-Path $PSScriptRoot '../../tools/PwshProcess.psm1') -Verbose:$false

function Get-GpuVirtPackage {
    <# The nupkg build.ps1 -Task Package made (the Pester suite gets its repository folder as -PackagePath). #>
    if (-not $env:GPUVIRT_PACKAGE) { throw 'No package: run build.ps1 -Task Package and pass out/package to Invoke-PesterSuite.ps1 -PackagePath.' }
    $version = (Import-PowerShellDataFile (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.psd1')).ModuleVersion
    $nupkg = Join-Path $env:GPUVIRT_PACKAGE "GpuVirt.$version.nupkg"
    if (-not (Test-Path -LiteralPath $nupkg)) { throw "build.ps1 -Task Package made no $nupkg." }
    [pscustomobject]@{ Repository = $env:GPUVIRT_PACKAGE; Path = $nupkg; Version = $version }
}

function Install-GpuVirtPackage {
    <#
    Installs the package as a user would from a Gallery: registers its folder as a PSResourceGet repository and runs
    Install-PSResource -Scope CurrentUser, in a child pwsh whose user profile is ProfileDirectory (a clean scope; the
    registration lives and dies with that directory). Returns the installed module's folder.
    #>
    param([Parameter(Mandatory)] [string] $ProfileDirectory)
    $package = Get-GpuVirtPackage
    $profileDir = New-ProfileDirectory $ProfileDirectory
    $install = @(
        '$ErrorActionPreference = ''Stop'''
        "Register-PSResourceRepository -Name GpuVirtLocal -Uri $(ConvertTo-PwshLiteral $package.Repository) -Trusted"
        "Install-PSResource -Name GpuVirt -Version $(ConvertTo-PwshLiteral $package.Version) -Repository GpuVirtLocal -Scope CurrentUser"
        '(Get-InstalledPSResource -Name GpuVirt).InstalledLocation'
    ) -join "`n"
    $location = Invoke-PwshInProfile -ProfileDirectory $profileDir -Command $install | Select-Object -Last 1
    Join-Path $location "GpuVirt/$($package.Version)"
}

function Get-TreeHash {
    <#
    SHA-256 of every file and the target of every link under a root's etc, var and boot, one line each, sorted:
    equal before and after means nothing there changed. Links are not followed (sysfs trees loop). -Exclude leaves
    out host paths (the journal, which a command writes on purpose).
    #>
    param([string] $Root, [string[]] $Exclude = @())
    $result = [ordered]@{}
    foreach ($top in 'etc', 'var', 'boot') {
        $dir = Join-Path $Root $top
        if (-not (Test-Path $dir)) { continue }
        $options = [IO.EnumerationOptions]@{ RecurseSubdirectories = $true; AttributesToSkip = [IO.FileAttributes]::ReparsePoint }
        foreach ($f in [IO.Directory]::EnumerateFiles($dir, '*', $options)) { $result[$f.Substring($Root.Length)] = (Get-FileHash -LiteralPath $f).Hash }
        foreach ($l in Get-ChildItem -LiteralPath $dir -Recurse -Force -Attributes ReparsePoint) { $result[$l.FullName.Substring($Root.Length)] = '-> ' + $l.LinkTarget }
    }
    ($result.Keys | Where-Object { $_ -notin $Exclude } | Sort-Object | ForEach-Object { '{0} {1}' -f $_, $result[$_] }) -join "`n"
}

function Get-StandInCall {
    <# Every call the stand-in programs under a root logged, each as its argv. #>
    param([string] $Root)
    , @([GpuVirt.Fixtures.StandIns]::Calls($Root) | ForEach-Object { , @($_) })
}

function Get-JournalRecord {
    # A record as the journal keeps it on disk (/var/lib/gpuvirt/journal.json under the root), inverse steps and all.
    param([Parameter(Mandatory)][string]$Root, [Parameter(Mandatory)][int]$Id)
    $doc = Get-Content -Raw -LiteralPath (Join-Path $Root 'var/lib/gpuvirt/journal.json') | ConvertFrom-Json -Depth 20
    $doc.Records | Where-Object Id -EQ $Id
}

function New-MdevctlDir([string] $Root) {
    <# The fixture's /etc/mdevctl.d with the script folders the real mdevctl expects. #>
    $etc = Join-Path $Root 'etc/mdevctl.d'
    $null = New-Item -ItemType Directory -Force (Join-Path $etc 'scripts.d/callouts'), (Join-Path $etc 'scripts.d/notifiers')
    $etc
}

function Invoke-Mdevctl([string] $Etc, [string] $Commands) {
    <# The real mdevctl, seeing the fixture's definitions as /etc/mdevctl.d (a bind mount in a private mount namespace). #>
    $out = & unshare -m --propagation private sh -c "mount --bind '$Etc' /etc/mdevctl.d && $Commands" 2>&1
    if ($LASTEXITCODE -ne 0) { throw "mdevctl: $out" }
    $out -join "`n"
}

Export-ModuleMember -Function New-MdevctlDir, Invoke-Mdevctl, Get-JournalRecord, Get-TreeHash, Get-StandInCall, New-FixtureHost, Remove-FixtureHost, Get-LspciDevice, Set-HostFile, Get-GpuVirtPackage, Install-GpuVirtPackage, Invoke-PwshInProfile, ConvertTo-PwshLiteral, Get-PwshCommandLine, New-ProfileDirectory
