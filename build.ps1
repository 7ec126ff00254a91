#Requires -Version 7.2
<#
.SYNOPSIS
    Builds, lays out, documents, tests, benchmarks and runs the GpuVirt module.
.DESCRIPTION
    Tasks:
      Clean  removes build output.
      Build  compiles the module and lays it out by allow-list in out/GpuVirt, a folder Import-Module takes as is.
      Docs   turns docs/*.md (PlatyPS schema) into the MAML help inside the laid-out module.
      Package  builds, then publishes the laid-out module with PSResourceGet to the local file repository out/package
             (GpuVirt.<version>.nupkg), from a throw-away user profile so the user's repositories are left alone.
      Deps   installs the Debian packages the tests use when they are missing (as root, with apt-get).
      Test   runs every test: xunit (core), Pester (the cmdlets in a child pwsh) and the real-kernel suite (Pester in
             a QEMU guest); ends with 'N passed, N failed'.
      KernelTest  only the real-kernel suite.
      Run    builds the module and opens pwsh with it imported, showing this host and the sample host.
      Bench  measures inventory and vGPU queries on synthetic hosts of 256 to 4096 functions against lspci, and
             Import-Module, the doctor and the holder scan; writes out/bench/bench.md and bench.json and puts the
             tables into README.md.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Clean', 'Build', 'Docs', 'Package', 'Deps', 'Test', 'KernelTest', 'Run', 'Bench')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Run: print the inventories and exit instead of opening an interactive shell.
    [switch] $NoShell
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$RepoRoot = $PSScriptRoot
$OutDir = Join-Path $RepoRoot 'out'
$ModuleOut = Join-Path $OutDir 'GpuVirt'
$ResultsDir = Join-Path $OutDir 'test-results'
$PackageDir = Join-Path $OutDir 'package'
$SampleHost = Join-Path $OutDir 'sample-host'
$Manifest = Join-Path $RepoRoot 'GpuVirt.psd1'
$ModuleProject = Join-Path $RepoRoot 'src/GpuVirt.PowerShell/GpuVirt.PowerShell.csproj'
$FixturesProject = Join-Path $RepoRoot 'tests/GpuVirt.Fixtures/GpuVirt.Fixtures.csproj'
$AptPackages = Join-Path $RepoRoot 'tests/apt-packages.txt'

function Write-Step([string] $Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

function Invoke-Native {
    param([string] $File, [string[]] $Arguments)
    Write-Verbose ("Running: {0} {1}" -f $File, ($Arguments -join ' '))
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "'$File $($Arguments -join ' ')' failed with exit code $LASTEXITCODE" }
}

# The version's one source is <Version> in Directory.Build.props (the assembly's version); GpuVirt.psd1's ModuleVersion
# must say the same, or nothing is built.
function Get-ModuleVersion {
    $props = Join-Path $RepoRoot 'Directory.Build.props'
    $version = ([xml](Get-Content -Raw -LiteralPath $props)).Project.PropertyGroup.Version | Where-Object { $_ } | Select-Object -First 1
    $manifestVersion = (Import-PowerShellDataFile -Path $Manifest).ModuleVersion
    if ($version -ne $manifestVersion) {
        throw "GpuVirt.psd1 says ModuleVersion '$manifestVersion' but Directory.Build.props says Version '$version': make them the same."
    }
    $version
}

function Invoke-Clean {
    Write-Step 'Clean'
    foreach ($dir in @($OutDir) + (Get-ChildItem -Path (Join-Path $RepoRoot 'src'), (Join-Path $RepoRoot 'tests'), (Join-Path $RepoRoot 'tools') -Directory -Recurse -Include bin, obj -ErrorAction SilentlyContinue).FullName) {
        if ($dir -and (Test-Path $dir)) { Remove-Item -Recurse -Force $dir }
    }
}

function Invoke-Build {
    $version = Get-ModuleVersion
    Write-Step "Build GpuVirt $version ($Configuration)"
    Invoke-Native dotnet @('build', $ModuleProject, '-c', $Configuration, '-nologo', '-v:q', '-clp:NoSummary')
    $bin = Join-Path $RepoRoot "src/GpuVirt.PowerShell/bin/$Configuration/netstandard2.0"

    # The module folder holds exactly these files, nothing else that the build happened to produce.
    if (Test-Path $ModuleOut) { Remove-Item -Recurse -Force $ModuleOut }
    $null = New-Item -ItemType Directory -Force -Path (Join-Path $ModuleOut 'en-US')
    # CliWrap, and the one assembly that calls it, load in the module's own AssemblyLoadContext from dependencies/
    # (Core/ModuleLoadContext.cs), where pwsh's default context never looks: another module's CliWrap cannot conflict.
    $null = New-Item -ItemType Directory -Force -Path (Join-Path $ModuleOut 'dependencies')
    $allow = @(
        @{ From = $Manifest; To = 'GpuVirt.psd1' }
        @{ From = (Join-Path $RepoRoot 'src/GpuVirt.PowerShell/GpuVirt.Format.ps1xml'); To = 'GpuVirt.Format.ps1xml' }
        @{ From = (Join-Path $RepoRoot 'src/GpuVirt.PowerShell/GpuVirt.Types.ps1xml'); To = 'GpuVirt.Types.ps1xml' }
        @{ From = (Join-Path $bin 'GpuVirt.PowerShell.dll'); To = 'GpuVirt.PowerShell.dll' }
        @{ From = (Join-Path $bin 'GpuVirt.ProcessLauncher.dll'); To = 'dependencies/GpuVirt.ProcessLauncher.dll' }
        @{ From = (Join-Path $bin 'CliWrap.dll'); To = 'dependencies/CliWrap.dll' }
        @{ From = (Join-Path $RepoRoot 'LICENSE'); To = 'LICENSE' }
    )
    foreach ($item in $allow) { Copy-Item -LiteralPath $item.From -Destination (Join-Path $ModuleOut $item.To) }
    if ($Configuration -eq 'Release') {
        Invoke-ReadyToRun @((Join-Path $ModuleOut 'GpuVirt.PowerShell.dll'), (Join-Path $ModuleOut 'dependencies/GpuVirt.ProcessLauncher.dll'))
    }
    Invoke-Docs
    Write-Host "Module laid out in $ModuleOut"
}

# The module's own assemblies, compiled ahead of time (ReadyToRun) with the SDK's crossgen2 against the .NET runtime and
# the PowerShell that run this build: the first call in a new pwsh then runs compiled code instead of waiting for the
# JIT (measured by the Bench task's cold rows). The IL stays in each file, so any other runtime or architecture loads
# the same file and JITs it as before. CliWrap, not ours, is left as it ships.
function Invoke-ReadyToRun([string[]] $Assemblies) {
    $project = Join-Path $RepoRoot 'tools/GpuVirt.ReadyToRun/GpuVirt.ReadyToRun.csproj'
    $found = & dotnet msbuild $project -restore -t:Crossgen2Path -nologo -v:m
    if ($LASTEXITCODE -ne 0) { throw "Could not restore the ReadyToRun compiler: $($found -join [Environment]::NewLine)" }
    $crossgen = ($found | Where-Object { $_ -match 'crossgen2=(.+)$' } | Select-Object -Last 1) -replace '^\s*crossgen2=', ''
    if (-not $crossgen) { throw "dotnet msbuild $project -t:Crossgen2Path printed no crossgen2 path" }
    $arch = [System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture.ToString().ToLowerInvariant()
    $references = @(
        [System.Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()
        $PSHOME
        (Split-Path -Parent $PSHOME)
        (Join-Path $ModuleOut 'dependencies')
    ) | Where-Object { Get-ChildItem -LiteralPath $_ -Filter *.dll -File -ErrorAction SilentlyContinue | Select-Object -First 1 } |
        ForEach-Object { '-r:' + (Join-Path $_ '*.dll') }
    Write-Step "ReadyToRun: $($Assemblies.Count) assemblies for linux-$arch"
    $work = Join-Path $OutDir 'r2r'
    $null = New-Item -ItemType Directory -Force -Path $work
    foreach ($assembly in $Assemblies) {
        $compiled = Join-Path $work (Split-Path -Leaf $assembly)
        Invoke-Native $crossgen (@($assembly, "-o:$compiled", '--targetos:linux', "--targetarch:$arch", '-O') + $references) | Write-Verbose
        Move-Item -Force -LiteralPath $compiled -Destination $assembly
    }
    Remove-Item -Recurse -Force -LiteralPath $work
}

function Invoke-Docs {
    $builder = Join-Path $RepoRoot 'tools/GpuVirt.HelpBuilder/GpuVirt.HelpBuilder.csproj'
    if (-not (Test-Path $builder)) { return }
    Write-Step 'Docs: docs/*.md -> en-US MAML help'
    Invoke-Native dotnet @('run', '--project', $builder, '-c', $Configuration, '-v:q', '--', '--docs', (Join-Path $RepoRoot 'docs'), '--out', (Join-Path $ModuleOut 'en-US'))
}

# A local file repository holding GpuVirt.<version>.nupkg, made by PSResourceGet exactly as a Gallery publish would
# pack the laid-out module. PSResourceGet keeps its repository registrations in the user's profile, so it runs in a
# child pwsh whose HOME is a temporary directory: the user's own registrations are never read or changed.
function Invoke-Package {
    $version = Get-ModuleVersion
    Write-Step "Package GpuVirt $version (Publish-PSResource to $PackageDir)"
    Import-Module (Join-Path $RepoRoot 'tools/PwshProcess.psm1') -Force -Verbose:$false
    if (Test-Path $PackageDir) { Remove-Item -Recurse -Force $PackageDir }
    $null = New-Item -ItemType Directory -Force -Path $PackageDir
    $profileDir = New-ProfileDirectory (Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-package-' + [guid]::NewGuid().ToString('N')))
    try {
        $publish = @(
            '$ErrorActionPreference = ''Stop'''
            "Register-PSResourceRepository -Name GpuVirtBuild -Uri $(ConvertTo-PwshLiteral $PackageDir) -Trusted"
            "Publish-PSResource -Path $(ConvertTo-PwshLiteral $ModuleOut) -Repository GpuVirtBuild"
        ) -join "`n"
        Invoke-PwshInProfile -ProfileDirectory $profileDir -Command $publish | Write-Verbose
    }
    finally {
        Remove-Item -Recurse -Force $profileDir
    }
    $nupkg = Join-Path $PackageDir "GpuVirt.$version.nupkg"
    if (-not (Test-Path $nupkg)) { throw "Publish-PSResource made no $nupkg" }
    Write-Host "Package: $nupkg"
}

function Invoke-Deps {
    $needed = Get-Content $AptPackages, (Join-Path $RepoRoot 'tests/kernel/apt-packages.txt') | Where-Object { $_ -and -not $_.StartsWith('#') } | Sort-Object -Unique
    $missing = @($needed | Where-Object { -not (& dpkg-query -W -f '${Status}' $_ 2>$null | Select-String -Quiet 'install ok installed') })
    if ($missing.Count -gt 0) { Install-AptPackages $missing }
    Add-LibvirtQemuUser
    Add-SshdPrivilegeSeparationDirectory
}

# sshd started as root (the remoting tests start their own on 127.0.0.1) refuses to run without its privilege
# separation directory, which Debian's service unit creates at boot; a machine that never started the service lacks it.
function Add-SshdPrivilegeSeparationDirectory {
    if ((Test-Path /run/sshd) -or (& id -u) -ne '0') { return }
    Write-Step 'Deps: mkdir /run/sshd'
    $null = New-Item -ItemType Directory -Path /run/sshd
    Invoke-Native chmod @('0755', '/run/sshd')
}

# The embedded QEMU driver of the libvirt tests looks up the 'libvirt-qemu' user that Debian's libvirt-daemon-system
# package would create; the tests install only libvirt-daemon, so create the system user when it is missing.
function Add-LibvirtQemuUser {
    & getent passwd libvirt-qemu *> $null
    if ($LASTEXITCODE -eq 0) { return }
    if ((& id -u) -ne '0') {
        throw "The libvirt tests need the system user 'libvirt-qemu'. Create it (useradd --system --no-create-home --shell /usr/sbin/nologin libvirt-qemu) and run again."
    }
    Write-Step 'Deps: useradd --system libvirt-qemu'
    Invoke-Native useradd @('--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'libvirt-qemu')
}

function Install-AptPackages([string[]] $missing) {
    if ((& id -u) -ne '0' -or -not (Get-Command apt-get -ErrorAction SilentlyContinue)) {
        throw "The tests need these Debian packages: $($missing -join ' '). Install them (apt-get install $($missing -join ' ')) and run again."
    }
    Write-Step "Deps: apt-get install $($missing -join ' ')"
    $env:DEBIAN_FRONTEND = 'noninteractive'
    Invoke-Native apt-get @('update', '-qq')
    Invoke-Native apt-get (@('install', '-y', '-qq', '--no-install-recommends') + $missing)
}

function Get-PesterModule {
    $cache = (& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', ''
    $path = Join-Path $cache.Trim() 'pester/6.2.0/tools/Pester.psd1'
    if (-not (Test-Path $path)) { throw "Pester 6.2.0 is not in the NuGet cache ($path); restore tests/GpuVirt.Tests first." }
    $path
}

# The repository's untracked and changed files (git status), each with a hash of its content; $null outside a git tree.
function Get-TreeState {
    if (-not (Get-Command git -ErrorAction SilentlyContinue)) { return $null }
    $raw = (& git -C $RepoRoot status --porcelain=v1 -z --untracked-files=all 2>$null) -join "`n"
    if ($LASTEXITCODE -ne 0) { return $null }
    $state = [ordered]@{}
    $entries = $raw.Split([char]0)
    for ($i = 0; $i -lt $entries.Count; $i++) {
        $line = $entries[$i]
        if ($line.Length -lt 4) { continue }
        if ($line[0] -in 'R', 'C') { $i++ }   # a rename or copy is followed by its old path
        $path = $line.Substring(3)
        $full = Join-Path $RepoRoot $path
        $hash = if (Test-Path -LiteralPath $full -PathType Leaf) { (Get-FileHash -LiteralPath $full -Algorithm SHA256).Hash } else { '' }
        $state[$path] = "$($line.Substring(0, 2)) $hash"
    }
    $state
}

# The Test task leaves the tree as it found it, and a tree with changes is not a tested commit: after the run, every
# untracked or changed file is printed (marking which the run itself made) and counted as one failure.
function Test-TreeClean($Before) {
    $after = Get-TreeState
    if ($null -eq $after) { Write-Host 'Not a git working tree: the tree-clean check does not apply.'; return 0 }
    if ($after.Count -eq 0) { return 0 }
    Write-Host 'The working tree has untracked or changed files after the run:' -ForegroundColor Red
    foreach ($path in $after.Keys) {
        $why = if ($null -ne $Before -and $Before.Contains($path) -and $Before[$path] -eq $after[$path]) { 'already so before the run' } else { 'made by the run' }
        Write-Host ("  {0}  {1}  ({2})" -f $after[$path].Substring(0, 2), $path, $why) -ForegroundColor Red
    }
    1
}

function Invoke-Test {
    $treeBefore = Get-TreeState
    Invoke-Deps
    Invoke-Build
    Invoke-Package
    $null = New-Item -ItemType Directory -Force -Path $ResultsDir
    Get-ChildItem $ResultsDir -File | Remove-Item -Force

    Write-Step 'xunit: the core and the help builder'
    $xunit = @{ Passed = 0; Failed = 0 }
    foreach ($project in Get-ChildItem (Join-Path $RepoRoot 'tests') -Filter '*.Tests.csproj' -Recurse) {
        $trx = Join-Path $ResultsDir ($project.BaseName + '.trx')
        & dotnet test $project.FullName -c $Configuration -nologo -v:q --logger "trx;LogFileName=$trx" --logger 'console;verbosity=minimal'
        $exit = $LASTEXITCODE
        if (-not (Test-Path $trx)) { $xunit.Failed += 1; continue }
        $counters = ([xml](Get-Content -Raw $trx)).TestRun.ResultSummary.Counters
        $xunit.Passed += [int]$counters.passed
        $failedHere = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted + [int]$counters.notExecuted
        if ($exit -ne 0 -and $failedHere -eq 0) { $failedHere = 1 }
        $xunit.Failed += $failedHere
    }

    Write-Step 'Pester: the cmdlets, in a child pwsh against the laid-out module'
    $pesterJson = Join-Path $ResultsDir 'pester.json'
    $fixtures = Join-Path $RepoRoot "tests/GpuVirt.Fixtures/bin/$Configuration/net10.0/GpuVirt.Fixtures.dll"
    & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $RepoRoot 'tests/Pester/Invoke-PesterSuite.ps1') `
        -PesterPath (Get-PesterModule) -ModulePath $ModuleOut -FixturesPath $fixtures -ResultPath $pesterJson -PackagePath $PackageDir
    $pester = @{ Passed = 0; Failed = 1 }
    if (Test-Path $pesterJson) { $pester = Get-Content -Raw $pesterJson | ConvertFrom-Json -AsHashtable }
    if ($LASTEXITCODE -ne 0 -and $pester.Failed -eq 0) { $pester.Failed = 1 }

    $kernel = Invoke-KernelTest
    $dirty = Test-TreeClean $treeBefore

    $passed = $xunit.Passed + $pester.Passed + $kernel.Passed
    $failed = $xunit.Failed + $pester.Failed + $kernel.Failed + $dirty
    Write-Host ("xunit: {0} passed, {1} failed; Pester: {2} passed, {3} failed; real kernel: {4} passed, {5} failed; tree clean: {6}" -f `
        $xunit.Passed, $xunit.Failed, $pester.Passed, $pester.Failed, $kernel.Passed, $kernel.Failed, $(if ($dirty) { 'no' } else { 'yes' }))
    Write-Output ("{0} passed, {1} failed" -f $passed, $failed)
    if ($failed -gt 0) { exit 1 }
}

function Invoke-KernelTest {
    # Boots Debian's 6.1 kernel under QEMU and runs tests/kernel/RealKernel.Tests.ps1 in the guest against its real
    # sysfs, with this build of the module (tests/kernel/README.md). Needs the module and fixtures built.
    Write-Step 'Real kernel: Pester inside a QEMU guest (tests/kernel)'
    $results = Join-Path $ResultsDir 'kernel'
    if (Test-Path $results) { Remove-Item -Recurse -Force $results }
    $null = New-Item -ItemType Directory -Force -Path $results
    & (Join-Path $RepoRoot 'tests/kernel/run.sh') --results $results (Join-Path $RepoRoot 'tests/kernel/cmdlets.sh') | Out-Host
    $exit = $LASTEXITCODE
    $counts = @{ Passed = 0; Failed = 1 }
    $json = Join-Path $results 'pester.json'
    if (Test-Path $json) { $counts = Get-Content -Raw $json | ConvertFrom-Json -AsHashtable }
    if ($exit -ne 0 -and $counts.Failed -eq 0) { $counts.Failed = 1 }
    $counts
}

function New-SampleHost {
    Invoke-Native dotnet @('build', $FixturesProject, '-c', $Configuration, '-nologo', '-v:q', '-clp:NoSummary')
    Add-Type -Path (Join-Path $RepoRoot "tests/GpuVirt.Fixtures/bin/$Configuration/net10.0/GpuVirt.Fixtures.dll")
    if (Test-Path $SampleHost) { Remove-Item -Recurse -Force $SampleHost }
    $null = [GpuVirt.Fixtures.SampleHosts]::Seed($SampleHost).Build()
}

function Invoke-Run {
    Invoke-Build
    New-SampleHost
    $show = @"
Import-Module '$ModuleOut'
function Show([string] `$Title) {
    Write-Host "``n`$Title" -ForegroundColor Cyan
    `$items = @(`$input)
    if (`$items.Count) { `$items | Format-Table | Out-String -Width ([Math]::Max(160, `$Host.UI.RawUI.WindowSize.Width)) | Write-Host }
    else { Write-Host '  (none)' }
}
Write-Host "``nThis host (/):" -ForegroundColor Green
Get-PciDevice | Show 'PCI functions: Get-PciDevice'
Get-GpuDevice | Show 'GPUs: Get-GpuDevice'
Write-Host "``nSample host ($SampleHost), the seed's Quadro K4000 and Tesla P4:" -ForegroundColor Green
Get-PciDevice -Root '$SampleHost' | Show "PCI functions: Get-PciDevice -Root '$SampleHost'"
Get-GpuDevice -Root '$SampleHost' | Show "GPUs: Get-GpuDevice -Root '$SampleHost'"
Get-GpuDevice -Root '$SampleHost' | Get-IommuGroup | Show "IOMMU groups of the GPUs: Get-GpuDevice -Root '$SampleHost' | Get-IommuGroup"
Get-GpuDevice -Root '$SampleHost' | Get-VgpuType | Show "vGPU types of the GPUs: Get-GpuDevice -Root '$SampleHost' | Get-VgpuType"
Write-Host "``nTry: Get-Help about_GpuVirt; Get-GpuDevice -Root '$SampleHost' | Get-IommuGroup" -ForegroundColor Green
"@
    $interactive = -not $NoShell -and -not [Console]::IsInputRedirected
    $pwshArgs = @('pwsh', '-NoProfile') + $(if ($interactive) { @('-NoExit') } else { @('-NonInteractive') }) + @('-Command', $show)
    & dotnet @pwshArgs
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

function Invoke-Bench {
    Invoke-Deps
    Invoke-Build
    Invoke-Native dotnet @('build', $FixturesProject, '-c', $Configuration, '-nologo', '-v:q', '-clp:NoSummary')
    & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $RepoRoot 'tests/Bench/Invoke-Benchmark.ps1') `
        -ModulePath $ModuleOut -FixturesPath (Join-Path $RepoRoot "tests/GpuVirt.Fixtures/bin/$Configuration/net10.0/GpuVirt.Fixtures.dll") `
        -OutDir (Join-Path $OutDir 'bench') -ReadmePath (Join-Path $RepoRoot 'README.md')
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

Push-Location $RepoRoot
try {
    foreach ($t in $Task) {
        switch ($t) {
            'Clean' { Invoke-Clean }
            'Build' { Invoke-Build }
            'Docs' { Invoke-Docs }
            'Package' { Invoke-Build; Invoke-Package }
            'Deps' { Invoke-Deps }
            'Test' { Invoke-Test }
            'KernelTest' { Invoke-Deps; Invoke-Build; Invoke-Native dotnet @('build', $FixturesProject, '-c', $Configuration, '-nologo', '-v:q', '-clp:NoSummary'); $k = Invoke-KernelTest; "{0} passed, {1} failed" -f $k.Passed, $k.Failed; if ($k.Failed) { exit 1 } }
            'Run' { Invoke-Run }
            'Bench' { Invoke-Bench }
        }
    }
}
finally {
    Pop-Location
}
