# The module's own files met in the field (issue 29): the change journal and the boot intent as UTF-8, record ids
# past Int32.MaxValue, a damaged intent, the temporary files a kill leaves, and hostile files (FIFOs, endless files,
# unreadable attributes) where GpuVirt reads. Real cmdlets on fixture trees and the embedded libvirt; grub2-mkconfig is
# a stand-in (it cannot run here).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
    $script:Hosts = [System.Collections.Generic.List[object]]::new()
    $script:Strict = [Text.UTF8Encoding]::new($false, $true)

    function New-BootHost {
        <# The seed host (Intel) with RHEL 7's grub file and a grub2-mkconfig stand-in; returns its root. #>
        $builder = New-FixtureHost -Name Seed
        $script:Hosts.Add($builder)
        [GpuVirt.Fixtures.BootFixture]::Rhel7($builder.Root, 'grub/rhel7-sysconfig-grub', $false, $false)
        $builder.Root
    }

    function New-ConsoleGuest {
        <# A shut-off guest with one mdev hostdev and a cirrus video, defined from XML with the given name and title. #>
        param($Libvirt, [string] $Name, [string] $Title)
        $doc = [xml][GpuVirt.Fixtures.LibvirtFixture]::Domain($Name, $false, $null, 2)
        if ($Title) {
            $t = $doc.CreateElement('title'); $t.InnerText = $Title
            $null = $doc.domain.InsertAfter($t, $doc.domain.SelectSingleNode('name'))
        }
        foreach ($xml in @("<video><model type='cirrus' vram='16384' heads='1' primary='yes'/></video>",
                "<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'><source><address uuid='$Uuid'/></source></hostdev>")) {
            $null = $doc.domain.devices.AppendChild($doc.ImportNode(([xml]$xml).DocumentElement, $true))
        }
        $file = Join-Path $Libvirt.Directory ('def-' + [guid]::NewGuid().ToString('N') + '.xml')
        $null = New-Item -ItemType Directory -Force (Split-Path $file)
        [IO.File]::WriteAllText($file, $doc.OuterXml, [Text.UTF8Encoding]::new($false))
        $null = Invoke-Virsh $Libvirt define --file $file
    }

    function Get-JournalBytes([string] $Root) { [IO.File]::ReadAllBytes((Join-Path $Root 'var/lib/gpuvirt/journal.json')) }
}

AfterAll {
    foreach ($h in $script:Hosts) { $h | Remove-FixtureHost }
}

