# The guest cmdlets as a user runs them, against real virsh and the embedded QEMU driver (one root for the file),
# and the host-driver cmdlets against kernel-shaped fixture trees.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'Libvirt.psm1') -Force
    $script:Libvirt = New-EmbeddedLibvirt
    $script:Uri = $Libvirt.Uri
    $script:Seed = New-FixtureHost -Name Seed
    $script:Root = $Seed.Root
    $script:Quadro = Get-GpuDevice -Root $Root | Where-Object { $_.Address.ToString() -eq '0000:02:00.0' }
    $script:VgpuUuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a'
    $script:Odd = "we'ird `"vm`" <x> &amp; ;`$(id)|``a`` --config"
}

AfterAll {
    $script:Libvirt | Remove-EmbeddedLibvirt
    $script:Seed | Remove-FixtureHost
}

Describe 'Add-GpuHostdev' {
    # Each test starts with no guest: the ownership rules look through every guest of the root.
    AfterEach { Clear-TestGuest $Libvirt }

    It 'attaches the seed GPU from Get-GpuDevice with the seed XML, and the definition keeps it (read by a new virsh)' {
        $vm = New-TestGuest $Libvirt
        $out = $Quadro | Add-GpuHostdev -Domain $vm -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $out | Should -BeOfType ([GpuVirt.Core.Libvirt.Hostdev])
        $out.Domain | Should -Be $vm
        $out.Kind | Should -Be 'Pci'
        $out.Address.ToString() | Should -Be '0000:02:00.0'
        $out.Managed | Should -BeTrue
        $out.Driver | Should -Be 'vfio'
        $out.GuestAddress | Should -Not -BeNullOrEmpty

        $xml = [xml](Get-InactiveXml $Libvirt $vm)
        $hostdev = @($xml.domain.devices.hostdev)
        $hostdev.Count | Should -Be 1
        $hostdev[0].mode | Should -Be 'subsystem'
        $hostdev[0].type | Should -Be 'pci'
        $hostdev[0].managed | Should -Be 'yes'
        $hostdev[0].driver.name | Should -Be 'vfio'
        $a = $hostdev[0].source.address
        "$($a.domain) $($a.bus) $($a.slot) $($a.function)" | Should -Be '0x0000 0x02 0x00 0x0'
        # The address libvirt gave it in the guest is the one the object reports.
        $g = $hostdev[0].address
        '{0:x4}:{1:x2}:{2:x2}.{3:x}' -f [Convert]::ToInt32($g.domain, 16), [Convert]::ToInt32($g.bus, 16), [Convert]::ToInt32($g.slot, 16), [Convert]::ToInt32($g.function, 16) |
            Should -Be $out.GuestAddress.ToString()
    }

    It 'leaves a definition that virt-xml-validate accepts, for PCI, unmanaged PCI and mdev with display' {
        $vm = New-TestGuest $Libvirt -Graphics
        $null = Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $null = Add-GpuHostdev $vm -Address 00:19.0 -Unmanaged -Root $Root -Connect $Uri
        $null = Add-GpuHostdev $vm -Uuid $VgpuUuid -Display -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $xml = Get-InactiveXml $Libvirt $vm
        Test-DomainXml $xml | Should -BeLike '*validates'
        $doc = [xml]$xml
        ($doc.domain.devices.hostdev | ForEach-Object managed) | Should -Be @('yes', 'no', 'no')
        $mdev = $doc.domain.devices.hostdev | Where-Object type -eq 'mdev'
        $mdev.model | Should -Be 'vfio-pci'
        $mdev.display | Should -Be 'on'
        $mdev.source.address.uuid | Should -Be $VgpuUuid
    }

    It 'shows the XML and the virsh command line with -WhatIf, and changes nothing' {
        $vm = New-TestGuest $Libvirt
        $before = Get-InactiveXml $Libvirt $vm
        $text = Get-WhatIfText { Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WhatIf -WarningAction SilentlyContinue }
        $text | Should -BeLike "*What if: Attach PCI hostdev 0000:02:00.0 to guest '$vm'*"
        $uuid = (Invoke-Virsh $Libvirt domuuid --domain $vm).Trim()
        $text | Should -BeLike "*virsh -c '$Uri' attach-device --domain $uuid --file '<temporary file>' --persistent*"
        $text | Should -BeLike "*<hostdev mode='subsystem' type='pci' managed='yes'>*<driver name='vfio' />*<address domain='0x0000' bus='0x02' slot='0x00' function='0x0' />*"
        Get-InactiveXml $Libvirt $vm | Should -Be $before
    }

    It 'attaches a piped vGPU object (Uuid and a parent Address) as an mdev hostdev without choosing a parameter set' {
        $vm = New-TestGuest $Libvirt -Graphics
        $vgpu = [pscustomobject]@{ Uuid = [guid]$VgpuUuid; Address = $Quadro.Address; TypeId = 'nvidia-63' }
        $out = $vgpu | Add-GpuHostdev -Domain $vm -Display -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $out.Kind | Should -Be 'Mdev'
        $out.Uuid | Should -Be ([guid]$VgpuUuid)
        $out.Address | Should -BeNullOrEmpty
        $out.Display | Should -BeTrue
        $out.Model | Should -Be 'vfio-pci'
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev).Count | Should -Be 1
    }

    It 'attaches what Get-VgpuDevice writes: Get-VgpuDevice | Add-GpuHostdev' {
        $uuid = [guid]::NewGuid().ToString()
        $withMdev = New-FixtureHost -Name Seed -Configure { param($b) $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($uuid, '0000:01:00.0', 'nvidia-63', 20)) }
        try {
            $vm = New-TestGuest $Libvirt
            $vgpu = Get-VgpuDevice -Root $withMdev.Root
            $vgpu.Uuid | Should -Be $uuid
            $out = $vgpu | Add-GpuHostdev -Domain $vm -Root $withMdev.Root -Connect $Uri
            $out.Kind | Should -Be 'Mdev'
            $out.Uuid | Should -Be ([guid]$uuid)
            (Get-GpuHostdev $vm -Connect $Uri).Uuid | Should -Be ([guid]$uuid)
        }
        finally { $withMdev | Remove-FixtureHost }
    }

    It 'warns that the mdev does not exist on the host, and not when it does' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Uuid $VgpuUuid -Root $Root -Connect $Uri -Config -WarningVariable w -WarningAction SilentlyContinue
        "$w" | Should -BeLike "*mediated device $VgpuUuid does not exist on this host*"
        $other = New-TestGuest $Libvirt
        $uuid = [guid]::NewGuid().ToString()
        $withMdev = New-FixtureHost -Name Seed -Configure { param($b) $b.AddMdev([GpuVirt.Fixtures.FixtureMdevDevice]::new($uuid, '0000:01:00.0', 'nvidia-63', 20)) }
        try {
            $null = Add-GpuHostdev $other -Uuid $uuid -Root $withMdev.Root -Connect $Uri -WarningVariable w2
            $w2 | Should -BeNullOrEmpty
        }
        finally { $withMdev | Remove-FixtureHost }
    }

    It 'warns about the HDMI audio companion, and -IncludeCompanion attaches it in the same virsh process' {
        $vm = New-TestGuest $Libvirt
        $null = Get-WhatIfText { Add-GpuHostdev $vm -Address 02:00.0 -Root $Root -Connect $Uri -WhatIf -WarningVariable script:w -WarningAction SilentlyContinue }
        "$w" | Should -BeLike '*0000:02:00.0 shares its slot or IOMMU group 13 with 0000:02:00.1 (Audio device, driver snd_hda_intel)*-IncludeCompanion*'

        $vm2 = New-TestGuest $Libvirt
        $verbose = $Quadro | Add-GpuHostdev -Domain $vm2 -IncludeCompanion -Root $Root -Connect $Uri -Verbose -WarningVariable w2 4>&1
        $objects = @($verbose | Where-Object { $_ -is [GpuVirt.Core.Libvirt.Hostdev] })
        ($objects | ForEach-Object { $_.Address.ToString() }) | Should -Be @('0000:02:00.0', '0000:02:00.1')
        $w2 | Should -BeNullOrEmpty
        $attachRuns = @($verbose | Where-Object { "$_" -like 'Running: virsh*attach-device*' })
        $attachRuns.Count | Should -Be 1
        ([regex]::Matches("$($attachRuns[0])", 'attach-device')).Count | Should -Be 2
        @(([xml](Get-InactiveXml $Libvirt $vm2)).domain.devices.hostdev).Count | Should -Be 2
    }

    It 'attaches several piped devices to one guest with one virsh process for the attach' {
        $vm = New-TestGuest $Libvirt
        $verbose = Get-PciDevice -Root $Root -Address 02:00.0, 02:00.1, 00:19.0, 00:1f.2 |
            Add-GpuHostdev -Domain $vm -Config -Root $Root -Connect $Uri -Verbose 4>&1
        @($verbose | Where-Object { $_ -is [GpuVirt.Core.Libvirt.Hostdev] }).Count | Should -Be 4
        $runs = @($verbose | Where-Object { "$_" -like 'Running: virsh*' })
        # the guest list and every definition (ownership); under the host lock the same again (a guest that took a
        # device meanwhile refuses it) and the guest's own definitions (the checks before applying); then one process
        # for all four attaches and the read-back
        $runs.Count | Should -Be 6
        @($runs[0..4] | Where-Object { "$_" -match 'attach-device' }).Count | Should -Be 0
        ([regex]::Matches("$($runs[5])", 'attach-device')).Count | Should -Be 4
    }

    It 'maps -Config and -Live to virsh flags; -Live on a shut-off guest fails with libvirt''s reason' {
        $vm = New-TestGuest $Libvirt
        $verbose = Add-GpuHostdev $vm -Address 00:19.0 -Config -Root $Root -Connect $Uri -Verbose 4>&1
        $uuid = (Invoke-Virsh $Libvirt domuuid --domain $vm).Trim()
        "$($verbose | Where-Object { "$_" -like 'Running:*attach-device*' })" | Should -BeLike "*attach-device --domain $uuid --file * --config; *"
        { Add-GpuHostdev $vm -Address 00:1f.2 -Live -Root $Root -Connect $Uri -ErrorAction Stop } |
            Should -Throw -ErrorId 'VirshCommandFailed,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage '*domain is not running*'
    }

    It 'stops with HostdevInUse naming the guest that holds the GPU, and -Force attaches it anyway' {
        $holder = New-TestGuest $Libvirt
        $other = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $holder -Address 02:00.0 -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $before = Get-InactiveXml $Libvirt $other
        { Add-GpuHostdev $other -Address 02:00.0 -Root $Root -Connect $Uri -ErrorAction Stop -WarningAction SilentlyContinue } |
            Should -Throw -ErrorId 'HostdevInUse,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage "*already assigned to guest '$holder'*"
        Get-InactiveXml $Libvirt $other | Should -Be $before

        $out = Add-GpuHostdev $other -Address 02:00.0 -Force -Root $Root -Connect $Uri -WarningVariable w -WarningAction SilentlyContinue
        $out.Domain | Should -Be $other
        "$w" | Should -BeLike "*already assigned to guest '$holder'*-Force*"
    }

    It 'stops with HostdevInUse for a vGPU UUID another guest holds' {
        $holder = New-TestGuest $Libvirt
        $other = New-TestGuest $Libvirt
        $uuid = [guid]::NewGuid().ToString()
        $null = Add-GpuHostdev $holder -Uuid $uuid -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $err = $null
        $null = Add-GpuHostdev $other -Uuid $uuid -Root $Root -Connect $Uri -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Be 'HostdevInUse,GpuVirt.Commands.AddGpuHostdevCommand'
        $err[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
        $err[0].Exception.Message | Should -BeLike "*each vGPU UUID is assigned to one guest at a time*"
    }

    It 'turns attaching the same device twice into HostdevAlreadyAttached with libvirt''s own reason' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 00:19.0 -Root $Root -Connect $Uri
        { Add-GpuHostdev $vm -Address 00:19.0 -Root $Root -Connect $Uri -ErrorAction Stop } |
            Should -Throw -ErrorId 'HostdevAlreadyAttached,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage '*device is already in the domain configuration*'
    }

    It 'reports the one device libvirt refuses and still attaches the others of the same virsh process' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 00:19.0 -Root $Root -Connect $Uri
        $err = $null
        $verbose = Get-PciDevice -Root $Root -Address 00:1f.2, 00:19.0 |
            Add-GpuHostdev -Domain $vm -Root $Root -Connect $Uri -Verbose -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue 4>&1
        @($verbose | Where-Object { "$_" -like 'Running:*attach-device*' }).Count | Should -Be 1
        ($verbose | Where-Object { $_ -is [GpuVirt.Core.Libvirt.Hostdev] }).Address.ToString() | Should -Be '0000:00:1f.2'
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Be 'HostdevAlreadyAttached,GpuVirt.Commands.AddGpuHostdevCommand'
        $err[0].TargetObject | Should -Be '0000:00:19.0'
        $err[0].Exception.Message | Should -Not -BeLike '*hostdev-*.xml*'
        @(([xml](Get-InactiveXml $Libvirt $vm)).domain.devices.hostdev).Count | Should -Be 2
    }

    It 'takes the guest by UUID as virsh does, and reports the hostdev under its name' {
        $vm = New-TestGuest $Libvirt
        $uuid = (Invoke-Virsh $Libvirt domuuid --domain $vm).Trim()
        $out = Add-GpuHostdev $uuid -Address 00:19.0 -Root $Root -Connect $Uri
        $out.Domain | Should -Be $vm
    }

    It 'gives the device to the guest named, not to the guest whose UUID that name is (virsh --domain tries a UUID first)' {
        $b = New-TestGuest $Libvirt
        $bUuid = (Invoke-Virsh $Libvirt domuuid --domain $b).Trim()
        # Guest A is named like guest B's UUID.
        $a = New-TestGuest $Libvirt -Name $bUuid
        $aUuid = (Invoke-Virsh $Libvirt domuuid --domain $a).Trim()
        $aUuid | Should -Not -Be $bUuid
        $out = Add-GpuHostdev $bUuid -Address 00:19.0 -Root $Root -Connect $Uri
        $out.Domain | Should -Be $a
        @(([xml](Get-InactiveXml $Libvirt $aUuid)).domain.devices.hostdev).Where({ $_ }).Count | Should -Be 1 -Because 'the guest of that name has it'
        @(([xml](Invoke-Virsh $Libvirt dumpxml --inactive --domain $b)).domain.devices.hostdev).Where({ $_ }).Count | Should -Be 0 -Because 'the guest of that UUID does not'
        (Get-GpuHostdev $bUuid -Connect $Uri).Domain | Should -Be $a
        # The other guest is reached by its own UUID, and the ownership check sees whose the device is.
        { Add-GpuHostdev $b -Address 00:19.0 -Root $Root -Connect $Uri -ErrorAction Stop } | Should -Throw -ErrorId 'HostdevInUse,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage "*assigned to guest '$a'*"
        Get-GpuHostdev $a -Connect $Uri | Remove-GpuHostdev -Root $Root -Connect $Uri -Confirm:$false
        @(([xml](Get-InactiveXml $Libvirt $aUuid)).domain.devices.hostdev).Where({ $_ }).Count | Should -Be 0
    }

    It 'manages a guest whose name has leading and trailing spaces, and its devices count for the ownership check' {
        $spaced = '  spaced vm  '
        $null = New-TestGuest $Libvirt -Name $spaced
        $out = Add-GpuHostdev $spaced -Address 02:00.0 -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        $out.Domain | Should -BeExactly $spaced
        (Get-GpuHostdev $spaced -Connect $Uri -Inactive).Address.ToString() | Should -Be '0000:02:00.0'
        (Get-GpuHostdev -Connect $Uri -Inactive | Where-Object Domain -ceq $spaced).Count | Should -Be 1
        $other = New-TestGuest $Libvirt
        { Add-GpuHostdev $other -Address 02:00.0 -Root $Root -Connect $Uri -ErrorAction Stop -WarningAction SilentlyContinue } |
            Should -Throw -ErrorId 'HostdevInUse,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage "*assigned to guest '$spaced'*"
        Remove-GpuHostdev $spaced -Address 02:00.0 -Root $Root -Connect $Uri -Confirm:$false
        Get-GpuHostdev $spaced -Connect $Uri -Inactive | Should -BeNullOrEmpty
    }

    It 'reports an unknown guest as DomainNotFound and attaches nothing' {
        { Add-GpuHostdev 'no-such-guest' -Address 00:19.0 -Root $Root -Connect $Uri -ErrorAction Stop } |
            Should -Throw -ErrorId 'DomainNotFound,GpuVirt.Commands.AddGpuHostdevCommand' -ExpectedMessage "*no guest named 'no-such-guest'*Nothing was attached (0000:00:19.0)*"
    }

    It 'reports malformed addresses and UUIDs, devices the host does not have, bridges and -Display on PCI, changing nothing' -ForEach @(
        @{ Arguments = @{ Address = '02:00' }; Id = 'InvalidPciAddress' }
        @{ Arguments = @{ Address = "02:00.0'/><hostdev" }; Id = 'InvalidPciAddress' }
        @{ Arguments = @{ Address = '0000:02:00.8' }; Id = 'InvalidPciAddress' }
        @{ Arguments = @{ Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692' }; Id = 'InvalidMdevUuid' }
        @{ Arguments = @{ Uuid = "30820a6f-b1a5-4503-91ca-0c10ba58692a' display='on" }; Id = 'InvalidMdevUuid' }
        @{ Arguments = @{ Address = '0000:05:00.0' }; Id = 'PciDeviceNotFound' }
        @{ Arguments = @{ Address = '00:03.0' }; Id = 'HostdevNotAssignable' }
        @{ Arguments = @{ Address = '00:19.0'; Display = $true }; Id = 'HostdevDisplayNotSupported' }
        @{ Arguments = @{ Address = '00:19.0'; Uuid = '30820a6f-b1a5-4503-91ca-0c10ba58692a' }; Id = 'HostdevSourceAmbiguous' }
        @{ Arguments = @{}; Id = 'HostdevSourceMissing' }
    ) {
        $vm = New-TestGuest $Libvirt
        $before = Get-InactiveXml $Libvirt $vm
        { Add-GpuHostdev $vm @Arguments -Root $Root -Connect $Uri -ErrorAction Stop } |
            Should -Throw -ErrorId "$Id,GpuVirt.Commands.AddGpuHostdevCommand"
        Get-InactiveXml $Libvirt $vm | Should -Be $before
    }

    It 'attaches to a guest whose name holds quotes, angle brackets and shell characters, escaping it in the XML' {
        $null = New-TestGuest $Libvirt -Name $Odd
        $out = Add-GpuHostdev $Odd -Address 00:1f.2 -Root $Root -Connect $Uri
        $out.Domain | Should -Be $Odd
        $doc = [xml](Get-InactiveXml $Libvirt $Odd)
        $doc.domain.name | Should -Be $Odd
        @($doc.domain.devices.hostdev).Count | Should -Be 1
        (Get-GpuHostdev -Domain $Odd -Connect $Uri).Domain | Should -Be $Odd
    }

    It 'rejects a guest name with a line break as InvalidDomainName' {
        { Add-GpuHostdev "a`nb" -Address 00:19.0 -Root $Root -Connect $Uri -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidDomainName,GpuVirt.Commands.AddGpuHostdevCommand'
    }
}

Describe 'Get-GpuHostdev and Remove-GpuHostdev' {
    # Each test starts with no guest: the ownership rules look through every guest of the root.
    AfterEach { Clear-TestGuest $Libvirt }

    It 'lists hostdevs with their guest-side address, by name, wildcard and pipeline' {
        $vm = New-TestGuest $Libvirt -Name 'list-me'
        $null = Add-GpuHostdev $vm -Address 02:00.0 -IncludeCompanion -Root $Root -Connect $Uri
        $found = Get-GpuHostdev list-me -Connect $Uri
        $found.Count | Should -Be 2
        $found[0] | Should -BeOfType ([GpuVirt.Core.Libvirt.Hostdev])
        $found.ForEach({ $_.Address.ToString() }) | Should -Be @('0000:02:00.0', '0000:02:00.1')
        $found.GuestAddress | Should -Not -Contain $null
        (Get-GpuHostdev 'list-*' -Connect $Uri).Count | Should -Be 2
        ('list-me' | Get-GpuHostdev -Connect $Uri -Inactive).Count | Should -Be 2
        (Get-GpuHostdev -Connect $Uri | Where-Object Domain -eq 'list-me').Count | Should -Be 2
    }

    It 'reads the connection from LIBVIRT_DEFAULT_URI when -Connect is not given' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 00:19.0 -Root $Root -Connect $Uri
        $saved = $env:LIBVIRT_DEFAULT_URI
        try {
            $env:LIBVIRT_DEFAULT_URI = $Uri
            (Get-GpuHostdev $vm -Verbose 4>&1 | Where-Object { "$_" -like 'Running:*' } | Select-Object -First 1) | Should -BeLike "*virsh -c '$Uri' *"
            (Get-GpuHostdev $vm).Address.ToString() | Should -Be '0000:00:19.0'
        }
        finally { $env:LIBVIRT_DEFAULT_URI = $saved }
    }

    It 'reports an unknown guest as DomainNotFound' {
        { Get-GpuHostdev 'no-such-guest' -Connect $Uri -ErrorAction Stop } | Should -Throw -ErrorId 'DomainNotFound,GpuVirt.Commands.GetGpuHostdevCommand'
    }

    It 'Get-GpuHostdev vm | Remove-GpuHostdev detaches everything in one virsh process and restores the original definition' {
        $vm = New-TestGuest $Libvirt -Graphics
        $original = Get-InactiveXml $Libvirt $vm
        $null = Add-GpuHostdev $vm -Address 02:00.0 -IncludeCompanion -Root $Root -Connect $Uri
        $null = Add-GpuHostdev $vm -Uuid $VgpuUuid -Display -Root $Root -Connect $Uri -WarningAction SilentlyContinue
        (Get-GpuHostdev $vm -Connect $Uri).Count | Should -Be 3

        $verbose = Get-GpuHostdev $vm -Connect $Uri | Remove-GpuHostdev -Connect $Uri -Root $Root -Verbose 4>&1
        $runs = @($verbose | Where-Object { "$_" -like 'Running: virsh*' })
        # the guest list (the guest resolved once, to its UUID), its definitions (a function held as an
        # <interface type='hostdev'> is detached by that element), then one process for the three detaches
        $runs.Count | Should -Be 3
        ([regex]::Matches("$($runs[2])", 'detach-device')).Count | Should -Be 3
        Get-InactiveXml $Libvirt $vm | Should -Be $original
        Get-GpuHostdev $vm -Connect $Uri | Should -BeNullOrEmpty
    }

    It 'shows what it would detach with -WhatIf and keeps the device' {
        $vm = New-TestGuest $Libvirt
        $null = Add-GpuHostdev $vm -Address 00:19.0 -Root $Root -Connect $Uri
        $text = Get-WhatIfText { Get-GpuHostdev $vm -Connect $Uri | Remove-GpuHostdev -Connect $Uri -Root $Root -WhatIf }
        $uuid = (Invoke-Virsh $Libvirt domuuid --domain $vm).Trim()
        $text | Should -BeLike "*What if: Detach PCI hostdev 0000:00:19.0 from guest '$vm'*detach-device --domain $uuid --file '<temporary file>' --persistent*"
        (Get-GpuHostdev $vm -Connect $Uri).Count | Should -Be 1
    }

    It 'reports a device the guest does not have as HostdevNotAttached' {
        $vm = New-TestGuest $Libvirt
        { Remove-GpuHostdev $vm -Address 02:00.0 -Connect $Uri -Root $Root -ErrorAction Stop } |
            Should -Throw -ErrorId 'HostdevNotAttached,GpuVirt.Commands.RemoveGpuHostdevCommand' -ExpectedMessage '*device not found*'
        { Remove-GpuHostdev $vm -Uuid 'not-a-uuid' -Connect $Uri -Root $Root -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidMdevUuid,GpuVirt.Commands.RemoveGpuHostdevCommand'
    }

    It 'completes guest names for -Domain from virsh list --all --name, quoting names that need it' {
        $null = New-TestGuest $Libvirt -Name 'complete-me'
        $line = "Get-GpuHostdev -Connect '$Uri' -Domain compl"
        $result = [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null)
        $result.CompletionMatches.CompletionText | Should -Be @('complete-me')

        $null = New-TestGuest $Libvirt -Name $Odd
        $line = "Add-GpuHostdev -Connect '$Uri' -Domain we"
        $result = [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null)
        $result.CompletionMatches.CompletionText | Should -Be @("'" + $Odd.Replace("'", "''") + "'")

        $line = "Set-VgpuConsole -Connect '$Uri' -Domain compl"
        [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches.CompletionText | Should -Be @('complete-me')
    }

    It 'offers no guest names when libvirt does not answer, after one virsh stopped at 2 s (hung virsh stand-in)' {
        # A stand-in for a virsh whose libvirtd hangs: it logs its argv and its pid, then sleeps.
        $dir = Join-Path ([IO.Path]::GetTempPath()) ('gpuvirt-hung-virsh-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $dir
        $stub = Join-Path $dir 'virsh'
        Set-Content -LiteralPath $stub -Value "#!/bin/sh`nprintf '%s\n' `"`$@`" > '$dir/argv'`necho `$`$ > '$dir/pid'`nexec sleep 120"
        chmod +x $stub
        $saved = $env:PATH
        try {
            $env:PATH = "$dir" + [IO.Path]::PathSeparator + $saved
            $line = "Set-VgpuConsole -Connect test:///hung -Domain v"
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $offered = [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches
            $watch.Stop()
            $offered | Should -BeNullOrEmpty
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'a completer is bounded at 2 s'
            $argv = @(Get-Content -LiteralPath "$dir/argv")
            $argv[0..1] | Should -Be @('-c', 'test:///hung')
            $argv[2] | Should -BeLike 'list --all --uuid --name; echo @gpuvirt-*-0; list --uuid --name; echo @gpuvirt-*-1'
            $argv.Count | Should -Be 3
            # Stopped, not left behind, and not started again.
            $stubPid = [int](Get-Content -LiteralPath "$dir/pid")
            $deadline = [DateTime]::UtcNow.AddSeconds(15)
            while ((Test-Path "/proc/$stubPid") -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            Test-Path "/proc/$stubPid" | Should -BeFalse
            Start-Sleep -Seconds 3
            [int](Get-Content -LiteralPath "$dir/pid") | Should -Be $stubPid
        }
        finally {
            $env:PATH = $saved
            Remove-Item -Recurse -Force -LiteralPath $dir
        }
    }
}

Describe 'virsh itself' {
    It 'is named with the package to install when it is missing' {
        $saved = $env:PATH
        try {
            $env:PATH = '/nonexistent'
            { Get-GpuHostdev -Connect $Uri -ErrorAction Stop } |
                Should -Throw -ErrorId 'ProgramNotFound,GpuVirt.Commands.GetGpuHostdevCommand' -ExpectedMessage '*libvirt-clients (Debian, Ubuntu)*'
        }
        finally { $env:PATH = $saved }
    }

    It 'reports a connection it cannot open as LibvirtConnectFailed' {
        { Get-GpuHostdev -Connect "test:///$($Libvirt.Directory)/missing.xml" -ErrorAction Stop } |
            Should -Throw -ErrorId 'LibvirtConnectFailed,GpuVirt.Commands.GetGpuHostdevCommand'
    }

    It 'reads guests and their hostdevs from a test-driver host file' {
        $uri = [GpuVirt.Fixtures.LibvirtFixture]::TestDriver().AddGuest('g1', "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></source></hostdev>").Write((Join-Path $Libvirt.Directory 'node.xml'))
        $h = Get-GpuHostdev -Connect $uri
        $h.Domain | Should -Be 'g1'
        $h.Address.ToString() | Should -Be '0000:02:00.0'
    }
}

Describe 'ConvertTo-XorgBusId' {
    # Each test starts with no guest: the ownership rules look through every guest of the root.
    AfterEach { Clear-TestGuest $Libvirt }

    It 'turns <In> into <Out>' -ForEach @(
        @{ In = '00:09.0'; Out = 'PCI:0:9:0' }
        @{ In = '00:0a.0'; Out = 'PCI:0:10:0' }
        @{ In = '0000:00:0a.0'; Out = 'PCI:0:10:0' }
        @{ In = '0000:1f:1f.7'; Out = 'PCI:31:31:7' }
        @{ In = '0001:03:00.0'; Out = 'PCI:3@1:0:0' }
        @{ In = 'pci_0000_02_00_0'; Out = 'PCI:2:0:0' }
    ) {
        ConvertTo-XorgBusId $In | Should -Be $Out
        $In | ConvertTo-XorgBusId | Should -Be $Out
    }

    It 'takes address text, devices and (first) a hostdev''s guest address' {
        ConvertTo-XorgBusId '00:0a.0' | Should -Be 'PCI:0:10:0'
        $Quadro | ConvertTo-XorgBusId | Should -Be 'PCI:2:0:0'
        [pscustomobject]@{ Address = '00:0b.0' } | ConvertTo-XorgBusId | Should -Be 'PCI:0:11:0'
        $vm = New-TestGuest $Libvirt
        $h = Add-GpuHostdev $vm -Address 00:19.0 -Root $Root -Connect $Uri
        $h.GuestAddress -match '^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$' | Should -BeTrue
        $expected = 'PCI:{0}:{1}:{2}' -f [Convert]::ToInt32($Matches[1], 16), [Convert]::ToInt32($Matches[2], 16), [Convert]::ToInt32($Matches[3], 16)
        Get-GpuHostdev $vm -Connect $Uri | ConvertTo-XorgBusId | Should -Be $expected
        $expected | Should -Not -Be 'PCI:0:25:0'
    }

    It 'writes the seed''s Section "Device" block' {
        $expected = @(
            'Section "Device"'
            '    Identifier     "Device0"'
            '    Driver         "nvidia"'
            '    VendorName     "NVIDIA Corporation"'
            '    BusID          "PCI:0:9:0"'
            'EndSection'
        ) -join "`n"
        ConvertTo-XorgBusId 00:09.0 -DeviceSection | Should -BeExactly $expected
        ConvertTo-XorgBusId 00:09.0 -DeviceSection -Identifier GPU1 | Should -BeLike '*Identifier     "GPU1"*'
    }

    It 'reports bad input clearly' {
        { ConvertTo-XorgBusId '00:0g.0' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidPciAddress,GpuVirt.Commands.ConvertToXorgBusIdCommand'
        { ConvertTo-XorgBusId (Get-Date) -ErrorAction Stop } | Should -Throw -ErrorId 'XorgBusIdInputInvalid,GpuVirt.Commands.ConvertToXorgBusIdCommand'
        { [pscustomobject]@{ Domain = 'vm1'; GuestAddress = $null } | ConvertTo-XorgBusId -ErrorAction Stop } |
            Should -Throw -ErrorId 'GuestAddressNotAssigned,GpuVirt.Commands.ConvertToXorgBusIdCommand'
        { ConvertTo-XorgBusId 00:09.0 -DeviceSection -Identifier 'a"b' } | Should -Throw -ErrorId 'InvalidXorgValue,GpuVirt.Commands.ConvertToXorgBusIdCommand'
    }
}

Describe 'Dismount-GpuHostDriver and Mount-GpuHostDriver (sysfs, on fixture trees)' {
    BeforeEach {
        $script:Tree = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('vfio-pci') }
        $script:AudioDir = Join-Path $Tree.Root 'sys/bus/pci/devices/0000:02:00.1'
    }
    AfterEach { $script:Tree | Remove-FixtureHost }

    It 'writes driver_override, the old driver''s unbind and drivers_probe, then reads the driver link: unchanged means HostDriverNotBound' {
        $verbose = $null
        $err = $null
        $out = Dismount-GpuHostDriver 02:00.1 -Root $Tree.Root -Confirm:$false -Verbose -ErrorVariable err -ErrorAction SilentlyContinue 4>&1
        $writes = @($out | Where-Object { "$_" -like 'Writing *' } | ForEach-Object { "$_" })
        $writes | Should -Be @(
            "Writing 'vfio-pci' to '$AudioDir/driver_override'"
            "Writing '0000:02:00.1' to '$AudioDir/driver/unbind'"
            "Writing '0000:02:00.1' to '$($Tree.Root)/sys/bus/pci/drivers_probe'"
            "Writing '' to '$AudioDir/driver_override'"
        )
        # On a tree no kernel binds anything: the link still names the old driver, and the cmdlet says so.
        $err[0].FullyQualifiedErrorId | Should -Be 'HostDriverNotBound,GpuVirt.Commands.DismountGpuHostDriverCommand'
        $err[0].Exception.Message | Should -BeLike "*did not bind to 'vfio-pci'*its driver is 'snd_hda_intel'*"
        Get-Content -Raw (Join-Path $Tree.Root 'sys/bus/pci/drivers/snd_hda_intel/unbind') | Should -Be '0000:02:00.1'
        Get-Content -Raw (Join-Path $Tree.Root 'sys/bus/pci/drivers_probe') | Should -Be '0000:02:00.1'
        # driver_override was put back (a newline clears it on a real kernel)
        Get-Content -Raw (Join-Path $AudioDir 'driver_override') | Should -Be "`n"
    }

    It 'puts driver_override back and says what it left when <Failing> fails (EIO injected by strace)' -TestCases @(
        @{ Failing = 'unbind'; File = 'sys/bus/pci/drivers/snd_hda_intel/unbind' }
        @{ Failing = 'drivers_probe'; File = 'sys/bus/pci/drivers_probe' }
    ) {
        param($Failing, $File)
        # The real write(2) to that one file fails with EIO (strace -P the file -e inject=write:error=EIO), in a child
        # pwsh: every other write, driver_override's included, goes through.
        $target = (Resolve-Path -LiteralPath (Join-Path $Tree.Root $File)).Path
        $pwsh = [Environment]::GetCommandLineArgs()[0]
        $script = "Import-Module '$env:GPUVIRT_MODULE'; try { `$null = Dismount-GpuHostDriver 02:00.1 -Root '$($Tree.Root)' -Confirm:`$false -ErrorAction Stop; 'result:bound' } " +
            "catch { 'result:' + `$_.FullyQualifiedErrorId; `$_.Exception.Message }"
        $out = & strace -f -qq -o /dev/null -P $target -e trace=write -e inject=write:error=EIO dotnet $pwsh -NoProfile -NonInteractive -Command $script 2>&1
        $text = $out -join "`n"
        Get-Content -Raw (Join-Path $AudioDir 'driver_override') | Should -Be "`n" -Because "driver_override is cleared again (a newline clears it on a real kernel): $text"
        $text | Should -Match 'result:SysfsWriteFailed,GpuVirt\.Commands\.DismountGpuHostDriverCommand' -Because $text
        $text | Should -Match "0000:02:00\.1 was not bound to 'vfio-pci'"
        $text | Should -Match "driver_override was put back; the function is now bound to 'snd_hda_intel'"
        (Get-PciDevice -Root $Tree.Root 02:00.1).Driver | Should -Be 'snd_hda_intel'
    }

    It 'succeeds when the driver link names the target afterwards (a function already on vfio-pci) without writing' {
        $t = New-FixtureHost -Name Seed -Configure { param($b) ($b.Devices | Where-Object Address -eq '0000:02:00.1').Driver = 'vfio-pci' }
        try {
            $out = Dismount-GpuHostDriver 02:00.1 -Root $t.Root -Confirm:$false -Verbose 4>&1
            @($out | Where-Object { "$_" -like 'Writing *' }).Count | Should -Be 0
            ($out | Where-Object { $_ -is [GpuVirt.Core.PciDevice] }).Driver | Should -Be 'vfio-pci'
        }
        finally { $t | Remove-FixtureHost }
    }

    It 'stops with HostDriverNotLoaded when the vfio-pci driver is not there, writing nothing' {
        { Dismount-GpuHostDriver 02:00.1 -Root $Root -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'HostDriverNotLoaded,GpuVirt.Commands.DismountGpuHostDriverCommand' -ExpectedMessage '*modprobe vfio-pci*'
        Get-Content -Raw (Join-Path $Root 'sys/bus/pci/devices/0000:02:00.1/driver_override') | Should -Be "(null)`n"
    }

    It 'writes nothing with -WhatIf and says what it would write' {
        $text = Get-WhatIfText { Get-PciDevice -Root $Tree.Root 02:00.1 | Dismount-GpuHostDriver -Root $Tree.Root -WhatIf }
        $text | Should -BeLike "*What if: *write 'vfio-pci' to /sys/bus/pci/devices/0000:02:00.1/driver_override, '0000:02:00.1' to /sys/bus/pci/devices/0000:02:00.1/driver/unbind, '0000:02:00.1' to /sys/bus/pci/drivers_probe*on target `"0000:02:00.1 (driver: snd_hda_intel)`"*"
        Get-Content -Raw (Join-Path $AudioDir 'driver_override') | Should -Be "(null)`n"
        (Get-Item (Join-Path $Tree.Root 'sys/bus/pci/drivers_probe')).Length | Should -Be 0
    }

    It 'reports bad addresses and absent devices' {
        { Dismount-GpuHostDriver 'nonsense' -Root $Tree.Root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidPciAddress,GpuVirt.Commands.DismountGpuHostDriverCommand'
        { Dismount-GpuHostDriver '05:00.0' -Root $Tree.Root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'PciDeviceNotFound,GpuVirt.Commands.DismountGpuHostDriverCommand'
        { Dismount-GpuHostDriver '02:00.1' -Root $Tree.Root -Method Virsh -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'HostDriverMethodNotSupported,GpuVirt.Commands.DismountGpuHostDriverCommand'
    }

    It 'binds to another loaded driver through sysfs (a mediated-device parent driver), and refuses a name that is no driver name' {
        $t = New-FixtureHost -Name Seed -Configure { param($b) $null = $b.AddDriver('gpuvirt_mdev_parent') }
        try {
            $dir = Join-Path $t.Root 'sys/bus/pci/devices/0000:02:00.0'
            $out = Dismount-GpuHostDriver 02:00.0 -Driver gpuvirt_mdev_parent -Root $t.Root -Confirm:$false -Verbose -ErrorAction SilentlyContinue 4>&1
            "$($out | Where-Object { "$_" -like 'Writing *' } | Select-Object -First 1)" | Should -Be "Writing 'gpuvirt_mdev_parent' to '$dir/driver_override'"
            { Dismount-GpuHostDriver 02:00.0 -Driver '../../../etc/x' -Root $t.Root -Confirm:$false } |
                Should -Throw -ErrorId 'InvalidDriverName,GpuVirt.Commands.DismountGpuHostDriverCommand'
        }
        finally { $t | Remove-FixtureHost }
    }

    It 'Mount-GpuHostDriver gives back a function that driver_override moved to any driver, and says when the link did not move' {
        $t = New-FixtureHost -Name Seed -Configure { param($b) $d = $b.Devices | Where-Object Address -eq '0000:02:00.0'; $d.Driver = 'gpuvirt_mdev_parent'; $d.DriverOverride = 'gpuvirt_mdev_parent' }
        try {
            $dir = Join-Path $t.Root 'sys/bus/pci/devices/0000:02:00.0'
            $err = $null
            $out = Mount-GpuHostDriver 02:00.0 -Root $t.Root -Confirm:$false -Verbose -ErrorVariable err -ErrorAction SilentlyContinue 4>&1
            @($out | Where-Object { "$_" -like 'Writing *' } | ForEach-Object { "$_" }) | Should -Be @(
                "Writing '' to '$dir/driver_override'"
                "Writing '0000:02:00.0' to '$dir/driver/unbind'"
                "Writing '0000:02:00.0' to '$($t.Root)/sys/bus/pci/drivers_probe'"
            )
            $err[0].FullyQualifiedErrorId | Should -Be 'HostDriverNotBound,GpuVirt.Commands.MountGpuHostDriverCommand'
            $err[0].Exception.Message | Should -BeLike "*still bound to 'gpuvirt_mdev_parent'*"
        }
        finally { $t | Remove-FixtureHost }
    }

    It 'Mount-GpuHostDriver unbinds the passthrough driver and probes; a link still on pci-stub is HostDriverNotBound' {
        $gpuDir = Join-Path $Tree.Root 'sys/bus/pci/devices/0000:02:00.0'
        $err = $null
        $out = Mount-GpuHostDriver 02:00.0 -Root $Tree.Root -Confirm:$false -Verbose -ErrorVariable err -ErrorAction SilentlyContinue 4>&1
        @($out | Where-Object { "$_" -like 'Writing *' } | ForEach-Object { "$_" }) | Should -Be @(
            "Writing '0000:02:00.0' to '$gpuDir/driver/unbind'"
            "Writing '0000:02:00.0' to '$($Tree.Root)/sys/bus/pci/drivers_probe'"
        )
        $err[0].FullyQualifiedErrorId | Should -Be 'HostDriverNotBound,GpuVirt.Commands.MountGpuHostDriverCommand'
        $err[0].Exception.Message | Should -BeLike "*still bound to 'pci-stub'*"
    }

    It 'Mount-GpuHostDriver leaves a function that a host driver holds alone' {
        $out = Mount-GpuHostDriver 02:00.1 -Root $Tree.Root -Confirm:$false -Verbose 4>&1
        @($out | Where-Object { "$_" -like 'Writing *' }).Count | Should -Be 0
        ($out | Where-Object { $_ -is [GpuVirt.Core.PciDevice] }).Driver | Should -Be 'snd_hda_intel'
    }

    It 'Mount-GpuHostDriver clears driver_override of an unbound function, probes, and warns when no driver takes it' {
        $t = New-FixtureHost -Name Seed -Configure { param($b) $d = $b.Devices | Where-Object Address -eq '0000:02:00.1'; $d.Driver = [NullString]::Value; $d.DriverOverride = 'vfio-pci' }
        try {
            $out = Mount-GpuHostDriver 02:00.1 -Root $t.Root -Confirm:$false -Verbose -WarningVariable w 4>&1 3>$null
            $dir = Join-Path $t.Root 'sys/bus/pci/devices/0000:02:00.1'
            @($out | Where-Object { "$_" -like 'Writing *' } | ForEach-Object { "$_" }) | Should -Be @(
                "Writing '' to '$dir/driver_override'"
                "Writing '0000:02:00.1' to '$($t.Root)/sys/bus/pci/drivers_probe'"
            )
            "$w" | Should -BeLike '*no host driver took it*'
        }
        finally { $t | Remove-FixtureHost }
    }
}

Describe 'Dismount-GpuHostDriver through virsh' {
    It 'runs virsh nodedev-detach --driver vfio on the live host, and turns libvirt''s refusal into VirshCommandFailed' {
        # The test driver has no node-device detach, so nothing on this machine changes; the command line is real.
        # Not a bridge-class function and nothing the host needs: those are refused before virsh is asked.
        $endpoint = Get-PciDevice | Where-Object { $_.BaseClass -ne 6 -and -not $_.IsHostCritical -and $_.Driver -and $_.Driver -notin 'vfio-pci', 'pci-stub' } | Select-Object -First 1
        $endpoint | Should -Not -BeNullOrEmpty
        $uri = [GpuVirt.Fixtures.LibvirtFixture]::TestDriver().AddPciDevice($endpoint.Address.ToString(), $endpoint.Driver).Write((Join-Path $Libvirt.Directory 'node-detach.xml'))
        $err = $null
        $out = Dismount-GpuHostDriver $endpoint.Address -Method Virsh -Connect $uri -Confirm:$false -Verbose -ErrorVariable err -ErrorAction SilentlyContinue 4>&1
        "$($out | Where-Object { "$_" -like 'Running:*' })" | Should -Be "Running: virsh -c $uri nodedev-detach --device pci_$($endpoint.Address -replace '[:.]', '_') --driver vfio"
        $err[0].FullyQualifiedErrorId | Should -Be 'VirshCommandFailed,GpuVirt.Commands.DismountGpuHostDriverCommand'
        $err[0].Exception.Message | Should -BeLike '*not supported*'
        (Get-PciDevice $endpoint.Address).Driver | Should -Be $endpoint.Driver
    }
}
