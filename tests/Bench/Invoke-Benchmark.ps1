<#
.SYNOPSIS
    Measures the inventory and vGPU queries on synthetic kernel-shaped hosts of about 256, 1024 and 4096 PCI functions,
    against one lspci process on the same trees, and on this machine's own /sys.
.DESCRIPTION
    Warm numbers are the median (and the spread: min and max) of -Runs calls in this one pwsh process; cold numbers are
    the median of -ColdRuns first calls, each in a new pwsh process (pci.ids parsed in that call). Ratios are measured in the same run, which is
    what counts on a shared, noisy machine. Writes bench.md and bench.json to -OutDir and prints the table.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $FixturesPath,
    [Parameter(Mandatory)] [string] $OutDir,
    [int] $Runs = 21,
    # New processes for each cold number (its median is reported).
    [int] $ColdRuns = 5,
    # A file whose text between <!-- bench:begin --> and <!-- bench:end --> is replaced by the tables (the README).
    [string] $ReadmePath,
    [int[]] $Sizes = @(256, 1024, 4096)
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$ModulePath = (Resolve-Path -LiteralPath $ModulePath).Path
# The load average (1, 5, 15 minutes) when the measuring starts: a shared machine's numbers are read with it.
$loadStart = (Get-Content /proc/loadavg -Raw).Split(' ')[0..2] -join ' '

Add-Type -Path $FixturesPath
Import-Module $ModulePath -Force
$null = New-Item -ItemType Directory -Force -Path $OutDir
$treesDir = Join-Path $OutDir 'trees'

$gpusFor = @{ 256 = 8; 1024 = 32; 4096 = 64 }
$pipelines = [ordered]@{
    'Get-PciDevice'                  = { param($r) Get-PciDevice -Root $r }
    'Get-GpuDevice'                  = { param($r) Get-GpuDevice -Root $r }
    'Get-GpuDevice | Get-IommuGroup' = { param($r) Get-GpuDevice -Root $r | Get-IommuGroup -Root $r }
    'Get-GpuDevice | Get-VgpuType'   = { param($r) Get-GpuDevice -Root $r | Get-VgpuType -Root $r }
}

# The median (the upper one of an even count), the least and the most of some times, rounded to Digits.
function Get-Spread($Values, [int] $Digits) {
    $sorted = @($Values | Sort-Object)
    [pscustomobject]@{
        Median = [math]::Round($sorted[[int][math]::Floor($sorted.Count / 2)], $Digits)
        Min    = [math]::Round($sorted[0], $Digits)
        Max    = [math]::Round($sorted[-1], $Digits)
    }
}

function Measure-Ms([scriptblock] $Action, [int] $Count) {
    $times = [System.Collections.Generic.List[double]]::new()
    for ($i = 0; $i -lt $Count; $i++) {
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $null = & $Action
        $sw.Stop()
        $times.Add($sw.Elapsed.TotalMilliseconds)
    }
    Get-Spread $times 2
}

function Measure-Lspci([string[]] $LspciArgs) {
    Measure-Ms { & lspci @LspciArgs 2>$null | Out-Null } $Runs
}

# What a child pwsh runs to report its stopwatch ($sw) in milliseconds, as the last line of its output. It writes straight
# to the console: output through the pipeline would make the child pay for PowerShell's formatter as well.
$printElapsed = '[Console]::Out.WriteLine($sw.Elapsed.TotalMilliseconds.ToString([cultureinfo]::InvariantCulture))'