Describe 'Item 24: the journal and the intent keep every character (UTF-8)' {
    BeforeAll {
        $script:Libvirt = New-EmbeddedLibvirt
        $script:Root = Join-Path $Libvirt.Directory 'host'
        $null = New-Item -ItemType Directory -Force $Root
    }
    AfterAll { $script:Libvirt | Remove-EmbeddedLibvirt }

    It 'Item 24: a guest title with characters above U+00FF survives Set-VgpuConsole and Undo-GpuVirtChange -Force' {
        $title = "GPU $([char]0x2713) $([char]0x65E5)$([char]0x672C)"
        New-ConsoleGuest $Libvirt -Name 'title-vm' -Title $title
        $before = Get-InactiveXml $Libvirt 'title-vm'
        $null = Set-VgpuConsole -Domain 'title-vm' -Connect $Libvirt.Uri -Root $Root -NoEmulatedVideo -Confirm:$false
        $record = Get-GpuVirtChange -Root $Root | Where-Object Command -eq 'Set-VgpuConsole' | Select-Object -First 1
        $null = Undo-GpuVirtChange -Id $record.Id -Root $Root -Force -Confirm:$false
        $after = Get-InactiveXml $Libvirt 'title-vm'
        ([xml]$after).domain.title | Should -BeExactly $title
        $after | Should -BeExactly $before
    }

    It 'Item 24: a guest with a CJK name is journaled by its name and its change is taken back without -Force' {
        $name = "$([char]0x4ED5)$([char]0x4E8B)-vm"
        New-ConsoleGuest $Libvirt -Name $name
        $before = Get-InactiveXml $Libvirt $name
        $null = Set-VgpuConsole -Domain $name -Connect $Libvirt.Uri -Root $Root -NoEmulatedVideo -Confirm:$false
        $record = Get-GpuVirtChange -Root $Root | Where-Object Command -eq 'Set-VgpuConsole' | Select-Object -First 1
        $record.Target | Should -BeExactly "guest '$name'"
        $null = Undo-GpuVirtChange -Id $record.Id -Root $Root -Confirm:$false
        Get-InactiveXml $Libvirt $name | Should -BeExactly $before
    }

    It 'Item 22: a definition holding U+FFFD (what virsh output that is not UTF-8 decodes to) is undone without -Force, byte for byte' {
        # libvirt 9.0 refuses to define bytes that are not UTF-8, so a guest whose title was set to such bytes (virsh desc
        # on a running libvirtd) is read, changed and defined with U+FFFD in their place: the record must compare that
        # definition exactly, or the undo finds "the definition was changed since" (JournalTargetChanged).
        $title = "caf$([char]0xFFFD) $([char]0xFFFD)$([char]0xFFFD)"
        New-ConsoleGuest $Libvirt -Name 'bytes-vm' -Title $title
        $before = Get-InactiveXml $Libvirt 'bytes-vm'
        $null = Set-VgpuConsole -Domain 'bytes-vm' -Connect $Libvirt.Uri -Root $Root -NoEmulatedVideo -Confirm:$false
        $record = Get-GpuVirtChange -Root $Root | Where-Object Command -eq 'Set-VgpuConsole' | Select-Object -First 1
        { Undo-GpuVirtChange -Id $record.Id -Root $Root -Confirm:$false -ErrorAction Stop } | Should -Not -Throw
        $after = Get-InactiveXml $Libvirt 'bytes-vm'
        [Text.Encoding]::UTF8.GetBytes($after) | Should -Be ([Text.Encoding]::UTF8.GetBytes($before))
        ([xml]$after).domain.title | Should -BeExactly $title
    }

    It 'Item 24: journal.json is valid UTF-8 and holds the characters themselves' {
        $bytes = Get-JournalBytes $Root
        { $Strict.GetString($bytes) } | Should -Not -Throw
        $Strict.GetString($bytes) | Should -Match ([regex]::Escape("$([char]0x4ED5)$([char]0x4E8B)-vm"))
    }

    It 'Item 24: a journal an older GpuVirt wrote (Latin-1 bytes) still reads, and the next record keeps both' {
        $root = New-BootHost
        $null = New-Item -ItemType Directory -Force (Join-Path $root 'var/lib/gpuvirt')
        $old = @"
{
  "Format": "GpuVirt change journal",
  "Version": 1,
  "Records": [
    {
      "Id": 1,
      "Time": "2026-01-02T03:04:05Z",
      "User": "ren$([char]0xE9)",
      "Root": "/",
      "Command": "Dismount-GpuHostDriver",
      "CommandLine": "Dismount-GpuHostDriver 02:00.1 # caf$([char]0xE9)",
      "Target": "0000:02:00.1",
      "Action": "Bind to vfio-pci"
    }
  ]
}
"@
        [IO.File]::WriteAllBytes((Join-Path $root 'var/lib/gpuvirt/journal.json'), [Text.Encoding]::Latin1.GetBytes($old))
        (Get-GpuVirtChange -Root $root).CommandLine | Should -BeExactly "Dismount-GpuHostDriver 02:00.1 # caf$([char]0xE9)"
        $null = Enable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
        $changes = @(Get-GpuVirtChange -Root $root)
        $changes.Count | Should -Be 2
        $changes[1].User | Should -BeExactly "ren$([char]0xE9)"
        { $Strict.GetString((Get-JournalBytes $root)) } | Should -Not -Throw
    }
}

