# Help that ships: every exported cmdlet's help comes from docs/ (through the MAML the build makes), and the docs
# agree with the compiled cmdlets in both directions, so neither can drift.
BeforeDiscovery {
    $manifest = Import-PowerShellDataFile (Join-Path $env:GPUVIRT_MODULE 'GpuVirt.psd1')
    $script:Cmdlets = @($manifest.CmdletsToExport | ForEach-Object { @{ Name = $_ } })
}

BeforeAll {
    Import-Module $env:GPUVIRT_MODULE -Force
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

    function Get-ParameterFact([System.Management.Automation.ParameterMetadata] $Parameter) {
        $attributes = @($Parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] })
        $positions = @($attributes | Where-Object { $_.Position -ge 0 } | ForEach-Object Position | Sort-Object -Unique)
        $pipeline = @()
        if ($attributes | Where-Object ValueFromPipeline) { $pipeline += 'ByValue' }
        if ($attributes | Where-Object ValueFromPipelineByPropertyName) { $pipeline += 'ByPropertyName' }
        [pscustomobject]@{
            Type = $Parameter.ParameterType.FullName
            Required = [bool]($attributes | Where-Object Mandatory)
            Position = if ($positions.Count) { [string]$positions[0] } else { 'named' }
            Pipeline = if ($pipeline.Count) { 'True ({0})' -f ($pipeline -join ', ') } else { 'False' }
        }
    }
}

Describe 'Get-Help <Name>' -ForEach $Cmdlets {
    BeforeAll {
        $script:Help = Get-Help $Name -Full
        $script:Command = Get-Command $Name
        $script:DocPath = Join-Path $PSScriptRoot "../../docs/$Name.md"
    }

    It 'has a docs page in the PlatyPS schema' {
        $DocPath | Should -Exist
        $text = Get-Content -Raw $DocPath
        $text | Should -Match '(?m)^PlatyPS schema version: 2024-05-01$'
        $text | Should -Match "(?m)^title: $Name$"
        $text | Should -Match '(?m)^external help file: GpuVirt\.PowerShell\.dll-Help\.xml$'
    }

    It 'is listed on the module page, docs/GpuVirt.md, which lists nothing else' {
        $listed = [regex]::Matches((Get-Content -Raw (Join-Path $PSScriptRoot '../../docs/GpuVirt.md')), '(?m)^### \[([A-Za-z]+-[A-Za-z]+)\]\(\1\.md\)$') |
            ForEach-Object { $_.Groups[1].Value }
        $Name | Should -BeIn $listed
        @($listed | Where-Object { $_ -notin (Get-Module GpuVirt).ExportedCmdlets.Keys }) | Should -BeNullOrEmpty
    }

    It 'shows the synopsis and description from the docs, not generated text' {
        $Help.Synopsis | Should -Not -BeNullOrEmpty
        ($Help.description.Text -join "`n") | Should -Not -BeNullOrEmpty
        $doc = Get-Content -Raw $DocPath
        $doc | Should -Match ([regex]::Escape($Help.Synopsis.Trim()))
    }

    It 'has at least one example, each parsing and naming only existing commands and parameters' {
        $examples = @($Help.examples.example)
        $examples.Count | Should -BeGreaterThan 0
        foreach ($example in $examples) {
            $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput($example.code, [ref]$null, [ref]$errors)
            $errors | Should -BeNullOrEmpty -Because "example '$($example.title)' must parse"
            foreach ($call in $ast.FindAll({ $args[0] -is [System.Management.Automation.Language.CommandAst] }, $true)) {
                $commandName = $call.GetCommandName()
                $resolved = Get-Command $commandName -ErrorAction SilentlyContinue
                $resolved | Should -Not -BeNullOrEmpty -Because "'$commandName' in example '$($example.title)' must exist"
                if ($resolved.CommandType -eq 'Alias') { $resolved = $resolved.ResolvedCommand }
                foreach ($p in $call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
                    $matching = @($resolved.Parameters.Values | Where-Object { $_.Name -like "$($p.ParameterName)*" -or $_.Aliases -contains $p.ParameterName })
                    $matching.Count | Should -BeGreaterThan 0 -Because "-$($p.ParameterName) of $commandName in example '$($example.title)' must exist"
                }
            }
        }
    }

    It 'documents every parameter of the cmdlet with the right type, position, mandatory flag and pipeline input' {
        $documented = @{}
        foreach ($p in @($Help.parameters.parameter)) { if ($p) { $documented[$p.name] = $p } }
        foreach ($parameter in $Command.Parameters.Values | Where-Object { $_.Name -notin $Common }) {
            $documented.ContainsKey($parameter.Name) | Should -BeTrue -Because "-$($parameter.Name) of $Name must be documented"
            $doc = $documented[$parameter.Name]
            $fact = Get-ParameterFact $parameter
            $doc.type.name | Should -Be $fact.Type -Because "type of -$($parameter.Name)"
            $doc.required | Should -Be $fact.Required.ToString().ToLowerInvariant() -Because "mandatory flag of -$($parameter.Name)"
            $doc.position | Should -Be $fact.Position -Because "position of -$($parameter.Name)"
            $doc.pipelineInput | Should -Be $fact.Pipeline -Because "pipeline input of -$($parameter.Name)"
            ($doc.description.Text -join ' ') | Should -Not -BeNullOrEmpty -Because "-$($parameter.Name) needs a description"
        }
    }

    It 'lists as AcceptedValues exactly the values a ValidateSet or enum parameter takes' {
        $doc = Get-Content -Raw $DocPath
        foreach ($parameter in $Command.Parameters.Values | Where-Object { $_.Name -notin $Common }) {
            $set = @($parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] })
            $type = $parameter.ParameterType
            if ($type.IsArray) { $type = $type.GetElementType() }
            if ([Nullable]::GetUnderlyingType($type)) { $type = [Nullable]::GetUnderlyingType($type) }
            if ($set.Count -eq 0 -and $type.IsEnum) { $set = @([pscustomobject]@{ ValidValues = [Enum]::GetNames($type) }) }
            if ($set.Count -eq 0) { continue }
            $section = [regex]::Match($doc, '(?ms)^### -' + $parameter.Name + '\s*$.*?^```yaml\s*$(.*?)^```')
            $section.Success | Should -BeTrue -Because "-$($parameter.Name) of $Name needs its yaml block"
            $accepted = [regex]::Match($section.Groups[1].Value, '(?ms)^AcceptedValues:\s*$((?:\s*^- .*?$)+)')
            $values = @([regex]::Matches($accepted.Groups[1].Value, '(?m)^- (.*?)\s*$') | ForEach-Object { $_.Groups[1].Value })
            $values | Should -Be @($set[0].ValidValues) -Because "AcceptedValues of -$($parameter.Name) in docs/$Name.md"
        }
    }

    It 'documents no parameter that the cmdlet does not have' {
        foreach ($p in @($Help.parameters.parameter)) {
            if (-not $p) { continue }
            $Command.Parameters.ContainsKey($p.name) | Should -BeTrue -Because "documented -$($p.name) must exist on $Name"
        }
    }

    It 'names its output type as the cmdlet declares it' {
        $declared = @($Command.OutputType.Name | Where-Object { $_ })   # a cmdlet that writes nothing declares no type
        $documented = @($Help.returnValues.returnValue | ForEach-Object { $_.type.name.Trim() })
        foreach ($type in $declared) { $documented | Should -Contain $type }
    }
}

