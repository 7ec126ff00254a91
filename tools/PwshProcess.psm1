# How to start another pwsh like the running one, and how to run one whose user profile is a given directory.
# build.ps1 (the Package task) and the Pester tests (install, remoting) use it, so that PSResourceGet's repository
# registrations and its CurrentUser scope are those of a throw-away directory, never the user's own.

function Get-PwshCommandLine {
    <#
    .SYNOPSIS
        The program and leading arguments that start the pwsh running this script: the pwsh executable itself, or
        the dotnet host and pwsh.dll when pwsh runs as a dotnet tool (dotnet pwsh).
    #>
    $process = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') {
        return @($process, (Join-Path $PSHOME 'pwsh.dll'))
    }
    @($process)
}

function New-ProfileDirectory {
    <#
    .SYNOPSIS
        Makes an empty user profile (HOME) for a child pwsh: the data, config and cache folders .NET and PSResourceGet
        look for (a missing one makes .NET report no folder, and PSResourceGet would fall back to the working directory).
    #>
    param([Parameter(Mandatory)] [string] $Path)
    foreach ($dir in '.local/share', '.config', '.cache') {
        $null = New-Item -ItemType Directory -Force -Path (Join-Path $Path $dir)
    }
    (Resolve-Path -LiteralPath $Path).Path
}

function ConvertTo-PwshLiteral {
    <# A string as a single-quoted PowerShell literal, to put a path into a -Command text. #>
    param([Parameter(Mandatory)] [AllowEmptyString()] [string] $Value)
    "'" + $Value.Replace("'", "''") + "'"
}

function Invoke-PwshInProfile {
    <#
    .SYNOPSIS
        Runs a command in a child pwsh whose HOME is ProfileDirectory (no XDG_* or PSModulePath inherited) in that
        directory, waits at most TimeoutSeconds, and returns its output lines; throws with its output when it fails.
    #>
    param(
        [Parameter(Mandatory)] [string] $ProfileDirectory,
        [Parameter(Mandatory)] [string] $Command,
        [int] $TimeoutSeconds = 180
    )
    $commandLine = Get-PwshCommandLine
    $psi = [Diagnostics.ProcessStartInfo]::new($commandLine[0])
    foreach ($a in @($commandLine | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-OutputFormat', 'Text', '-Command', $Command)) {
        $psi.ArgumentList.Add($a)
    }
    $psi.WorkingDirectory = $ProfileDirectory
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.Environment['HOME'] = $ProfileDirectory
    foreach ($name in 'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'PSModulePath') { $null = $psi.Environment.Remove($name) }
    $psi.Environment['NO_COLOR'] = '1'
    $process = [Diagnostics.Process]::Start($psi)
    try {
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            $process.Kill($true)
            $null = $process.WaitForExit(10000)
            throw "pwsh did not finish within $TimeoutSeconds s and was stopped: $Command"
        }
        $process.WaitForExit()
        $out = $stdout.GetAwaiter().GetResult()
        $err = $stderr.GetAwaiter().GetResult()
        if ($process.ExitCode -ne 0) { throw "pwsh exited with $($process.ExitCode): $Command`n$out`n$err" }
        $out -split "`r?`n" | Where-Object { $_ -ne '' }
    }
    finally { $process.Dispose() }
}

Export-ModuleMember -Function Get-PwshCommandLine, New-ProfileDirectory, ConvertTo-PwshLiteral, Invoke-PwshInProfile