Describe 'Item 26: record ids past Int32.MaxValue' {
    BeforeAll {
        function Set-JournalWithId([string] $Root, [string] $Id) {
            $null = New-Item -ItemType Directory -Force (Join-Path $Root 'var/lib/gpuvirt')
            $text = @"
{
  "Format": "GpuVirt change journal",
  "Version": 1,
  "Records": [
    { "Id": $Id, "Time": "2026-01-02T03:04:05Z", "User": "root", "Root": "/", "Command": "Dismount-GpuHostDriver",
      "CommandLine": "Dismount-GpuHostDriver 02:00.1", "Target": "0000:02:00.1", "Action": "Bind to vfio-pci" }
  ]
}
"@
            [IO.File]::WriteAllText((Join-Path $Root 'var/lib/gpuvirt/journal.json'), $text)
        }
    }

    It 'Item 26: the record after id 2147483647 is 2147483648, and the journal it leaves reads and takes more records' {
        $root = New-BootHost
        Set-JournalWithId $root '2147483647'
        $null = Enable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
        $changes = @(Get-GpuVirtChange -Root $root)
        $changes.Id | Should -Be @(2147483648, 2147483647)
        (Get-GpuVirtChange -Root $root -Id 2147483648).Command | Should -Be 'Enable-IommuBoot'
        $null = Undo-GpuVirtChange -Id 2147483648 -Root $root -Confirm:$false -WarningAction SilentlyContinue
        $after = @(Get-GpuVirtChange -Root $root)
        $after.Id | Should -Be @(2147483649, 2147483648, 2147483647)
        $after[1].Undone | Should -BeTrue
    }

    It 'Item 26: a journal whose last id is the last one there is refuses the change by name, before anything is changed' {
        $root = New-BootHost
        Set-JournalWithId $root '9223372036854775807'
        $grub = [IO.File]::ReadAllBytes((Join-Path $root 'etc/default/grub'))
        $journal = Get-JournalBytes $root
        { Enable-IommuBoot -Root $root -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue } |
            Should -Throw -ErrorId 'JournalIdsExhausted,GpuVirt.Commands.EnableIommuBootCommand'
        [IO.File]::ReadAllBytes((Join-Path $root 'etc/default/grub')) | Should -Be $grub
        Get-JournalBytes $root | Should -Be $journal
        (Get-GpuVirtChange -Root $root).Id | Should -Be 9223372036854775807
    }
}