Describe 'about_GpuVirt' {
    It 'walks the procedure with commands and parameters that exist' {
        $text = Get-Content -Raw (Join-Path $PSScriptRoot '../../docs/about_GpuVirt.md')
        $blocks = [regex]::Matches($text, '(?ms)^\s*```powershell\s*$(.*?)^\s*```\s*$')
        $blocks.Count | Should -BeGreaterThan 5
        foreach ($block in $blocks) {
            $code = $block.Groups[1].Value
            $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput($code, [ref]$null, [ref]$errors)
            $errors | Should -BeNullOrEmpty -Because "'$code' must parse"
            foreach ($call in $ast.FindAll({ $args[0] -is [System.Management.Automation.Language.CommandAst] }, $true)) {
                $command = Get-Command $call.GetCommandName() -ErrorAction SilentlyContinue
                $command | Should -Not -BeNullOrEmpty -Because "'$($call.GetCommandName())' must exist"
                foreach ($p in $call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
                    # a parameter's name or one of its aliases, as the examples check accepts them
                    $named = @($command.Parameters.Values | Where-Object { $_.Name -eq $p.ParameterName -or $_.Aliases -contains $p.ParameterName })
                    $named.Count | Should -Be 1 -Because "-$($p.ParameterName) of $($command.Name) must exist"
                }
            }
        }
    }

    It 'is shipped and shown by Get-Help' {
        $text = Get-Help about_GpuVirt | Out-String
        $text | Should -Match 'about_GpuVirt'
        $text | Should -Match 'Enable-IommuBoot'
        $text | Should -Match 'reboot'
    }
}
