# Real libvirt for the Pester tests, with no daemon: the embedded QEMU driver keeps guests under a directory across
# virsh processes and really attaches and detaches devices of shut-off guests.
Add-Type -Path $env:GPUVIRT_FIXTURES

function New-EmbeddedLibvirt {
    <# A new embedded-driver root in a temporary directory; returns @{ Directory; Uri }. #>
    $env:LIBVIRT_LOG_FILTERS = '4:*'   # the embedded driver logs at info level to stderr otherwise
    $dir = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-libvirt-' + [guid]::NewGuid().ToString('N'))
    $uri = [GpuVirt.Fixtures.LibvirtFixture]::PrepareEmbedRoot((Join-Path $dir 'libvirt'))
    [pscustomobject]@{ Directory = $dir; Uri = $uri }
}

function Remove-EmbeddedLibvirt {
    param([Parameter(ValueFromPipeline)] $Libvirt)
    process { if ($Libvirt -and (Test-Path $Libvirt.Directory)) { Remove-Item -Recurse -Force $Libvirt.Directory } }
}

function Invoke-Virsh {
    <# Runs the real virsh on the embedded root in its own process; throws on a non-zero exit. #>
    param([Parameter(Mandatory)] $Libvirt, [Parameter(ValueFromRemainingArguments)] [string[]] $Arguments)
    $out = & virsh -c $Libvirt.Uri @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "virsh $($Arguments -join ' ') failed: $out" }
    $out -join "`n"
}

function New-TestGuest {
    <# Defines a shut-off guest and returns its name (a unique one unless -Name is given). #>
    param([Parameter(Mandatory)] $Libvirt, [string] $Name, [switch] $Graphics)
    if (-not $Name) { $Name = 'vm-' + [guid]::NewGuid().ToString('N').Substring(0, 8) }
    $file = [GpuVirt.Fixtures.LibvirtFixture]::WriteDomain((Join-Path $Libvirt.Directory 'defs'), $Name, [bool]$Graphics, 8)
    $null = Invoke-Virsh $Libvirt define --file $file
    $Name
}

function Clear-TestGuest {
    <# Undefines every guest of the embedded root, so that each test starts with no guest holding a device. #>
    param([Parameter(Mandatory)] $Libvirt)
    # By UUID: a guest may be named like another guest's UUID, and virsh's --domain tries a UUID before a name.
    foreach ($uuid in (& virsh -c $Libvirt.Uri list --all --uuid) | Where-Object { $_ }) {
        $null = Invoke-Virsh $Libvirt undefine --domain $uuid
    }
}

function Get-InactiveXml {
    <# The guest's persistent definition, read by a new virsh process. #>
    param([Parameter(Mandatory)] $Libvirt, [Parameter(Mandatory)] [string] $Domain)
    Invoke-Virsh $Libvirt dumpxml --domain $Domain --inactive
}

function Test-DomainXml {
    <# Validates a whole domain document with virt-xml-validate; returns its output, throws when it does not validate. #>
    param([Parameter(Mandatory)] [string] $Xml)
    $file = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-validate-' + [guid]::NewGuid().ToString('N') + '.xml')
    try {
        Set-Content -Path $file -Value $Xml -NoNewline
        $out = & virt-xml-validate $file domain 2>&1
        if ($LASTEXITCODE -ne 0) { throw "virt-xml-validate: $out" }
        "$out"
    }
    finally { Remove-Item -Force $file -ErrorAction SilentlyContinue }
}

function Get-WhatIfText {
    <# What a -WhatIf or -Confirm:$false call wrote to the host (ShouldProcess writes there, not to a stream). #>
    param([Parameter(Mandatory)] [scriptblock] $ScriptBlock)
    $file = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-transcript-' + [guid]::NewGuid().ToString('N') + '.txt')
    $null = Start-Transcript -Path $file -UseMinimalHeader
    try { $null = & $ScriptBlock *>&1 }
    finally { $null = Stop-Transcript }
    $text = Get-Content -Raw $file
    Remove-Item -Force $file
    $text
}

Export-ModuleMember -Function New-EmbeddedLibvirt, Remove-EmbeddedLibvirt, Invoke-Virsh, New-TestGuest, Clear-TestGuest, Get-InactiveXml, Test-DomainXml, Get-WhatIfText
