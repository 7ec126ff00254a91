using GpuVirt.HelpBuilder.Model;

namespace GpuVirt.HelpBuilder.Tests;

public class CommandPageReaderTests
{
    private readonly CommandHelp _help = Fixture.ReadCommand();

    [Fact]
    public void ReadsTheFrontMatterAndTheName()
    {
        Assert.Equal("Get-SampleDevice", _help.Name);
        Assert.Equal("HelpSample.dll-Help.xml", _help.ExternalHelpFile);
        Assert.Equal("HelpSample", _help.ModuleName);
        Assert.Equal("https://example.org/help/Get-SampleDevice", _help.HelpUri);
        Assert.Equal("cmdlet", _help.Metadata["document type"]);
        Assert.Equal("2024-05-01", _help.Metadata["PlatyPS schema version"]);
        Assert.Equal("01/15/2026", _help.Metadata["ms.date"]);
        Assert.Equal("en-US", _help.Metadata["locale"]); // keys are case-insensitive, as in PlatyPS
    }

    [Fact]
    public void ReadsSynopsisAliasesDescriptionAndNotes()
    {
        Assert.Equal(["Gets the sample devices of a host."], _help.Synopsis);
        Assert.Equal(["This cmdlet has the following aliases: gsd"], _help.Aliases);
        Assert.Equal(
            [
                "The Get-SampleDevice cmdlet gets the devices of a host, by PCI address or by name. It reads them from the `/sys` tree.",
                "Use it to:",
                "- find a device by its address\n- find devices whose name matches a pattern",
            ],
            _help.Description);
        Assert.Equal(["The cmdlet only reads; it changes nothing on the host."], _help.Notes);
    }

    [Fact]
    public void ReadsOneSyntaxItemPerParameterSet()
    {
        Assert.Collection(
            _help.Syntax,
            s =>
            {
                Assert.Equal("Address", s.ParameterSetName);
                Assert.True(s.IsDefault);
                Assert.StartsWith("Get-SampleDevice [-Address] <string[]>", s.Text);
            },
            s =>
            {
                Assert.Equal("Name", s.ParameterSetName);
                Assert.False(s.IsDefault);
                Assert.StartsWith("Get-SampleDevice [-Name] <string>", s.Text);
            });
    }

    [Fact]
    public void ReadsEveryParameterWithItsYaml()
    {
        Assert.Equal(["Address", "Force", "Kind", "Name", "Timeout"], _help.Parameters.Select(p => p.Name));
        Assert.True(_help.HasCommonParameters);

        var address = _help.Parameters[0];
        Assert.Equal(["The PCI address of the device, in the form `domain:bus:slot.function`."], address.Description);
        Assert.Equal("System.String[]", address.Type);
        Assert.Equal(string.Empty, address.DefaultValue);
        Assert.False(address.SupportsWildcards);
        Assert.Equal(["PciAddress", "Id"], address.Aliases);
        Assert.False(address.DontShow);
        Assert.Empty(address.AcceptedValues);
        Assert.Equal(string.Empty, address.HelpMessage);
        var set = Assert.Single(address.ParameterSets);
        Assert.Equal(new ParameterSetInfo("Address", "0", IsRequired: true, ValueFromPipeline: true, ValueFromPipelineByPropertyName: true, ValueFromRemainingArguments: false), set);
        Assert.Equal(Fixture.LineOf(Fixture.Read(Fixture.CmdletPage), "### -Address"), address.Line);

        var force = _help.Parameters[1];
        Assert.True(force.IsSwitch);
        Assert.Equal("False", force.DefaultValue);
        Assert.Equal(ParameterSetInfo.AllSets, Assert.Single(force.ParameterSets).Name);
        Assert.True(force.ParameterSets[0].IsNamed);

        var kind = _help.Parameters[2];
        Assert.Equal(["VGA", "3D", "Display"], kind.AcceptedValues);
        Assert.Equal("VGA", kind.DefaultValue);

        var name = _help.Parameters[3];
        Assert.True(name.SupportsWildcards);
        Assert.Equal(new ParameterSetInfo("Name", "0", true, false, true, false), Assert.Single(name.ParameterSets));

        var timeout = _help.Parameters[4];
        Assert.Equal("System.Int32", timeout.Type);
        Assert.Equal("30", timeout.DefaultValue);
    }

    [Fact]
    public void ReadsExamplesAsIntroductionCodeAndRemarks()
    {
        Assert.Collection(
            _help.Examples,
            e =>
            {
                Assert.Equal("Example 1: Get a device by its address", e.Title);
                Assert.Equal(["This example gets one device."], e.Introduction);
                Assert.Equal("Get-SampleDevice -Address 0000:02:00.0", e.Code);
                Assert.Equal(
                    ["Address      Kind Name\n-------      ---- ----\n0000:02:00.0 VGA  GK104GL", "The device at 0000:02:00.0 is returned."],
                    e.Remarks);
            },
            e =>
            {
                Assert.Equal("Example 2: Find devices by name", e.Title);
                Assert.Empty(e.Introduction);
                Assert.Equal("Get-SampleDevice -Name 'GK*' -Kind VGA", e.Code);
                Assert.Equal(["Every VGA device whose name starts with GK is returned."], e.Remarks);
            });
    }

    [Fact]
    public void ReadsInputsOutputsAndLinks()
    {
        var input = Assert.Single(_help.Inputs);
        Assert.Equal("System.String", input.TypeName);
        Assert.Equal(["You can pipe PCI addresses to this cmdlet."], input.Description);

        var output = Assert.Single(_help.Outputs);
        Assert.Equal("HelpSample.SampleDevice", output.TypeName);
        Assert.Equal(["One object for each device found."], output.Description);

        Assert.Equal(
            [new RelatedLink("about_Sample", "about_Sample.md"), new RelatedLink("PCI address format", "https://example.org/pci-addresses")],
            _help.RelatedLinks);
    }

    [Fact]
    public void AcceptsAPageWithoutAliasesAndWithAnUntaggedSyntaxBlock()
    {
        // PlatyPS itself writes the syntax block with no language and only warns about a missing ALIASES section.
        string text = Fixture.Read(Fixture.CmdletPage)
            .Replace("## ALIASES\n\nThis cmdlet has the following aliases: gsd\n\n", string.Empty)
            .Replace("```powershell\nGet-SampleDevice [-Name]", "```\nGet-SampleDevice [-Name]");
        var help = Reading.CommandPageReader.Read(Reading.MarkdownSource.Parse("page.md", text));
        Assert.Empty(help.Aliases);
        Assert.Equal(2, help.Syntax.Count);
    }
}
