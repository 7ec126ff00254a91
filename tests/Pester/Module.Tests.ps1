# The module as an assembly: what it makes public, and that its version has one source.
BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    $script:Repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:Assembly = (Get-Command Get-PciDevice).ImplementingType.Assembly
    $script:Public = @($Assembly.GetExportedTypes())
    $script:CmdletTypes = @($Public | Where-Object { $_.IsSubclassOf([System.Management.Automation.PSCmdlet]) })

    # The module's own types a type stands for: itself, an array's element, a generic's arguments, Nullable's value.
    function Get-ModuleType([type] $Type) {
        if ($null -eq $Type) { return }
        if ($Type.HasElementType) { Get-ModuleType $Type.GetElementType(); return }
        if ($Type.IsGenericType) { foreach ($argument in $Type.GetGenericArguments()) { Get-ModuleType $argument } }
        if ($Type.Assembly -eq $script:Assembly) { $Type }
    }

    # The module's static methods its own format views call: [GpuVirt.X.Type]::Method(...), and the code properties
    # of its type data.
    function Get-FormatCall {
        $format = Get-Content -Raw (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.Format.ps1xml')
        foreach ($match in [regex]::Matches($format, '\[(GpuVirt\.[A-Za-z0-9_.]+)\]::([A-Za-z0-9_]+)')) {
            [pscustomobject]@{ Type = $match.Groups[1].Value; Method = $match.Groups[2].Value }
        }
        $types = [xml](Get-Content -Raw (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.Types.ps1xml'))
        foreach ($reference in $types.SelectNodes('//GetCodeReference')) {
            [pscustomobject]@{ Type = $reference.TypeName; Method = $reference.MethodName }
        }
    }

    # Every type a user meets at the prompt: what the cmdlets take and emit, and the types of those types' public
    # properties, to the end; and the types the module's own format views call.
    function Get-ReachableType {
        $seen = [System.Collections.Generic.HashSet[type]]::new()
        $queue = [System.Collections.Generic.Queue[type]]::new()
        foreach ($command in Get-Command -Module GpuVirt -CommandType Cmdlet) {
            foreach ($parameter in $command.Parameters.Values) { Get-ModuleType $parameter.ParameterType | ForEach-Object { $queue.Enqueue($_) } }
            foreach ($output in $command.OutputType) { Get-ModuleType $output.Type | ForEach-Object { $queue.Enqueue($_) } }
        }
        foreach ($call in Get-FormatCall) { $queue.Enqueue($script:Assembly.GetType($call.Type, $true)) }
        while ($queue.Count -gt 0) {
            $type = $queue.Dequeue()
            if (-not $seen.Add($type)) { continue }
            if ($type.BaseType -and $type.BaseType.Assembly -eq $script:Assembly) { $queue.Enqueue($type.BaseType) }
            foreach ($property in $type.GetProperties([Reflection.BindingFlags]'Public, Instance, Static')) {
                Get-ModuleType $property.PropertyType | ForEach-Object { $queue.Enqueue($_) }
            }
        }
        $seen
    }
}

Describe 'The public surface' {
    It 'is the cmdlets, their abstract bases, and the types they take and emit: no core plumbing' {
        $reachable = Get-ReachableType
        $extra = @($Public | Where-Object { $_ -notin $CmdletTypes -and -not $reachable.Contains($_) } | ForEach-Object FullName)
        $extra | Should -BeNullOrEmpty -Because 'sysfs writers, runners, parsers, planners and journals are internal'
    }

    It 'has plumbing behind it: the runner, the sysfs writer, the planners and the journal are not public' {
        foreach ($name in 'GpuVirt.Core.ProcessRunner', 'GpuVirt.Core.SysfsWriter', 'GpuVirt.Core.Planning.PlanExecutor',
            'GpuVirt.Core.Planning.HostdevPlanner', 'GpuVirt.Core.Journal.ChangeJournal', 'GpuVirt.Core.Libvirt.Virsh', 'GpuVirt.Core.HostRoot') {
            $type = $Assembly.GetType($name, $true)
            $type.IsPublic | Should -BeFalse -Because "$name is core plumbing"
        }
        'GpuVirt.Core.ProcessRunner' -as [type] | Should -BeNullOrEmpty
    }

    It 'gives a non-cmdlet type no public method but value methods and what the format views call (none that changes the host)' {
        $allowed = 'ToString', 'Equals', 'GetHashCode', 'CompareTo', 'Parse', 'TryParse'
        $formatCalls = @(Get-FormatCall | ForEach-Object { "$($_.Type).$($_.Method)" })
        $methods = foreach ($type in $Public | Where-Object { $_ -notin $CmdletTypes -and -not $_.IsEnum }) {
            $type.GetMethods([Reflection.BindingFlags]'Public, Instance, Static, DeclaredOnly') |
                Where-Object { -not $_.IsSpecialName -and $_.Name -notin $allowed -and "$($type.FullName).$($_.Name)" -notin $formatCalls } |
                ForEach-Object { "$($type.FullName).$($_.Name)" }
        }
        @($methods) | Should -BeNullOrEmpty
    }

    It 'gives the cmdlets no public method of their own but Dispose, and exports every concrete one' {
        $methods = foreach ($type in $CmdletTypes) {
            $type.GetMethods([Reflection.BindingFlags]'Public, Instance, Static, DeclaredOnly') |
                Where-Object { -not $_.IsSpecialName -and $_.Name -ne 'Dispose' } |
                ForEach-Object { "$($type.FullName).$($_.Name)" }
        }
        @($methods) | Should -BeNullOrEmpty
        $concrete = @($CmdletTypes | Where-Object { -not $_.IsAbstract })
        $concrete | ForEach-Object { $_.IsSealed | Should -BeTrue -Because "$($_.Name) is a concrete cmdlet" }
        $exported = (Get-Command -Module GpuVirt -CommandType Cmdlet).ImplementingType
        @($concrete | Where-Object { $_ -notin $exported } | ForEach-Object FullName) | Should -BeNullOrEmpty
    }
}

Describe 'The version' {
    It 'is one: Directory.Build.props, the laid-out manifest and the assembly agree' {
        $props = ([xml](Get-Content -Raw (Join-Path $Repo 'Directory.Build.props'))).Project.PropertyGroup.Version | Where-Object { $_ } | Select-Object -First 1
        $props | Should -Match '^\d+\.\d+\.\d+$'
        $manifest = (Import-PowerShellDataFile (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.psd1')).ModuleVersion
        $manifest | Should -Be $props
        (Import-PowerShellDataFile (Join-Path $Repo 'GpuVirt.psd1')).ModuleVersion | Should -Be $props
        $Assembly.GetName().Version.ToString(3) | Should -Be $props
        (Get-Module GpuVirt).Version.ToString() | Should -Be $props
    }
}

Describe 'The laid-out assemblies' {
    # build.ps1 compiles the module's own assemblies ahead of time (ReadyToRun) for the machine that builds them, so a
    # new pwsh's first call runs compiled code; the IL stays, so another machine JITs the same file.
    It '<Name> is ReadyToRun code for this machine and still carries its IL' -ForEach @(
        @{ Name = 'GpuVirt.PowerShell.dll' }
        @{ Name = 'dependencies/GpuVirt.ProcessLauncher.dll' }
    ) {
        $path = Join-Path $env:GPUVIRT_MODULE $Name
        $stream = [IO.File]::OpenRead($path)
        try {
            $pe = [System.Reflection.PortableExecutable.PEReader]::new($stream)
            $headers = $pe.PEHeaders
            $headers.CorHeader.ManagedNativeHeaderDirectory.Size | Should -BeGreaterThan 0 -Because "$Name has no ReadyToRun header"
            $expected = switch ([Runtime.InteropServices.RuntimeInformation]::OSArchitecture) {
                'X64' { [System.Reflection.PortableExecutable.Machine]::Amd64 }
                'Arm64' { [System.Reflection.PortableExecutable.Machine]::Arm64 }
            }
            # ReadyToRun images for Linux mark the machine with an OS-specific XOR (0x7B79 for Linux).
            [int]$headers.CoffHeader.Machine -bxor 0x7B79 | Should -Be ([int]$expected)
            # The IL: every method with a body still has it, read from the file itself.
            $metadata = [System.Reflection.Metadata.PEReaderExtensions]::GetMetadataReader($pe)
            $bodies = @(foreach ($handle in $metadata.MethodDefinitions) {
                $rva = $metadata.GetMethodDefinition($handle).RelativeVirtualAddress
                if ($rva -ne 0) { [System.Reflection.Metadata.PEReaderExtensions]::GetMethodBody($pe, $rva).Size }
            })
            $bodies.Count | Should -BeGreaterThan 0
            @($bodies | Where-Object { $_ -le 0 }).Count | Should -Be 0
        } finally { $stream.Dispose() }
    }
}

Describe "CliWrap in the module's own load context" {
    BeforeAll {
        Add-Type -Path $env:GPUVIRT_FIXTURES
        # A script in a new pwsh; its last line of output is JSON.
        function Invoke-ChildPwsh([string] $Script) {
            $out = & dotnet ([Environment]::GetCommandLineArgs()[0]) -NoProfile -NonInteractive -Command $Script 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
            @($out)[-1] | ConvertFrom-Json
        }
        # Runs virsh through the module's runner (test:///default needs no daemon) and reports every CliWrap loaded.
        $script:Report = @'
$hostdevs = @(Get-GpuHostdev -Domain test -Connect test:///default -ErrorAction Stop)
$loaded = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'CliWrap' } | ForEach-Object {
    [pscustomobject]@{ Version = $_.GetName().Version.ToString(); Context = [Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).GetType().Name }
}
[pscustomobject]@{ Other = $other; Hostdevs = $hostdevs.Count; Loaded = @($loaded) } | ConvertTo-Json -Compress
'@
    }

    It 'keeps working when another module loaded CliWrap <Version> first, and leaves that copy to it' -ForEach @(
        @{ Version = '1.0.0.0' }, @{ Version = '99.0.0.0' }
    ) {
        $other = [GpuVirt.Fixtures.OtherCliWrap]::Write((Join-Path $TestDrive $Version), $Version)
        $r = Invoke-ChildPwsh "Add-Type -Path '$other'; `$other = [CliWrap.Cli]::Wrap('first'); Import-Module '$env:GPUVIRT_MODULE'; $Report"
        $r.Other | Should -Be "other CliWrap ${Version}: first"
        $r.Hostdevs | Should -Be 0
        $mine = @($r.Loaded | Where-Object Context -eq 'ModuleLoadContext')
        $mine.Count | Should -Be 1
        $mine[0].Version | Should -Not -Be $Version
        @($r.Loaded | Where-Object { $_.Version -eq $Version -and $_.Context -ne 'ModuleLoadContext' }).Count | Should -Be 1
    }

    It 'does not take the name CliWrap from a module imported after it' {
        $other = [GpuVirt.Fixtures.OtherCliWrap]::Write((Join-Path $TestDrive 'after'), '1.0.0.0')
        $r = Invoke-ChildPwsh "Import-Module '$env:GPUVIRT_MODULE'; `$null = Get-GpuHostdev -Domain test -Connect test:///default -ErrorAction Stop; Add-Type -Path '$other'; `$other = [CliWrap.Cli]::Wrap('second'); $Report"
        $r.Other | Should -Be 'other CliWrap 1.0.0.0: second'
        $r.Hostdevs | Should -Be 0
        @($r.Loaded | Where-Object Context -eq 'ModuleLoadContext').Count | Should -Be 1
        @($r.Loaded).Count | Should -Be 2
    }
}
