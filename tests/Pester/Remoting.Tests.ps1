# A fleet over PowerShell remoting on real OpenSSH: two sshd instances on 127.0.0.1 are the hosts h1 and h2, each with
# key authentication, the pwsh subsystem, the module installed from the package with Install-PSResource into the far
# side's user profile, and its own fixture host as root (GPUVIRT_HOST_ROOT, set for its sessions by sshd_config).
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Sshd.psm1') -Force

    function Get-TreeState([string] $Path) {
        if (-not (Test-Path -LiteralPath $Path)) { return "$Path absent" }
        Get-ChildItem -LiteralPath $Path -Recurse -Force | Sort-Object FullName | ForEach-Object {
            if ($_.PSIsContainer) { $_.FullName } else { "$($_.FullName) $((Get-FileHash -LiteralPath $_.FullName).Hash)" }
        }
    }

    function Get-BootHash([string] $Root) {
        # Every file and link (by its target, not followed) under the host's etc and boot.
        Get-ChildItem -LiteralPath (Join-Path $Root 'etc'), (Join-Path $Root 'boot') -Recurse -File -ErrorAction SilentlyContinue |
            Sort-Object FullName | ForEach-Object {
                if ($_.LinkTarget) { "$($_.FullName) -> $($_.LinkTarget)" } else { "$($_.FullName) $((Get-FileHash -LiteralPath $_.FullName).Hash)" }
            }
    }

    $script:UserSsh = Join-Path $HOME '.ssh'
    $script:UserSshBefore = @(Get-TreeState $UserSsh)
    $script:Work = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-fleet-' + [guid]::NewGuid().ToString('N'))
    $null = New-Item -ItemType Directory -Path $Work
    $script:Client = New-ProfileDirectory (Join-Path $Work 'client')
    $script:Key = New-SshKey -Path (Join-Path $Client 'id_ed25519')

    # Two hosts of one fleet, both with the seed's Tesla P4: h1 boots with RHEL 7's GRUB, h2 with Debian's and has
    # an Intel GVT-g GPU as well, so each host's answers show whose tree they came from.
    $script:H1 = New-FixtureHost -Name Seed
    [GpuVirt.Fixtures.BootFixture]::Rhel7($H1.Root, 'grub/rhel7-sysconfig-grub', $false)
    $script:H2 = New-FixtureHost -Name Seed -Configure { param($b) $null = [GpuVirt.Fixtures.SampleHosts]::AddIntelGvtG($b) }
    [GpuVirt.Fixtures.BootFixture]::Debian($H2.Root, 'grub/debian12-default-grub')
    $script:Roots = @{ h1 = $H1.Root; h2 = $H2.Root }
    # NVIDIA's vGPU driver cannot run here: the stand-in answers the create writes on both trees.
    $script:Drivers = @{ h1 = [GpuVirt.Fixtures.MdevDriverStandIn]::new($H1.Root); h2 = [GpuVirt.Fixtures.MdevDriverStandIn]::new($H2.Root) }

    # The far side: the package installed as a user installs it, in the profile the hosts' sessions get as HOME.
    $script:Far = Join-Path $Work 'far'
    $script:Installed = Install-GpuVirtPackage -ProfileDirectory $Far

    $script:Servers = @(
        foreach ($name in 'h1', 'h2') {
            Start-TestSshd -Name $name -Directory (Join-Path $Work "sshd-$name") -AuthorizedKey "$Key.pub" `
                -Environment @{ HOME = $Far; GPUVIRT_HOST_ROOT = $Roots[$name] }
        }
    )
    $script:User = $Servers[0].User
    $script:Options = Get-SshOption -KnownHosts (Join-Path $Client 'known_hosts') -Server $Servers
    $script:HostNames = @($Servers | ForEach-Object { "$($_.Name):$($_.Port)" })
    $script:Fleet = New-PSSession -HostName $HostNames -UserName $User -KeyFilePath $Key -Options $Options -ConnectingTimeout 60000 -ErrorAction Stop
    # In the fleet's sessions each host's tree stands for its /, as the live / does on a real host: -Root defaults to it.
    Invoke-Command -Session $Fleet {
        foreach ($command in Get-Command -Module GpuVirt) {
            if ($command.Parameters.ContainsKey('Root')) { $PSDefaultParameterValues["$($command.Name):Root"] = $env:GPUVIRT_HOST_ROOT }
        }
    }
}

AfterAll {
    # The servers first: a session closed by the client could leave its pwsh running on after its sshd is gone.
    $Servers | Stop-TestSshd
    if ($Fleet) { $Fleet | Remove-PSSession }
    if ($Drivers) { $Drivers.Values | ForEach-Object { $_.Dispose() } }
    $H1, $H2 | Remove-FixtureHost
    if ($Work -and (Test-Path $Work)) { Remove-Item -Recurse -Force $Work }
}

Describe 'PowerShell remoting over OpenSSH to two hosts' {
    It 'Invoke-Command -HostName h1,h2 { Get-GpuDevice } returns each host''s GPUs with PSComputerName, formatted by the module''s view and the computer column' {
        $gpus = Invoke-Command -HostName $HostNames -UserName $User -KeyFilePath $Key -Options $Options -ConnectingTimeout 60000 -ErrorAction Stop -ScriptBlock {
            Get-GpuDevice -Root $env:GPUVIRT_HOST_ROOT
        }
        $gpus[0].pstypenames[0] | Should -Be 'Deserialized.GpuVirt.Core.GpuDevice'
        foreach ($name in 'h1', 'h2') {
            $mine = @($gpus | Where-Object PSComputerName -eq $name)
            @($mine | ForEach-Object { "$($_.Address)" }) | Should -Be @(Get-GpuDevice -Root $Roots[$name] | ForEach-Object { "$($_.Address)" })
        }
        @($gpus | Where-Object PSComputerName -eq 'h2' | Where-Object { "$($_.Address)" -eq '0000:00:02.0' }).Count | Should -Be 1
        @($gpus | Where-Object PSComputerName -eq 'h1' | Where-Object { "$($_.Address)" -eq '0000:00:02.0' }).Count | Should -Be 0

        $local = (Get-GpuDevice -Root $Roots.h1 | Format-Table | Out-String -Width 400) -split "`n" | Where-Object { $_.Trim() }
        $remote = ($gpus | Format-Table | Out-String -Width 400) -split "`n" | Where-Object { $_.Trim() }
        ($remote[0].Trim() -split '\s+') | Should -Be (@($local[0].Trim() -split '\s+') + 'PSComputerName')
        $remote | Where-Object { $_ -match 'Quadro K4000' } | Should -HaveCount 2
        $remote | Where-Object { $_ -match 'Quadro K4000' -and $_ -match '\bh1\s*$' } | Should -HaveCount 1
    }

    It 'runs the installed module on the far side, found by name in the user scope Install-PSResource filled' {
        $far = Invoke-Command -Session $Fleet -ScriptBlock {
            Import-Module GpuVirt
            [pscustomobject]@{ Base = (Get-Module GpuVirt).ModuleBase; Root = $env:GPUVIRT_HOST_ROOT }
        }
        foreach ($name in 'h1', 'h2') {
            $answer = $far | Where-Object PSComputerName -eq $name
            $answer.Base | Should -Be $Installed
            $answer.Root | Should -Be $Roots[$name]
        }
    }

    It 'takes a fleet inventory: IOMMU groups and vGPU types of both hosts, each from its own tree' {
        $groups = Invoke-Command -Session $Fleet { Get-GpuDevice | Get-IommuGroup }
        $types = Invoke-Command -Session $Fleet { Get-GpuDevice | Get-VgpuType }
        foreach ($name in 'h1', 'h2') {
            $root = $Roots[$name]
            @($groups | Where-Object PSComputerName -eq $name | ForEach-Object { "$($_.Number)" }) |
                Should -Be @(Get-GpuDevice -Root $root | Get-IommuGroup -Root $root | ForEach-Object { "$($_.Number)" })
            @($types | Where-Object PSComputerName -eq $name | ForEach-Object { "$($_.Parent) $($_.Id) $($_.AvailableInstances)" }) |
                Should -Be @(Get-GpuDevice -Root $root | Get-VgpuType -Root $root | ForEach-Object { "$($_.Parent) $($_.Id) $($_.AvailableInstances)" })
        }
        @($types | Where-Object { $_.PSComputerName -eq 'h2' -and $_.Id -like 'i915-*' }).Count | Should -Be 2
        @($types | Where-Object { $_.PSComputerName -eq 'h1' -and $_.Id -like 'i915-*' }).Count | Should -Be 0
        ($types | Format-Table | Out-String -Width 400) | Should -Match 'GRID P4-1Q'
    }

    It 'creates a vGPU remotely on h1 only (New-VgpuDevice on the stand-in driver)' {
        $uuid = [guid]::NewGuid().ToString()
        $h1 = $Fleet | Where-Object ComputerName -eq 'h1'
        $made = Invoke-Command -Session $h1 { Get-GpuDevice | Get-VgpuType -Name 'GRID P4-1Q' | New-VgpuDevice -Uuid $using:uuid }
        $made.PSComputerName | Should -Be 'h1'
        "$($made.Uuid)" | Should -Be $uuid
        Test-Path (Join-Path $Roots.h1 "sys/bus/mdev/devices/$uuid") | Should -BeTrue
        Test-Path (Join-Path $Roots.h2 "sys/bus/mdev/devices/$uuid") | Should -BeFalse
        $Drivers.h1.Log | Should -Contain "create nvidia-63 $uuid"
        $Drivers.h2.Log | Should -BeNullOrEmpty
        @(Get-VgpuDevice -Root $Roots.h1).Count | Should -Be 1
        @(Get-VgpuDevice -Root $Roots.h2).Count | Should -Be 0
    }

    It 'shows Enable-IommuBoot -WhatIf for h1''s own boot configuration and changes no file on either host' {
        $before = @{ h1 = @(Get-BootHash $Roots.h1); h2 = @(Get-BootHash $Roots.h2) }
        # What-if text goes to the host, not to a stream: a transcript on the far side catches it.
        $h1 = $Fleet | Where-Object ComputerName -eq 'h1'
        $text = Invoke-Command -Session $h1 {
            $file = Join-Path $HOME 'whatif.txt'
            $null = Start-Transcript -LiteralPath $file
            try { Enable-IommuBoot -WhatIf } finally { $null = Stop-Transcript }
            Get-Content -Raw -LiteralPath $file
            Remove-Item -LiteralPath $file
        }
        $text | Should -Match 'What if: Enable-IommuBoot \(Rhel7 boot loader\)'
        $text | Should -Match ([regex]::Escape("chroot $($Roots.h1) grub2-mkconfig -o /etc/grub2.cfg"))
        $text | Should -Not -Match ([regex]::Escape($Roots.h2))
        @(Get-BootHash $Roots.h1) | Should -Be $before.h1
        @(Get-BootHash $Roots.h2) | Should -Be $before.h2
    }

    It 'pipes deserialized devices into the local ConvertTo-XorgBusId' {
        $gpus = Invoke-Command -Session $Fleet { Get-GpuDevice -Address 02:00.0 }
        $gpus | Should -HaveCount 2
        $gpus | ConvertTo-XorgBusId | Should -Be @('PCI:2:0:0', 'PCI:2:0:0')
    }
}

