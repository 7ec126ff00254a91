<#
.SYNOPSIS
    Runs the Pester suite against the laid-out module and writes the counts as JSON for build.ps1.
#>
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $FixturesPath,
    [Parameter(Mandatory)] [string] $ResultPath,
    [string[]] $Path = @($PSScriptRoot)
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force
$env:GPUVIRT_MODULE = (Resolve-Path -LiteralPath $ModulePath).Path
$env:GPUVIRT_FIXTURES = (Resolve-Path -LiteralPath $FixturesPath).Path

$config = New-PesterConfiguration
$config.Run.Path = @($Path | ForEach-Object { (Resolve-Path -LiteralPath $_).Path })
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$ResultPath = [IO.Path]::GetFullPath($ResultPath)

# The tests run in an empty temporary working directory, never the repository's: a test that writes to a relative
# path then writes nowhere that matters, and the repository's tree stays as it was.
$cwd = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-pester-cwd-' + [guid]::NewGuid().ToString('N'))
$null = New-Item -ItemType Directory -Path $cwd
Push-Location -LiteralPath $cwd
[Environment]::CurrentDirectory = $cwd
try { $result = Invoke-Pester -Configuration $config }
finally {
    Pop-Location
    [Environment]::CurrentDirectory = (Get-Location).Path
    $left = @(Get-ChildItem -LiteralPath $cwd -Force -Recurse -ErrorAction SilentlyContinue | ForEach-Object { $_.FullName.Substring($cwd.Length + 1) })
    Remove-Item -LiteralPath $cwd -Recurse -Force
}

$counts = @{
    Passed = $result.PassedCount
    Failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount + $result.NotRunCount
}
# A skipped or not-run test is a defect here: count it as a failure so it cannot hide.
$counts.Failed += $counts.Skipped
# So is a test that wrote into its working directory instead of its own temporary directory.
if ($left.Count -gt 0) {
    Write-Host "Tests left files in the working directory: $($left -join ', ')" -ForegroundColor Red
    $counts.Failed += 1
}
$counts | ConvertTo-Json | Set-Content -Path $ResultPath
if ($counts.Failed -gt 0) { exit 1 }
