namespace GpuVirt.HelpBuilder.Model;

/// <summary>One cmdlet page, as read from a PlatyPS 2024-05-01 markdown file.</summary>
internal sealed record CommandHelp(
    string SourcePath,
    string Name,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<string> Synopsis,
    IReadOnlyList<SyntaxItem> Syntax,
    IReadOnlyList<string> Aliases,
    IReadOnlyList<string> Description,
    IReadOnlyList<Example> Examples,
    IReadOnlyList<Parameter> Parameters,
    bool HasCommonParameters,
    IReadOnlyList<InputOutput> Inputs,
    IReadOnlyList<InputOutput> Outputs,
    IReadOnlyList<string> Notes,
    IReadOnlyList<RelatedLink> RelatedLinks)
{
    public string ExternalHelpFile => Metadata[FrontMatterKeys.ExternalHelpFile];

    public string ModuleName => Metadata[FrontMatterKeys.ModuleName];

    public string? HelpUri =>
        Metadata.TryGetValue(FrontMatterKeys.HelpUri, out var uri) && !string.IsNullOrWhiteSpace(uri) ? uri : null;
}

/// <summary>One parameter set of the SYNTAX section: its name and the syntax text of its code block.</summary>
internal sealed record SyntaxItem(string ParameterSetName, bool IsDefault, string Text, int Line);

/// <summary>
/// One example. <see cref="Introduction"/> holds the prose before the first code block, <see cref="Code"/> the
/// first code block, and <see cref="Remarks"/> everything after it (prose, output blocks, further code), in order.
/// </summary>
internal sealed record Example(string Title, IReadOnlyList<string> Introduction, string Code, IReadOnlyList<string> Remarks);

/// <summary>One <c>### -Name</c> entry of the PARAMETERS section with its yaml metadata.</summary>
internal sealed record Parameter(
    string Name,
    IReadOnlyList<string> Description,
    string Type,
    string DefaultValue,
    bool SupportsWildcards,
    IReadOnlyList<string> Aliases,
    IReadOnlyList<ParameterSetInfo> ParameterSets,
    bool DontShow,
    IReadOnlyList<string> AcceptedValues,
    string HelpMessage,
    int Line)
{
    public bool IsSwitch => Type is "SwitchParameter" or "System.Management.Automation.SwitchParameter"
        or "switch";
}

/// <summary>How a parameter takes part in one parameter set (<c>(All)</c> means every set).</summary>
internal sealed record ParameterSetInfo(
    string Name,
    string Position,
    bool IsRequired,
    bool ValueFromPipeline,
    bool ValueFromPipelineByPropertyName,
    bool ValueFromRemainingArguments)
{
    public const string AllSets = "(All)";

    /// <summary>PowerShell's own name for "every set", which a page may use instead of (All).</summary>
    public const string AllSetsInternal = "__AllParameterSets";

    public bool IsAllSets => Name == AllSets || Name == AllSetsInternal;

    public bool IsNamed => string.Equals(Position, "Named", StringComparison.OrdinalIgnoreCase);
}

/// <summary>One <c>### TypeName</c> of INPUTS or OUTPUTS.</summary>
internal sealed record InputOutput(string TypeName, IReadOnlyList<string> Description);

/// <summary>One link of RELATED LINKS.</summary>
internal sealed record RelatedLink(string Text, string Uri);

/// <summary>An about_ topic: its name, short description and the sections after it.</summary>
internal sealed record AboutTopic(string SourcePath, string Name, IReadOnlyList<AboutSection> Sections);

/// <summary>One H2 section of an about_ topic: its title and its content as text blocks.</summary>
internal sealed record AboutSection(string Title, IReadOnlyList<TextBlock> Blocks);

/// <summary>Kinds of text block an about_ topic renders.</summary>
internal enum TextBlockKind
{
    Paragraph,
    Heading,
    Code,
    ListItem,
    Table,
}

/// <summary>
/// A block of plain text. Paragraph and list item text is reflowed when written; code and table text is kept as is.
/// <see cref="Depth"/> is the list nesting depth (0 for top-level blocks); <see cref="Marker"/> the list bullet.
/// </summary>
internal sealed record TextBlock(TextBlockKind Kind, string Text, int Depth = 0, string Marker = "");
