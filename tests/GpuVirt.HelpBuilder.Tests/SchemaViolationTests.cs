namespace GpuVirt.HelpBuilder.Tests;

/// <summary>Each schema violation stops the build with a message naming the file and the line.</summary>
public class SchemaViolationTests
{
    private static readonly string Page = Fixture.Read(Fixture.CmdletPage);

    /// <summary>Builds a docs folder holding the changed page and returns its one error.</summary>
    private static HelpSchemaException BuildBroken(string text, string name = Fixture.CmdletPage, string? module = null)
    {
        using var temp = new TempDirectory();
        string file = temp.Write(name, text);
        var result = HelpBuilder.Build(temp.Docs, temp.Out, module);
        Assert.False(result.Succeeded);
        Assert.Empty(result.Written);
        Assert.False(Directory.Exists(temp.Out), "nothing is written when a page is broken");
        var error = Assert.Single(result.Errors);
        Assert.Equal(file, error.File);
        Assert.StartsWith($"{file}:{error.Line}: ", error.Message);
        return error;
    }

    private static string Replace(string text, string oldValue, string newValue)
    {
        Assert.Contains(oldValue, text);
        return text.Replace(oldValue, newValue);
    }

    [Fact]
    public void MissingRequiredSection()
    {
        string text = Replace(Page, "## NOTES\n\nThe cmdlet only reads; it changes nothing on the host.\n\n", string.Empty);
        var error = BuildBroken(text);
        Assert.Equal("missing required section '## NOTES' (expected before '## RELATED LINKS')", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## RELATED LINKS"), error.Line);
    }

    [Fact]
    public void MissingLastSection()
    {
        string text = Page[..Page.IndexOf("## RELATED LINKS", StringComparison.Ordinal)];
        var error = BuildBroken(text);
        Assert.Equal("missing required section '## RELATED LINKS' (expected at the end)", error.Problem);
    }

    [Fact]
    public void SectionsOutOfOrder()
    {
        // move DESCRIPTION (and its text) after EXAMPLES
        int start = Page.IndexOf("## DESCRIPTION", StringComparison.Ordinal);
        int examples = Page.IndexOf("## EXAMPLES", StringComparison.Ordinal);
        int parameters = Page.IndexOf("## PARAMETERS", StringComparison.Ordinal);
        string description = Page[start..examples];
        string text = Page[..start] + Page[examples..parameters] + description + Page[parameters..];
        var error = BuildBroken(text);
        Assert.Equal("section '## DESCRIPTION' is out of order: it must come before '## EXAMPLES'", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## DESCRIPTION"), error.Line);
    }

    [Fact]
    public void UnknownSection()
    {
        string text = Replace(Page, "## NOTES", "## REMARKS");
        var error = BuildBroken(text);
        Assert.StartsWith("unknown section '## REMARKS'", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## REMARKS"), error.Line);
    }

    [Fact]
    public void DuplicateSection()
    {
        string text = Replace(Page, "## NOTES\n", "## NOTES\n\nOne.\n\n## NOTES\n");
        var error = BuildBroken(text);
        Assert.StartsWith("section '## NOTES' appears twice", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## NOTES", 2), error.Line);
    }

    [Fact]
    public void ParameterWithoutYamlBlock()
    {
        int start = Page.IndexOf("Reads devices that are normally skipped.", StringComparison.Ordinal);
        int end = Page.IndexOf("### -Kind", StringComparison.Ordinal);
        string text = Page[..start] + "Reads devices that are normally skipped.\n\n" + Page[end..];
        var error = BuildBroken(text);
        Assert.Equal("parameter -Force has no ```yaml block with its metadata", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "### -Force"), error.Line);
    }

    [Fact]
    public void MalformedYaml()
    {
        string text = Replace(Page, "DefaultValue: VGA\n", "DefaultValue: VGA\nAliases: [unclosed\n");
        var error = BuildBroken(text);
        Assert.StartsWith("parameter -Kind: malformed yaml:", error.Problem);
        int aliases = Fixture.LineOf(text, "Aliases: [unclosed");
        Assert.InRange(error.Line, aliases, aliases + 1);
    }

    [Fact]
    public void UnknownYamlKey()
    {
        string text = Replace(Page, "DefaultValue: VGA\n", "DefaultValue: VGA\nMandatory: true\n");
        var error = BuildBroken(text);
        Assert.StartsWith("parameter -Kind: malformed yaml: unknown key 'Mandatory'; the keys are Type, DefaultValue,", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "Mandatory: true"), error.Line);
    }

    [Fact]
    public void YamlWithTheWrongType()
    {
        string text = Replace(Page, "SupportsWildcards: true", "SupportsWildcards: sometimes");
        var error = BuildBroken(text);
        Assert.StartsWith("parameter -Name: malformed yaml:", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "SupportsWildcards: sometimes"), error.Line);
    }

    [Fact]
    public void UnknownParameterSetKey()
    {
        string text = Replace(Page, "  ValueFromRemainingArguments: false\nDontShow: false\nAcceptedValues: []\nHelpMessage: ''\n```\n\n### -Force", "  FromRemaining: false\nDontShow: false\nAcceptedValues: []\nHelpMessage: ''\n```\n\n### -Force");
        var error = BuildBroken(text);
        Assert.StartsWith("parameter -Address: malformed yaml: unknown key 'FromRemaining'; the keys are Name, Position, IsRequired,", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "FromRemaining"), error.Line);
    }