Describe "about_GpuVirt's fleet idiom" {
    It 'hands deserialized GPUs back to the session of the host they came from, where New-VgpuDevice makes one vGPU each' {
        $text = Get-Content -Raw (Join-Path $PSScriptRoot '../../docs/about_GpuVirt.md')
        $blocks = @([regex]::Matches($text, '(?ms)^\s*```powershell\s*$(.*?)^\s*```\s*$') | ForEach-Object { $_.Groups[1].Value })
        $idiom = @($blocks | Where-Object { $_ -match '\$using:group' })
        $idiom | Should -HaveCount 1
        $before = @{ h1 = @(Get-VgpuDevice -Root $Roots.h1).Count; h2 = @(Get-VgpuDevice -Root $Roots.h2).Count }
        $fleet = $Fleet   # the name the documented example uses
        $made = @(& ([scriptblock]::Create($idiom[0])))
        $made | Should -HaveCount 2
        foreach ($name in 'h1', 'h2') {
            $mine = @($made | Where-Object PSComputerName -eq $name)
            $mine | Should -HaveCount 1
            $mine[0].pstypenames[0] | Should -Be 'Deserialized.GpuVirt.Core.Vgpu.VgpuDevice'
            "$($mine[0].TypeId)" | Should -Be 'nvidia-63'
            Test-Path (Join-Path $Roots[$name] "sys/bus/mdev/devices/$($mine[0].Uuid)") | Should -BeTrue
            @(Get-VgpuDevice -Root $Roots[$name]).Count | Should -Be ($before[$name] + 1)
        }
        # Each host's own vGPU only: neither tree holds the other's.
        Test-Path (Join-Path $Roots.h2 "sys/bus/mdev/devices/$(($made | Where-Object PSComputerName -eq 'h1').Uuid)") | Should -BeFalse
        Test-Path (Join-Path $Roots.h1 "sys/bus/mdev/devices/$(($made | Where-Object PSComputerName -eq 'h2').Uuid)") | Should -BeFalse
    }
}