Describe 'Item 21: a damaged boot intent' {
    BeforeAll {
        function Set-Intent([string] $Root, [string] $Path, [string] $Before, [string] $After) {
            $null = New-Item -ItemType Directory -Force (Join-Path $Root 'var/lib/gpuvirt')
            $intent = [ordered]@{
                Format = 'GpuVirt boot change in progress'; Version = 1; Action = 'Enable-IommuBoot'; Phase = 'Files'; CommandsDone = 0
                Files = @([ordered]@{ Path = $Path; Before = $Before; After = $After; Mode = 420 })
                Guarded = @(); Commands = @(, @('grub2-mkconfig', '-o', '/boot/grub2/grub.cfg')); ImportBootEdits = $false
            }
            [IO.File]::WriteAllText((Join-Path $Root 'var/lib/gpuvirt/boot-pending.json'), ($intent | ConvertTo-Json -Depth 5))
        }
    }

    It 'Item 21: an intent naming a relative path is BootIntentDamaged, and nothing is recovered or changed' {
        $root = New-BootHost
        $good = [Convert]::ToBase64String([IO.File]::ReadAllBytes((Join-Path $root 'etc/default/grub')))
        Set-Intent $root 'etc/default/grub' $good $good
        $tree = Get-TreeHash $root
        { Enable-IommuBoot -Root $root -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue } |
            Should -Throw -ErrorId 'BootIntentDamaged,GpuVirt.Commands.EnableIommuBootCommand' -ExpectedMessage "*'etc/default/grub'*no absolute path*"
        Get-TreeHash $root | Should -Be $tree
    }

    It 'Item 21: an intent whose content is not base64 is BootIntentDamaged, and the file it names is left as it is' {
        $root = New-BootHost
        [IO.File]::WriteAllText((Join-Path $root 'etc/default/grub'), "GRUB_CMDLINE_LINUX=`"hand edit`"`n")
        Set-Intent $root '/etc/default/grub' 'not*base64!' ([Convert]::ToBase64String([byte[]](65, 10)))
        $tree = Get-TreeHash $root
        { Disable-IommuBoot -Root $root -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue } |
            Should -Throw -ErrorId 'BootIntentDamaged,GpuVirt.Commands.DisableIommuBootCommand' -ExpectedMessage '*not valid base64*'
        { Get-IommuBootStatus -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'BootIntentDamaged,*'
        Get-TreeHash $root | Should -Be $tree
    }
}

Describe 'Item 19: the temporary files of killed writes are removed by the next command' {
    It 'Item 19: the next boot command removes the atomic writer''s leftovers beside the journal, the intent and the grub file, and nothing else' {
        $root = New-BootHost
        $null = Enable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
        $litter = @('var/lib/gpuvirt/.journal.json.gpuvirt-0123abcd.tmp', 'var/lib/gpuvirt/.boot-pending.json.gpuvirt-89abcdef.tmp',
            'etc/default/.grub.gpuvirt-deadbeef.tmp', 'etc/default/.grub.gpuvirt-20260102-030405.bak.gpuvirt-00ff00ff.tmp')
        $kept = @('var/lib/gpuvirt/notes.tmp', 'var/lib/gpuvirt/.journal.json.gpuvirt-mine.tmp', 'etc/default/.grub.gpuvirt-deadbeef.tmp.keep',
            'etc/default/grub.gpuvirt-deadbeef.tmp', 'etc/.grub.gpuvirt-0badf00d.tmp')
        foreach ($f in $litter + $kept) { [IO.File]::WriteAllText((Join-Path $root $f), 'partial') }
        $null = Disable-IommuBoot -Root $root -Confirm:$false -WarningAction SilentlyContinue
        foreach ($f in $litter) { Join-Path $root $f | Should -Not -Exist }
        foreach ($f in $kept) { Join-Path $root $f | Should -Exist }
    }

    It 'Item 19: a journaled command that is no boot command removes them too (under the lock, as it journals)' {
        $libvirt = New-EmbeddedLibvirt
        try {
            $root = Join-Path $libvirt.Directory 'host'
            $null = New-Item -ItemType Directory -Force (Join-Path $root 'var/lib/gpuvirt')
            [IO.File]::WriteAllText((Join-Path $root 'var/lib/gpuvirt/.journal.json.gpuvirt-a1b2c3d4.tmp'), '{ "Format": "GpuVirt change jour')
            [IO.File]::WriteAllText((Join-Path $root 'var/lib/gpuvirt/keep.txt'), 'mine')
            New-ConsoleGuest $libvirt -Name 'litter-vm'
            $null = Set-VgpuConsole -Domain 'litter-vm' -Connect $libvirt.Uri -Root $root -NoEmulatedVideo -Confirm:$false
            Join-Path $root 'var/lib/gpuvirt/.journal.json.gpuvirt-a1b2c3d4.tmp' | Should -Not -Exist
            Join-Path $root 'var/lib/gpuvirt/keep.txt' | Should -Exist
        }
        finally { $libvirt | Remove-EmbeddedLibvirt }
    }
}

Describe 'Item 20: hostile files where GpuVirt reads' {
    BeforeAll {
        function Invoke-BoundedChild {
            <#
                Runs $Script in a child pwsh (after the optional $Prefix program, e.g. setpriv) and returns its output. A
                child still running after five minutes has hung on a file: it is killed and the test fails on that,
                instead of the test run hanging with it.
            #>
            param([string] $Script, [string[]] $Prefix = @())
            $pwsh = [Environment]::GetCommandLineArgs()[0]
            $argv = $Prefix + @('dotnet', $pwsh, '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$env:GPUVIRT_MODULE'; $Script")
            $out = [IO.Path]::GetTempFileName()
            $p = Start-Process -FilePath $argv[0] -ArgumentList $argv[1..($argv.Count - 1)] -PassThru -RedirectStandardOutput $out -RedirectStandardError "$out.err"
            $ended = $p.WaitForExit(300000)
            if (-not $ended) { $p.Kill($true); $null = $p.WaitForExit(30000) }
            $text = (Get-Content -Raw $out) + (Get-Content -Raw "$out.err")
            Remove-Item -Force $out, "$out.err"
            $ended | Should -BeTrue -Because "the command must not hang on a file ($text)"
            $text
        }

        function Get-ErrorLine {
            <# A script fragment: runs the command and prints 'NAME: ERRORID: message' for its first error, or 'NAME: ok'. #>
            param([string] $Name, [string] $Command)
            "try { `$null = $Command -ErrorAction Stop; '${Name}: ok' } catch { '${Name}: ' + `$_.FullyQualifiedErrorId + ': ' + `$_.Exception.Message }; "
        }

        $script:Builder = New-FixtureHost -Name Seed
        $script:Hosts.Add($Builder)
        $script:Root = $Builder.Root
        [GpuVirt.Fixtures.BootFixture]::Rhel7($Root, 'grub/rhel7-sysconfig-grub', $false, $false)
        $script:TypeDir = (Resolve-Path (Join-Path $Root 'sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63')).Path
    }

    It 'Item 20: a FIFO in place of a sysfs attribute, /proc/cmdline, /etc/default/grub or the journal is refused by name without hanging' {
        $root = New-BootHost
        $device = (Resolve-Path (Join-Path $root 'sys/bus/pci/devices/0000:02:00.0')).Path
        $null = New-Item -ItemType Directory -Force (Join-Path $root 'proc'), (Join-Path $root 'var/lib/gpuvirt')
        $fifos = @("$device/class", (Join-Path $root 'proc/cmdline'), (Join-Path $root 'var/lib/gpuvirt/journal.json'))
        foreach ($f in $fifos) { Remove-Item -Force $f -ErrorAction SilentlyContinue; & mkfifo $f; $LASTEXITCODE | Should -Be 0 }
        $script = (Get-ErrorLine 'attribute' "Get-PciDevice -Root '$root' -Address 02:00.0") +
            (Get-ErrorLine 'cmdline' "Get-IommuBootStatus -Root '$root'") +
            (Get-ErrorLine 'journal' "Get-GpuVirtChange -Root '$root'")
        $text = Invoke-BoundedChild $script
        $text | Should -Match "attribute: HostFileNotRegular,GpuVirt\.Commands\.GetPciDeviceCommand: '[^']*0000:02:00\.0/class' is a FIFO \(named pipe\), not a regular file" -Because $text
        $text | Should -Match "cmdline: HostFileNotRegular,GpuVirt\.Commands\.GetIommuBootStatusCommand: '[^']*/proc/cmdline' is a FIFO" -Because $text
        $text | Should -Match "journal: HostFileNotRegular,GpuVirt\.Commands\.GetGpuVirtChangeCommand: '/var/lib/gpuvirt/journal\.json' is a FIFO" -Because $text

        # The grub file (through /etc/sysconfig/grub's link) as a FIFO, for a boot command: refused, nothing written.
        foreach ($f in $fifos) { Remove-Item -Force $f }
        $grub = Join-Path $root 'etc/default/grub'
        Remove-Item -Force $grub; & mkfifo $grub
        # Listed by name, size and time (hashing would open the FIFO): nothing is added, removed or rewritten.
        $listing = { Get-ChildItem -Recurse -Force (Join-Path $root 'etc'), (Join-Path $root 'boot'), (Join-Path $root 'var') |
                ForEach-Object { '{0} {1} {2}' -f $_.FullName, $_.Length, $_.LastWriteTimeUtc.Ticks } }
        $tree = & $listing
        $text = Invoke-BoundedChild (Get-ErrorLine 'grub' "Enable-IommuBoot -Root '$root' -Confirm:`$false -WarningAction SilentlyContinue")
        $text | Should -Match "grub: HostFileNotRegular,GpuVirt\.Commands\.EnableIommuBootCommand: '/etc/sysconfig/grub' is a FIFO" -Because $text
        & $listing | Should -Be $tree
    }

    It 'Item 20: a 1 GB journal, grub file or attribute stops at its bound with HostFileTooLarge, not OutOfMemoryException' {
        # One host for each file: a command meets only the one it is about. Sparse files: a gigabyte of zeros to read, no disk taken.
        $roots = 1..3 | ForEach-Object { New-BootHost }
        $null = New-Item -ItemType Directory -Force (Join-Path $roots[0] 'var/lib/gpuvirt')
        $device = (Resolve-Path (Join-Path $roots[2] 'sys/bus/pci/devices/0000:02:00.0')).Path
        foreach ($f in @((Join-Path $roots[0] 'var/lib/gpuvirt/journal.json'), (Join-Path $roots[1] 'etc/default/grub'), "$device/driver_override")) {
            & truncate -s 1G $f; $LASTEXITCODE | Should -Be 0
        }
        $script = (Get-ErrorLine 'journal' "Get-GpuVirtChange -Root '$($roots[0])'") +
            (Get-ErrorLine 'grub' "Enable-IommuBoot -Root '$($roots[1])' -Confirm:`$false -WarningAction SilentlyContinue") +
            (Get-ErrorLine 'attribute' "Get-PciDevice -Root '$($roots[2])' -Address 02:00.0")
        $text = Invoke-BoundedChild $script
        $text | Should -Match "journal: HostFileTooLarge,GpuVirt\.Commands\.GetGpuVirtChangeCommand: '/var/lib/gpuvirt/journal\.json' holds more than 262144 KiB" -Because $text
        $text | Should -Match "grub: HostFileTooLarge,GpuVirt\.Commands\.EnableIommuBootCommand: '/etc/sysconfig/grub' holds more than 65536 KiB" -Because $text
        $text | Should -Match "attribute: HostFileTooLarge,GpuVirt\.Commands\.GetPciDeviceCommand: '[^']*0000:02:00\.0/driver_override' holds more than 1024 KiB" -Because $text
        $text | Should -Not -Match 'OutOfMemory'
    }

    It 'Item 20: a mode-000 attribute is reported as unreadable, not read as nothing (root without CAP_DAC_OVERRIDE, through setpriv)' {
        $available = Join-Path $TypeDir 'available_instances'
        (Get-VgpuType -Root $Root -Parent 01:00.0 | Where-Object Id -eq 'nvidia-63').AvailableInstances | Should -BeGreaterThan 0
        & chmod 000 $available
        try {
            $drop = @('setpriv', '--bounding-set=-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search')
            $text = Invoke-BoundedChild (Get-ErrorLine 'type' "Get-VgpuType -Root '$Root' -Parent 01:00.0") -Prefix $drop
        }
        finally { & chmod 444 $available }
        $text | Should -Match "type: PermissionDeniedAsRoot,GpuVirt\.Commands\.GetVgpuTypeCommand: Permission denied to read '[^']*nvidia-63/available_instances'" -Because $text
    }
}