    [Fact]
    public void BadYamlIndentation()
    {
        string text = Replace(Page, "  Position: 0\n  IsRequired: true\n  ValueFromPipeline: true", "  Position: 0\n   IsRequired: true\n  ValueFromPipeline: true");
        var error = BuildBroken(text);
        Assert.StartsWith("parameter -Address: malformed yaml:", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "   IsRequired: true"), error.Line);
    }

    [Fact]
    public void YamlWithoutType()
    {
        string text = Replace(Page, "Type: System.Int32\n", string.Empty);
        var error = BuildBroken(text);
        Assert.Equal("parameter -Timeout: the yaml block has no 'Type'", error.Problem);
    }

    [Fact]
    public void ParameterInASetThatSyntaxLacks()
    {
        string text = Replace(Page, "- Name: Name\n", "- Name: ByName\n");
        var error = BuildBroken(text);
        Assert.StartsWith("parameter -Name names parameter set 'ByName', which SYNTAX does not have", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "- Name: ByName") - 7, error.Line); // the yaml block's opening fence
    }

    [Fact]
    public void BadPosition()
    {
        string text = Replace(Page, "  Position: 0\n  IsRequired: true\n  ValueFromPipeline: true", "  Position: first\n  IsRequired: true\n  ValueFromPipeline: true");
        var error = BuildBroken(text);
        Assert.Equal("parameter -Address: Position 'first' in set 'Address' is neither 'Named' nor a number", error.Problem);
    }

    [Fact]
    public void ParameterHeadingWithoutDash()
    {
        string text = Replace(Page, "### -Timeout", "### Timeout");
        var error = BuildBroken(text);
        Assert.Equal("'### Timeout' is not a parameter heading; expected '### -Name' or '### CommonParameters'", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "### Timeout"), error.Line);
    }

    [Fact]
    public void UnknownDocumentType()
    {
        string text = Replace(Page, "document type: cmdlet", "document type: widget");
        var error = BuildBroken(text);
        Assert.Equal("unknown 'document type: widget'; expected 'cmdlet' or 'module'", error.Problem);
        Assert.Equal(2, error.Line);
    }

    [Fact]
    public void NoDocumentType()
    {
        var error = BuildBroken(Replace(Page, "document type: cmdlet\n", string.Empty));
        Assert.Equal("the front matter has no 'document type' key ('cmdlet' or 'module')", error.Problem);
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void NoFrontMatter()
    {
        string text = Page[(Page.IndexOf("\n---\n", StringComparison.Ordinal) + 5)..];
        var error = BuildBroken(text);
        Assert.StartsWith("no YAML front matter", error.Problem);
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void MalformedFrontMatter()
    {
        string text = Replace(Page, "Locale: en-US\n", "Locale: [en-US\n");
        var error = BuildBroken(text);
        // YamlDotNet stops on this input without a position, so the line is that of the opening '---'
        Assert.Equal("malformed YAML front matter: the YAML could not be read (is a '[', '{' or quote left open?)", error.Problem);
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void MalformedFrontMatterWithAPosition()
    {
        string text = Replace(Page, "Locale: en-US\n", "Locale: en-US\n  bad indent: x\n");
        var error = BuildBroken(text);
        Assert.StartsWith("malformed YAML front matter:", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "bad indent"), error.Line);
    }

    [Fact]
    public void FrontMatterKeyTwice()
    {
        string text = Replace(Page, "Locale: en-US\n", "Locale: en-US\nLocale: de-DE\n");
        var error = BuildBroken(text);
        Assert.StartsWith("malformed YAML front matter:", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "Locale: de-DE"), error.Line);
    }

    [Fact]
    public void MissingFrontMatterKey()
    {
        var error = BuildBroken(Replace(Page, "external help file: HelpSample.dll-Help.xml\n", string.Empty));
        Assert.Equal("the front matter has no 'external help file' key", error.Problem);
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void UnsupportedSchemaVersion()
    {
        string text = Replace(Page, "PlatyPS schema version: 2024-05-01", "PlatyPS schema version: 2.0.0");
        var error = BuildBroken(text);
        Assert.Equal("'PlatyPS schema version' is '2.0.0'; only '2024-05-01' is supported", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "PlatyPS schema version"), error.Line);
    }

    [Fact]
    public void DateInAnotherFormat()
    {
        string text = Replace(Page, "ms.date: 01/15/2026", "ms.date: 2026-01-15");
        var error = BuildBroken(text);
        Assert.Equal("'ms.date' is '2026-01-15'; expected a date written MM/dd/yyyy", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "ms.date"), error.Line);
    }

    [Fact]
    public void TitleDoesNotMatchHeading()
    {
        string text = Replace(Page, "# Get-SampleDevice\n", "# Get-SampleDevices\n");
        var error = BuildBroken(text);
        Assert.Equal($"the heading '# Get-SampleDevices' does not match the front matter title 'Get-SampleDevice' (line {Fixture.LineOf(text, "title:")})", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "# Get-SampleDevices"), error.Line);
    }

    [Fact]
    public void WrongModule()
    {
        var error = BuildBroken(Page, module: "GpuVirt");
        Assert.Equal("'Module Name' is 'HelpSample', not 'GpuVirt'", error.Problem);
        Assert.Equal(Fixture.LineOf(Page, "Module Name:"), error.Line);
    }

    [Fact]
    public void SyntaxSetWithoutCodeBlock()
    {
        string text = Replace(Page, "```powershell\nGet-SampleDevice [-Name] <string> [-Kind <string>] [-Force] [<CommonParameters>]\n```\n", string.Empty);
        var error = BuildBroken(text);
        Assert.Equal("parameter set '### Name' has no code block with its syntax", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "### Name"), error.Line);
    }

    [Fact]
    public void SyntaxCodeBlockWithoutSetHeading()
    {
        string text = Replace(Page, "### Address (Default)\n\n", string.Empty);
        var error = BuildBroken(text);
        Assert.StartsWith("a syntax code block without a '### ParameterSetName' heading", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## SYNTAX") + 2, error.Line);
    }

    [Fact]
    public void EmptySynopsis()
    {
        string text = Replace(Page, "Gets the sample devices of a host.\n", string.Empty);
        var error = BuildBroken(text);
        Assert.Equal("the SYNOPSIS section is empty", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## SYNOPSIS"), error.Line);
    }

    [Fact]
    public void ExampleWithoutHeading()
    {
        string text = Replace(Page, "## EXAMPLES\n\n", "## EXAMPLES\n\nSome text.\n\n");
        var error = BuildBroken(text);
        Assert.Equal("text directly under '## EXAMPLES': an example needs a '### Example N: title' heading", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "Some text."), error.Line);
    }

    [Fact]
    public void OutputTypeWithoutHeading()
    {
        string text = Replace(Page, "### HelpSample.SampleDevice\n\n", string.Empty);
        var error = BuildBroken(text);
        Assert.Equal("text directly under '## OUTPUTS': each entry of OUTPUTS needs a '### TypeName' heading", error.Problem);
    }

    [Fact]
    public void RelatedLinkWithoutLink()
    {
        string text = Replace(Page, "- [about_Sample](about_Sample.md)", "- about_Sample");
        var error = BuildBroken(text);
        Assert.Equal("a RELATED LINKS entry without a link; write '- [Text](uri)'", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "- about_Sample"), error.Line);
    }

    [Fact]
    public void AboutTopicWithoutShortDescription()
    {
        string about = Fixture.Read(Fixture.AboutPage);
        string text = Replace(about, "## Short description\n\nExplains how the sample module finds devices.\n\n", string.Empty);
        var error = BuildBroken(text, Fixture.AboutPage);
        Assert.Equal("expected '## Short description' here, found '## Long description'", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "## Long description"), error.Line);
    }

    [Fact]
    public void AboutTopicNamedOtherwise()
    {
        string text = Replace(Fixture.Read(Fixture.AboutPage), "# about_Sample\n", "# about_Other\n");
        var error = BuildBroken(text, Fixture.AboutPage);
        Assert.Equal("the heading '# about_Other' does not match the file name ('about_Sample')", error.Problem);
        Assert.Equal(Fixture.LineOf(text, "# about_Other"), error.Line);
    }

    [Fact]
    public void EveryBrokenPageIsReported()
    {
        using var temp = new TempDirectory();
        temp.Write("A-One.md", Replace(Page, "document type: cmdlet", "document type: x"));
        temp.Write("B-Two.md", Replace(Page, "## NOTES", "## NOTE"));
        var result = HelpBuilder.Build(temp.Docs, temp.Out);
        Assert.Equal(["A-One.md", "B-Two.md"], result.Errors.Select(e => Path.GetFileName(e.File)));
    }
}
