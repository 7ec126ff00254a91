# Real OpenSSH servers on 127.0.0.1 for the remoting tests: each is one "host" of a fleet, with its own host key,
# key-only authentication for the user running the tests, and the pwsh subsystem of PowerShell remoting. Everything
# (keys, configuration, logs, known_hosts) lives in the directories the caller gives; Stop-TestSshd stops the server
# and the sessions it started by their process ids.
Import-Module (Join-Path $PSScriptRoot '../../tools/PwshProcess.psm1') -Verbose:$false

function Assert-PlainPath([string] $Path) {
    # sshd_config and the Subsystem command line are split on whitespace.
    if ($Path -match '\s') { throw "The sshd test directories need a path without whitespace: '$Path'" }
}

function New-SshKey {
    <# A new ed25519 key pair without passphrase at Path (private) and Path.pub. #>
    param([Parameter(Mandatory)] [string] $Path, [string] $Comment = 'gpuvirt-test')
    & ssh-keygen -q -t ed25519 -N '' -C $Comment -f $Path
    if ($LASTEXITCODE -ne 0) { throw "ssh-keygen failed for $Path" }
    $Path
}

function Get-SshdPath {
    $sshd = Get-Command sshd -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($sshd) { return $sshd.Source }
    if (Test-Path /usr/sbin/sshd) { return '/usr/sbin/sshd' }   # not on a non-root user's PATH on Debian
    throw 'sshd is not installed (Debian package openssh-server, listed in tests/apt-packages.txt).'
}

