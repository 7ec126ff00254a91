namespace GpuVirt.HelpBuilder.Model;

/// <summary>The front matter keys of the PlatyPS 2024-05-01 schema.</summary>
internal static class FrontMatterKeys
{
    public const string DocumentType = "document type";
    public const string ExternalHelpFile = "external help file";
    public const string HelpUri = "HelpUri";
    public const string Locale = "Locale";
    public const string ModuleName = "Module Name";
    public const string MsDate = "ms.date";
    public const string SchemaVersion = "PlatyPS schema version";
    public const string Title = "title";

    public const string SupportedSchemaVersion = "2024-05-01";

    /// <summary>Keys every cmdlet page must have (the ones PlatyPS reports as errors when missing).</summary>
    public static readonly IReadOnlyList<string> RequiredForCmdlet =
    [
        DocumentType, ExternalHelpFile, HelpUri, Locale, ModuleName, MsDate, SchemaVersion, Title,
    ];
}