Describe '-Connect with a remote libvirt URI' {
    It 'passes qemu+ssh:// to virsh as it is (stand-in virsh: no remote libvirtd can run here)' {
        $dir = Join-Path $Work 'virsh-stand-in'
        $null = New-Item -ItemType Directory -Path $dir
        $argv = Join-Path $dir 'argv'
        Set-Content -LiteralPath (Join-Path $dir 'virsh') -Value "#!/bin/sh`nprintf '%s\n' `"`$@`" >> '$argv'`necho 'error: failed to connect to the hypervisor' >&2`nexit 1`n"
        & chmod 0755 (Join-Path $dir 'virsh')
        $uri = 'qemu+ssh://root@kvm1:2222/system?keyfile=/root/.ssh/id_ed25519&no_tty=1'
        $path = $env:PATH
        try {
            $env:PATH = "${dir}:$path"
            { Get-GpuHostdev -Domain vm1 -Connect $uri -ErrorAction Stop } | Should -Throw -ErrorId 'LibvirtConnectFailed,GpuVirt.Commands.GetGpuHostdevCommand'
        }
        finally { $env:PATH = $path }
        $words = @(Get-Content -LiteralPath $argv)
        $words[0] | Should -Be '-c'
        $words[1] | Should -BeExactly $uri
    }
}

Describe 'Stopping the fleet' {
    It 'stops both sshd instances and their sessions by pid and leaves no key or known host behind' {
        $ids = @($Servers | ForEach-Object { Get-TestSshdProcess $_ })
        $ids.Count | Should -BeGreaterOrEqual 4   # each listener with the session (sshd and pwsh) it serves
        $Servers | Stop-TestSshd
        $Fleet | Remove-PSSession
        $script:Fleet = $null
        foreach ($id in $ids) { Get-Process -Id $id -ErrorAction SilentlyContinue | Should -BeNullOrEmpty -Because "process $id was started for the fleet" }
        foreach ($server in $Servers) {
            Test-Listening $server.Port | Should -BeFalse
            Get-TestSshdProcess $server | Should -BeNullOrEmpty
        }
        Remove-Item -Recurse -Force $Work
        Test-Path $Work | Should -BeFalse
        @(Get-TreeState $UserSsh) | Should -Be $UserSshBefore
    }
}