function Get-FreeLoopbackPort {
    $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Test-Listening([int] $Port) {
    $client = [Net.Sockets.TcpClient]::new()
    try { $client.ConnectAsync([Net.IPAddress]::Loopback, $Port).Wait(500) -and $client.Connected }
    catch { $false }
    finally { $client.Dispose() }
}

function Start-TestSshd {
    <#
    Starts sshd -D on a free port of 127.0.0.1 with its configuration in Directory. AuthorizedKey is the public key
    file of the client. Environment is set for every session (sshd_config SetEnv): the far side's HOME, and whatever
    else the host's sessions should see. Returns the server: Name, Port, Pid, Process, Directory, HostKey, Log.
    #>
    param(
        [Parameter(Mandatory)] [string] $Name,
        [Parameter(Mandatory)] [string] $Directory,
        [Parameter(Mandatory)] [string] $AuthorizedKey,
        [hashtable] $Environment = @{},
        [int] $TimeoutSeconds = 20
    )
    $sshd = Get-SshdPath
    $isRoot = (& id -u) -eq '0'
    if ($isRoot -and -not (Test-Path /run/sshd)) {
        throw 'sshd run as root needs its privilege separation directory /run/sshd: run build.ps1 -Task Deps (or mkdir -m 0755 /run/sshd).'
    }
    $null = New-Item -ItemType Directory -Force -Path $Directory
    $Directory = (Resolve-Path -LiteralPath $Directory).Path
    Assert-PlainPath $Directory
    $hostKey = New-SshKey -Path (Join-Path $Directory 'ssh_host_ed25519_key') -Comment $Name
    Copy-Item -LiteralPath $AuthorizedKey -Destination (Join-Path $Directory 'authorized_keys')

    # The subsystem runs the same pwsh as this test (a dotnet tool has no pwsh on PATH): a wrapper in the directory.
    $pwsh = (Get-PwshCommandLine | ForEach-Object { "'" + $_.Replace("'", "'\''") + "'" }) -join ' '
    $wrapper = Join-Path $Directory 'pwsh-subsystem'
    Set-Content -LiteralPath $wrapper -Value "#!/bin/sh`nexec $pwsh `"`$@`"`n"
    & chmod 0755 $wrapper

    $user = & id -un
    # GPUVIRT_TEST_SSHD marks every session process of this server, for Stop-TestSshd to find even when reparented.
    $sessionEnv = @{ GPUVIRT_TEST_SSHD = $Directory } + $Environment
    # sshd takes the first SetEnv line only: every variable on one line.
    $setEnv = 'SetEnv ' + (@(foreach ($key in $sessionEnv.Keys | Sort-Object) {
        $value = [string]$sessionEnv[$key]
        Assert-PlainPath $value
        "$key=$value"
    }) -join ' ')
    $log = Join-Path $Directory 'sshd.log'
    for ($attempt = 1; ; $attempt++) {
        $port = Get-FreeLoopbackPort
        $config = Join-Path $Directory 'sshd_config'
        @(
            "ListenAddress 127.0.0.1:$port"
            "HostKey $hostKey"
            'PidFile none'
            "AuthorizedKeysFile $Directory/authorized_keys"
            'AuthenticationMethods publickey'
            'PubkeyAuthentication yes'
            'PasswordAuthentication no'
            'KbdInteractiveAuthentication no'
            'UsePAM no'
            # The keys live in a directory under the world-writable /tmp, which StrictModes would refuse.
            'StrictModes no'
            'PermitRootLogin prohibit-password'
            "AllowUsers $user"
            "Subsystem powershell $wrapper -sshs -NoLogo -NoProfile"
        ) + $setEnv | Set-Content -LiteralPath $config

        $psi = [Diagnostics.ProcessStartInfo]::new($sshd)
        foreach ($a in '-D', '-f', $config, '-E', $log) { $psi.ArgumentList.Add($a) }
        $psi.UseShellExecute = $false
        $process = [Diagnostics.Process]::Start($psi)
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not $process.HasExited -and -not (Test-Listening $port) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        if (-not $process.HasExited -and (Test-Listening $port)) { break }
        $text = if (Test-Path $log) { Get-Content -Raw $log } else { '' }
        if (-not $process.HasExited) { $process.Kill(); $null = $process.WaitForExit(5000) }
        if ($attempt -ge 3 -or $text -notmatch 'Address already in use') {
            throw "sshd did not listen on 127.0.0.1:$port within $TimeoutSeconds s (non-root: only that user can log in; root: /run/sshd must exist): $text"
        }
    }
    [pscustomobject]@{
        Name = $Name; Port = $port; Pid = $process.Id; Process = $process; Directory = $Directory
        HostKey = (Get-Content -Raw "$hostKey.pub").Trim(); Log = $log; User = $user
    }
}

function Get-ProcessDescendant([int] $Id) {
    # Children, grandchildren... of a process, from /proc/<pid>/stat (field 4 is the parent's pid).
    $parents = @{}
    foreach ($stat in Get-ChildItem /proc -Directory -ErrorAction SilentlyContinue | Where-Object Name -match '^\d+$') {
        try { $text = [IO.File]::ReadAllText("$($stat.FullName)/stat") } catch { continue }
        $fields = $text.Substring($text.LastIndexOf(')') + 2).Split(' ')
        $parents[[int]$stat.Name] = [int]$fields[1]
    }
    $found = [Collections.Generic.List[int]]::new()
    $queue = [Collections.Generic.Queue[int]]::new(); $queue.Enqueue($Id)
    while ($queue.Count) {
        $p = $queue.Dequeue()
        foreach ($child in $parents.Keys | Where-Object { $parents[$_] -eq $p }) { $found.Add($child); $queue.Enqueue($child) }
    }
    $found
}

function Get-SessionProcess([string] $Directory) {
    # Processes whose environment carries the server's GPUVIRT_TEST_SSHD mark: its sessions' shells and pwsh.
    $mark = "`0GPUVIRT_TEST_SSHD=$Directory`0"
    foreach ($proc in Get-ChildItem /proc -Directory -ErrorAction SilentlyContinue | Where-Object Name -match '^\d+$') {
        try { $environ = [IO.File]::ReadAllText("$($proc.FullName)/environ") } catch { continue }
        if (("`0" + $environ).Contains($mark)) { [int]$proc.Name }
    }
}

function Get-TestSshdProcess {
    <# The ids of every process a server runs: the listener, its children, and its sessions' processes. #>
    param([Parameter(Mandatory)] $Server)
    $ids = @()
    if (-not $Server.Process.HasExited) { $ids += $Server.Pid; $ids += @(Get-ProcessDescendant $Server.Pid) }
    $ids += @(Get-SessionProcess $Server.Directory)
    @($ids | Sort-Object -Unique)
}

function Stop-TestSshd {
    <# Stops the server, its connections and its sessions' processes by pid; waits at most 10 s for each. #>
    param([Parameter(ValueFromPipeline)] $Server)
    process {
        if (-not $Server) { return }
        $ids = Get-TestSshdProcess $Server
        foreach ($id in $ids) { Stop-Process -Id $id -Force -ErrorAction SilentlyContinue }
        foreach ($id in $ids) {
            $p = Get-Process -Id $id -ErrorAction SilentlyContinue
            if ($p) { $null = $p.WaitForExit(10000) }
        }
        $null = $Server.Process.WaitForExit(10000)
    }
}

function Get-SshOption {
    <#
    The ssh options of every connection to the test servers (Invoke-Command/New-PSSession -Options): h1, h2... are
    names for 127.0.0.1, host keys are checked strictly against the tests' own known_hosts, only the tests' key is
    offered, nothing prompts, and a connection that cannot be made fails within ConnectTimeout.
    #>
    param([Parameter(Mandatory)] [string] $KnownHosts, [object[]] $Server)
    Set-Content -LiteralPath $KnownHosts -Value ($Server | ForEach-Object { "[127.0.0.1]:$($_.Port) $($_.HostKey)" })
    @{
        Hostname = '127.0.0.1'; UserKnownHostsFile = $KnownHosts; GlobalKnownHostsFile = '/dev/null'
        StrictHostKeyChecking = 'yes'; IdentitiesOnly = 'yes'; BatchMode = 'yes'; ConnectTimeout = '15'
        ServerAliveInterval = '5'; ServerAliveCountMax = '6'; LogLevel = 'QUIET'
    }
}

Export-ModuleMember -Function New-SshKey, Start-TestSshd, Stop-TestSshd, Get-SshOption, Get-TestSshdProcess, Test-Listening
