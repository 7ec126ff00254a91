<#
.SYNOPSIS
    Runs the Pester suite against the laid-out module and writes the counts as JSON for build.ps1.
#>
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $FixturesPath,
    [Parameter(Mandatory)] [string] $ResultPath,
    # The local repository folder build.ps1 -Task Package made (the install and remoting tests need it).
    [string] $PackagePath,
    [string[]] $Path = @($PSScriptRoot)
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force
$env:GPUVIRT_MODULE = (Resolve-Path -LiteralPath $ModulePath).Path
$env:GPUVIRT_FIXTURES = (Resolve-Path -LiteralPath $FixturesPath).Path
if ($PackagePath) { $env:GPUVIRT_PACKAGE = (Resolve-Path -LiteralPath $PackagePath).Path }

$config = New-PesterConfiguration
$config.Run.Path = $Path
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$result = Invoke-Pester -Configuration $config

$counts = @{
    Passed = $result.PassedCount
    Failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount + $result.NotRunCount
}
# A skipped or not-run test is a defect here: count it as a failure so it cannot hide.
$counts.Failed += $counts.Skipped
$counts | ConvertTo-Json | Set-Content -Path $ResultPath
if ($counts.Failed -gt 0) { exit 1 }