function Measure-Cold([string] $Root, [string] $Pipeline) {
    # The first call in a new process: module load excluded, pci.ids parse and JIT included. The median of -ColdRuns
    # new processes, each its own sample.
    $script = @"
Import-Module '$ModulePath'
`$sw = [Diagnostics.Stopwatch]::StartNew()
`$null = & { $($pipelines[$Pipeline].ToString()) } '$Root'
`$sw.Stop()
$printElapsed
"@
    $times = for ($i = 0; $i -lt $ColdRuns; $i++) {
        $out = & dotnet pwsh -NoProfile -NonInteractive -Command $script
        if ($LASTEXITCODE -ne 0) { throw "The cold run of $Pipeline on $Root exited with $LASTEXITCODE" }
        [double]::Parse(@($out)[-1], [cultureinfo]::InvariantCulture)
    }
    Get-Spread $times 2
}

$rows = [System.Collections.Generic.List[object]]::new()
foreach ($size in $Sizes) {
    $root = Join-Path $treesDir "host-$size"
    if (-not (Test-Path (Join-Path $root 'sys'))) {
        Write-Host "Generating a synthetic host of $size functions ($($gpusFor[$size]) GPUs, 16 mdev types each) ..."
        $null = [GpuVirt.Fixtures.SampleHosts]::Synthetic($root, $size, $gpusFor[$size], 16).Build()
    }
    $functions = (Get-ChildItem (Join-Path $root 'sys/bus/pci/devices')).Count
    $lspci = Measure-Lspci @('-A', 'linux-sysfs', '-O', "sysfs.path=$root/sys/bus/pci", '-Dnn')
    foreach ($name in $pipelines.Keys) {
        $block = $pipelines[$name]
        $null = & $block $root   # warm up: JIT and pci.ids
        $warm = Measure-Ms { & $block $root } $Runs
        $cold = Measure-Cold $root $name
        $rows.Add([pscustomobject]@{
            Host = "synthetic-$size"; Functions = $functions; Pipeline = $name
            WarmMedianMs = $warm.Median; WarmMinMs = $warm.Min; WarmMaxMs = $warm.Max; ColdMs = $cold.Median; ColdMinMs = $cold.Min; ColdMaxMs = $cold.Max
            LspciMedianMs = $lspci.Median; RatioToLspci = [math]::Round($warm.Median / $lspci.Median, 2)
        })
        Write-Host ("{0,-16} {1,-32} warm {2,8} ms  cold {3,8} ms  lspci {4,7} ms" -f "synthetic-$size", $name, $warm.Median, $cold.Median, $lspci.Median)
    }
}

# This machine's own /sys: warm Get-PciDevice against one plain `lspci -Dnn` process.
$null = Get-PciDevice
$liveWarm = Measure-Ms { Get-PciDevice } $Runs
$liveLspci = Measure-Lspci @('-Dnn')
$liveCold = Measure-Cold '/' 'Get-PciDevice'
$rows.Add([pscustomobject]@{
    Host = 'this machine (/sys)'; Functions = (Get-ChildItem /sys/bus/pci/devices).Count; Pipeline = 'Get-PciDevice'
    WarmMedianMs = $liveWarm.Median; WarmMinMs = $liveWarm.Min; WarmMaxMs = $liveWarm.Max; ColdMs = $liveCold.Median; ColdMinMs = $liveCold.Min; ColdMaxMs = $liveCold.Max
    LspciMedianMs = $liveLspci.Median; RatioToLspci = [math]::Round($liveWarm.Median / $liveLspci.Median, 3)
})

# Import-Module over a pwsh start. The starts alternate, so the machine's load falls on each alike:
# - a bare start (`exit 0`, which runs no command), and Import-Module of an empty manifest, of GpuVirt without its format
#   file and of GpuVirt in such a start: there the import is also the process's first command, and a first command of
#   any kind compiles PowerShell's own command machinery (the "first command" row shows what Get-Date alone costs);
# - a started pwsh, one that has run a command (as every interactive or scripted session has before it imports), and
#   Import-Module GpuVirt in it, also timed inside the process.
$floorDir = Join-Path $OutDir 'import-floor'
if (Test-Path $floorDir) { Remove-Item -Recurse -Force -LiteralPath $floorDir }
$null = New-Item -ItemType Directory -Force -Path (Join-Path $floorDir 'Empty')
$emptyManifest = Join-Path $floorDir 'Empty/Empty.psd1'
Set-Content -LiteralPath $emptyManifest -Value "@{ ModuleVersion = '1.0' }"
$noFormat = Join-Path $floorDir 'GpuVirt'
Copy-Item -Recurse -LiteralPath $ModulePath -Destination $noFormat
$noFormatManifest = Join-Path $noFormat 'GpuVirt.psd1'
$manifestText = [IO.File]::ReadAllText($noFormatManifest)
$withoutFormats = [regex]::Replace($manifestText, '(?m)^\s*FormatsToProcess\s*=.*\r?\n', '')
if ($withoutFormats -eq $manifestText) { throw "$noFormatManifest has no FormatsToProcess line to leave out" }
[IO.File]::WriteAllText($noFormatManifest, $withoutFormats)
$timedImport = "`$sw = [Diagnostics.Stopwatch]::StartNew(); Import-Module '$ModulePath'; $printElapsed; exit 0"
$starts = [ordered]@{
    'bare pwsh start (`exit 0`)'                        = @{ Command = 'exit 0'; Over = $null }
    'Import-Module of an empty manifest'                 = @{ Command = "Import-Module '$emptyManifest'; exit 0"; Over = 'bare' }
    'Import-Module GpuVirt without its format file'      = @{ Command = "Import-Module '$noFormatManifest'; exit 0"; Over = 'bare' }
    'Import-Module GpuVirt'                              = @{ Command = $timedImport; Over = 'bare' }
    'first command (`$null = Get-Date`)'                 = @{ Command = '$null = Get-Date; exit 0'; Over = 'bare' }
    'first command, then Import-Module GpuVirt'          = @{ Command = "`$null = Get-Date; $timedImport"; Over = 'started' }
}
$startTimes = [ordered]@{}
$insideTimes = [ordered]@{}
foreach ($name in $starts.Keys) { $startTimes[$name] = [System.Collections.Generic.List[double]]::new(); $insideTimes[$name] = [System.Collections.Generic.List[double]]::new() }
for ($i = 0; $i -lt 11; $i++) {
    foreach ($name in $starts.Keys) {
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $out = @(& dotnet pwsh -NoProfile -NonInteractive -Command $starts[$name].Command)
        $sw.Stop()
        if ($LASTEXITCODE -ne 0) { throw "pwsh -Command `"$($starts[$name].Command)`" exited with $LASTEXITCODE" }
        $startTimes[$name].Add($sw.Elapsed.TotalMilliseconds)
        if ($out.Count) { $insideTimes[$name].Add([double]::Parse($out[-1], [cultureinfo]::InvariantCulture)) }
    }
}
$startRows = [System.Collections.Generic.List[object]]::new()
foreach ($name in $starts.Keys) {
    $spread = Get-Spread $startTimes[$name] 1
    $inside = if ($insideTimes[$name].Count) { (Get-Spread $insideTimes[$name] 1).Median } else { $null }
    $startRows.Add([pscustomobject]@{ Start = $name; MedianMs = $spread.Median; MinMs = $spread.Min; MaxMs = $spread.Max; Over = $starts[$name].Over; ImportInsideMs = $inside })
}
$bare = $startRows[0]
$started = $startRows | Where-Object Start -like 'first command (*'
foreach ($row in $startRows) {
    $base = switch ($row.Over) { 'bare' { $bare } 'started' { $started } default { $row } }
    $row | Add-Member -NotePropertyName OverMs -NotePropertyValue ([math]::Round($row.MedianMs - $base.MedianMs, 1))
}
$withModule = $startRows | Where-Object Start -eq 'Import-Module GpuVirt'
$inStarted = $startRows | Where-Object Start -eq 'first command, then Import-Module GpuVirt'
$importMs = $inStarted.OverMs
$importBareMs = $withModule.OverMs
Write-Host ($startRows | Format-Table -AutoSize | Out-String)

# System calls per function: one warm Get-PciDevice on the 1024-function host, counted by strace between two marker
# calls in the same process, against a whole lspci -Dnn process on the same tree (its start and pci.ids included).
function Get-SyscallCounts([string] $TraceFile, [string] $From, [string] $To) {
    $counts = @{}
    $on = -not $From
    foreach ($line in [IO.File]::ReadLines($TraceFile)) {
        if ($From -and $line.Contains($From)) { $on = $true; continue }
        if ($To -and $line.Contains($To)) { break }
        if (-not $on -or $line.Contains('resumed>')) { continue }
        if ($line -match '^\d+\s+(\w+)\(') { $counts[$Matches[1]] = 1 + [int]$counts[$Matches[1]] }
    }
    $counts
}
$syscallRows = [System.Collections.Generic.List[object]]::new()
if (Get-Command strace -CommandType Application -ErrorAction Ignore) {
    $sysRoot = Join-Path $treesDir 'host-1024'
    $sysFunctions = (Get-ChildItem (Join-Path $sysRoot 'sys/bus/pci/devices')).Count
    $begin = Join-Path $OutDir 'syscalls-begin.marker'
    $end = Join-Path $OutDir 'syscalls-end.marker'
    $traceFile = Join-Path $OutDir 'strace-gpuvirt.txt'
    $script = "Import-Module '$ModulePath'; for (`$i = 0; `$i -lt 10; `$i++) { `$null = Get-PciDevice -Root '$sysRoot' }; Start-Sleep -Milliseconds 500; " +
        "`$null = [IO.File]::Exists('$begin'); `$null = Get-PciDevice -Root '$sysRoot'; `$null = [IO.File]::Exists('$end')"
    & strace -f -qq -o $traceFile dotnet pwsh -NoProfile -NonInteractive -Command $script | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "strace of Get-PciDevice exited with $LASTEXITCODE" }
    $ours = Get-SyscallCounts $traceFile $begin $end
    $lspciTrace = Join-Path $OutDir 'strace-lspci.txt'
    & strace -f -qq -o $lspciTrace lspci -A linux-sysfs -O "sysfs.path=$sysRoot/sys/bus/pci" -Dnn | Out-Null
    $theirs = Get-SyscallCounts $lspciTrace $null $null
    foreach ($entry in @(@{ Name = 'Get-PciDevice (one warm call)'; Counts = $ours }, @{ Name = 'lspci -Dnn (the whole process)'; Counts = $theirs })) {
        $total = ($entry.Counts.Values | Measure-Object -Sum).Sum
        $top = $entry.Counts.GetEnumerator() | Sort-Object Value -Descending | Select-Object -First 8 |
            ForEach-Object { '{0} {1}' -f $_.Key, [math]::Round($_.Value / $sysFunctions, 2) }
        $syscallRows.Add([pscustomobject]@{ What = $entry.Name; Functions = $sysFunctions; PerFunction = [math]::Round($total / $sysFunctions, 2); Calls = ($top -join ', ') })
    }
    Remove-Item -LiteralPath $traceFile, $lspciTrace -ErrorAction SilentlyContinue
    Write-Host ($syscallRows | Format-Table -AutoSize | Out-String -Width 220)
}

# Several hostdevs attached to one guest in one pipeline: one virsh process for the attach, not one per device.
# Measured on the embedded QEMU driver (qemu:///embed) with a defined, shut-off guest.
$env:LIBVIRT_LOG_FILTERS = '4:*'
# Under a short temporary directory: the embedded driver's QMP socket path must fit in 108 bytes, whatever the checkout path.
$embedDir = Join-Path ([IO.Path]::GetTempPath()) ('gvb' + [IO.Path]::GetRandomFileName().Substring(0, 6))
$null = New-Item -ItemType Directory -Path $embedDir
$uri = [GpuVirt.Fixtures.LibvirtFixture]::PrepareEmbedRoot((Join-Path $embedDir 'root'))
$domainFile = [GpuVirt.Fixtures.LibvirtFixture]::WriteDomain((Join-Path $embedDir 'defs'), 'bench-vm', $false, 20)
& virsh -c $uri define --file $domainFile | Out-Null
if ($LASTEXITCODE -ne 0) { throw "virsh define failed on $uri" }
$gpuRoot = Join-Path $treesDir 'host-1024'
$benchGpus = @(Get-GpuDevice -Root $gpuRoot | Select-Object -First 16)
$attachRows = [System.Collections.Generic.List[object]]::new()
foreach ($count in 1, 16) {
    $times = [System.Collections.Generic.List[double]]::new()
    $virshRuns = 0
    for ($i = 0; $i -lt 5; $i++) {
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $verbose = $benchGpus[0..($count - 1)] | Add-GpuHostdev -Domain bench-vm -Connect $uri -Root $gpuRoot -Confirm:$false -WarningAction SilentlyContinue -Verbose 4>&1
        $sw.Stop()
        $times.Add($sw.Elapsed.TotalMilliseconds)
        $virshRuns = @($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Running: virsh *' }).Count
        $attached = @(Get-GpuHostdev -Domain bench-vm -Connect $uri)
        if ($attached.Count -ne $count) { throw "expected $count hostdevs in bench-vm, found $($attached.Count)" }
        $attached | Remove-GpuHostdev -Connect $uri -Confirm:$false
    }
    $median = [math]::Round(($times | Sort-Object)[2], 1)
    $attachRows.Add([pscustomobject]@{ Devices = $count; MedianMs = $median; VirshProcesses = $virshRuns })
    Write-Host ("Add-GpuHostdev, {0,2} device(s): {1} ms, {2} virsh process(es)" -f $count, $median, $virshRuns)
}

Remove-Item -Recurse -Force -LiteralPath $embedDir -ErrorAction SilentlyContinue

# The safety and readiness commands: the whole-host doctor on the synthetic hosts, all IOMMU groups with what the
# host needs in each, and the scan of /proc for the processes that hold a device (Remove-VgpuDevice looks before it
# writes) on the seed host in use with 500 and 2000 more processes of ten descriptors each.
$extraRows = [System.Collections.Generic.List[object]]::new()
foreach ($size in $Sizes | Where-Object { $_ -ge 1024 }) {
    $root = Join-Path $treesDir "host-$size"
    foreach ($entry in @(
            @{ Name = 'Test-GpuVirtHost'; Block = { param($r) Test-GpuVirtHost -Root $r -Connect 'test:///default' } },
            @{ Name = 'Get-IommuGroup (all, host-critical)'; Block = { param($r) Get-IommuGroup -Root $r } })) {
        $block = $entry.Block
        $null = & $block $root
        $warm = Measure-Ms { & $block $root } ([math]::Max(5, [int]($Runs / 3)))
        $extraRows.Add([pscustomobject]@{ Command = $entry.Name; Host = "synthetic-$size"; Scale = $size; MedianMs = $warm.Median; MinMs = $warm.Min; MaxMs = $warm.Max })
        Write-Host ("{0,-40} synthetic-{1,-5} {2,8} ms" -f $entry.Name, $size, $warm.Median)
    }
}
foreach ($processes in 500, 2000) {
    $root = Join-Path $treesDir "in-use-$processes"
    if (-not (Test-Path (Join-Path $root 'sys'))) {
        $builder = [GpuVirt.Fixtures.SampleHosts]::InUse($root)
        for ($i = 0; $i -lt $processes; $i++) {
            $fds = [string[]]@('/dev/null', '/dev/pts/0', '/dev/pts/0', "/tmp/log$i", 'socket:[1234]', 'pipe:[99]', '/dev/urandom', "/var/lib/app/$i.db", 'anon_inode:[eventfd]', '/dev/null')
            $null = $builder.Usage.Process(20000 + $i, 'worker', [string[]]@('/usr/bin/worker', "--id=$i"), $fds)
        }
        $null = $builder.Build()
    }
    $uuid = [GpuVirt.Fixtures.SampleHosts]::InUseMdev
    $scan = { param($r) Remove-VgpuDevice $uuid -Root $r -WhatIf -ErrorAction SilentlyContinue -ErrorVariable scanErrors 6>$null; $scanErrors }
    $found = & $scan $root
    if (-not ($found | Where-Object { $_.FullyQualifiedErrorId -like 'VgpuDeviceBusy*' })) { throw "the holder scan of $processes processes did not find the guest holding $uuid" }
    $warm = Measure-Ms { & $scan $root } ([math]::Max(5, [int]($Runs / 3)))
    $extraRows.Add([pscustomobject]@{ Command = 'holder scan (Remove-VgpuDevice -WhatIf)'; Host = "seed in use + $processes processes"; Scale = $processes; MedianMs = $warm.Median; MinMs = $warm.Min; MaxMs = $warm.Max })
    Write-Host ("{0,-40} {1,-5} processes {2,8} ms" -f 'holder scan', $processes, $warm.Median)
}

# Targets.
$targets = [System.Collections.Generic.List[object]]::new()
$live = $rows | Where-Object Host -eq 'this machine (/sys)'
$targets.Add([pscustomobject]@{ Target = 'warm Get-PciDevice on /sys <= 0.1 x lspci -Dnn'; Measured = "$($live.RatioToLspci) x"; Met = $live.RatioToLspci -le 0.1 })
$limits = @{ 'Get-PciDevice' = 1.0; 'Get-GpuDevice' = 0.5; 'Get-GpuDevice | Get-IommuGroup' = 1.0; 'Get-GpuDevice | Get-VgpuType' = 1.0 }
foreach ($size in $Sizes | Where-Object { $_ -ge 1024 }) {
    foreach ($name in $pipelines.Keys) {
        $row = $rows | Where-Object { $_.Host -eq "synthetic-$size" -and $_.Pipeline -eq $name }
        $targets.Add([pscustomobject]@{ Target = "warm $name on $size <= $($limits[$name]) x lspci"; Measured = "$($row.RatioToLspci) x"; Met = $row.RatioToLspci -le $limits[$name] })
        $coldRatio = [math]::Round($row.ColdMs / $row.LspciMedianMs, 2)
        $targets.Add([pscustomobject]@{ Target = "cold $name on $size <= 2 x lspci"; Measured = "$coldRatio x"; Met = $coldRatio -le 2 })
    }
}
foreach ($name in $pipelines.Keys) {
    $r1k = @($rows | Where-Object { $_.Host -eq 'synthetic-1024' -and $_.Pipeline -eq $name })
    $r4k = @($rows | Where-Object { $_.Host -eq 'synthetic-4096' -and $_.Pipeline -eq $name })
    if ($r1k.Count -eq 1 -and $r4k.Count -eq 1) {
        $ratio = [math]::Round($r4k[0].WarmMedianMs / $r1k[0].WarmMedianMs, 2)
        $targets.Add([pscustomobject]@{ Target = "$name 4096 <= 4.5 x 1024"; Measured = "$ratio x"; Met = $ratio -le 4.5 })
    }
}
foreach ($command in $extraRows.Command | Select-Object -Unique) {
    $pair = @($extraRows | Where-Object Command -eq $command | Sort-Object Scale)
    if ($pair.Count -lt 2) { continue }
    $grow = $pair[1].Scale / $pair[0].Scale
    $ratio = [math]::Round($pair[1].MedianMs / $pair[0].MedianMs, 2)
    $targets.Add([pscustomobject]@{ Target = "$command stays linear: $($pair[1].Scale) <= $($grow * 1.125) x $($pair[0].Scale)"; Measured = "$ratio x"; Met = $ratio -le $grow * 1.125 })
}
$one = $attachRows | Where-Object Devices -eq 1
$sixteen = $attachRows | Where-Object Devices -eq 16
$targets.Add([pscustomobject]@{ Target = 'Add-GpuHostdev: 16 devices use as many virsh processes as 1'; Measured = "1 device: $($one.VirshProcesses) processes, $($one.MedianMs) ms; 16 devices: $($sixteen.VirshProcesses) processes, $($sixteen.MedianMs) ms"; Met = $sixteen.VirshProcesses -eq $one.VirshProcesses })
$targets.Add([pscustomobject]@{ Target = 'Import-Module <= 100 ms over a started pwsh (one command run first)'; Measured = "$importMs ms (started $($started.MedianMs) ms, with the import $($inStarted.MedianMs) ms; timed inside the process: $($inStarted.ImportInsideMs) ms)"; Met = $importMs -le 100 })
$targets.Add([pscustomobject]@{ Target = 'Import-Module <= 100 ms over a bare pwsh start (`exit 0`: the import is the first command)'; Measured = "$importBareMs ms (bare $($bare.MedianMs) ms, with the import $($withModule.MedianMs) ms; timed inside: $($withModule.ImportInsideMs) ms; a first Get-Date alone: $($started.OverMs) ms, an empty manifest alone: $($startRows[1].OverMs) ms)"; Met = $importBareMs -le 100 })

$rows | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
$extraRows | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
$targets | Format-Table -AutoSize | Out-String -Width 200 | Write-Host

$cpu = (Get-Content /proc/cpuinfo | Select-String -Pattern '^model name' | Select-Object -First 1).Line -replace '^model name\s*:\s*', ''
$md = [System.Text.StringBuilder]::new()
$loadEnd = (Get-Content /proc/loadavg -Raw).Split(' ')[0..2] -join ' '
$null = $md.AppendLine("Measured $(Get-Date -Format 'yyyy-MM-dd') on $([Environment]::ProcessorCount) cores ($cpu), $Runs warm runs each; load average $loadStart at the start, $loadEnd at the end.").AppendLine()
$null = $md.AppendLine('| host | functions | pipeline | warm median ms | warm min–max ms | cold median ms | cold min–max ms | lspci ms | warm / lspci |')
$null = $md.AppendLine('|---|---:|---|---:|---:|---:|---:|---:|---:|')
foreach ($r in $rows) { $null = $md.AppendLine("| $($r.Host) | $($r.Functions) | ``$($r.Pipeline -replace '\|', '\|')`` | $($r.WarmMedianMs) | $($r.WarmMinMs)–$($r.WarmMaxMs) | $($r.ColdMs) | $($r.ColdMinMs)–$($r.ColdMaxMs) | $($r.LspciMedianMs) | $($r.RatioToLspci) |") }
$null = $md.AppendLine().AppendLine('| command | host | warm median ms | warm min–max ms |').AppendLine('|---|---|---:|---:|')
foreach ($r in $extraRows) { $null = $md.AppendLine("| $($r.Command) | $($r.Host) | $($r.MedianMs) | $($r.MinMs)–$($r.MaxMs) |") }
$null = $md.AppendLine().AppendLine('| pwsh start (11 of each, alternating) | median ms | min–max ms | over ms | over | Import-Module timed inside ms |').AppendLine('|---|---:|---:|---:|---|---:|')
foreach ($r in $startRows) {
    $overWhat = switch ($r.Over) { 'bare' { 'bare start' } 'started' { 'first command' } default { '' } }
    $null = $md.AppendLine("| $($r.Start) | $($r.MedianMs) | $($r.MinMs)–$($r.MaxMs) | $($r.OverMs) | $overWhat | $($r.ImportInsideMs) |")
}
if ($syscallRows.Count) {
    $null = $md.AppendLine().AppendLine('| system calls (strace -f) | functions | per function | most frequent, per function |').AppendLine('|---|---:|---:|---|')
    foreach ($r in $syscallRows) { $null = $md.AppendLine("| $($r.What) | $($r.Functions) | $($r.PerFunction) | $($r.Calls) |") }
}
$null = $md.AppendLine().AppendLine('| target | measured | met |').AppendLine('|---|---|---|')
foreach ($t in $targets) { $null = $md.AppendLine("| $($t.Target -replace '\|', '\|') | $($t.Measured) | $(if ($t.Met) { 'yes' } else { 'no' }) |") }
Set-Content -Path (Join-Path $OutDir 'bench.md') -Value $md.ToString()
[ordered]@{ Rows = $rows; Extra = $extraRows; Attach = $attachRows; Starts = $startRows; Syscalls = $syscallRows; Targets = $targets; ImportModuleMs = $importMs; ImportModuleOverBareMs = $importBareMs; BarePwshMs = $bare.MedianMs; LoadAverage = @($loadStart, $loadEnd) } | ConvertTo-Json -Depth 4 | Set-Content (Join-Path $OutDir 'bench.json')
Write-Host "Wrote $(Join-Path $OutDir 'bench.md') and bench.json"
if ($ReadmePath) {
    $text = [IO.File]::ReadAllText($ReadmePath)
    $begin = '<!-- bench:begin -->'
    $end = '<!-- bench:end -->'
    $b = $text.IndexOf($begin)
    $e = $text.IndexOf($end)
    if ($b -lt 0 -or $e -lt $b) { throw "$ReadmePath has no $begin ... $end section for the tables" }
    $text = $text.Substring(0, $b + $begin.Length) + "`n" + $md.ToString().TrimEnd("`n") + "`n" + $text.Substring($e)
    [IO.File]::WriteAllText($ReadmePath, $text)
    Write-Host "Put the tables into $ReadmePath"
}
