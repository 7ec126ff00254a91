using System.Text;
using System.Xml;
using GpuVirt.HelpBuilder.Writing;

namespace GpuVirt.HelpBuilder.Tests;

public class MamlWriterTests
{
    private readonly XmlDocument _maml = Fixture.Maml();
    private readonly XmlNamespaceManager _ns;

    public MamlWriterTests()
    {
        _ns = Fixture.Namespaces(_maml);
    }

    private XmlNode Node(string xpath) => _maml.SelectSingleNode(xpath, _ns) ?? throw new Xunit.Sdk.XunitException($"no node at {xpath}");

    private string Text(string xpath) => Node(xpath).InnerText;

    private List<string> Texts(string xpath) => _maml.SelectNodes(xpath, _ns)!.Cast<XmlNode>().Select(n => n.InnerText).ToList();

    private const string Command = "/msh:helpItems/command:command";

    [Fact]
    public void HasTheMamlRootAndNamespaces()
    {
        var root = _maml.DocumentElement!;
        Assert.Equal("helpItems", root.LocalName);
        Assert.Equal("http://msh", root.NamespaceURI);
        Assert.Equal("maml", root.GetAttribute("schema"));
        var command = (XmlElement)Node(Command);
        Assert.Equal("command", command.Prefix);
        Assert.Equal(MamlWriter.MamlNamespace, command.GetAttribute("xmlns:maml"));
        Assert.Equal(MamlWriter.CommandNamespace, command.GetAttribute("xmlns:command"));
        Assert.Equal(MamlWriter.DevNamespace, command.GetAttribute("xmlns:dev"));
    }

    [Fact]
    public void WritesDetailsAndDescription()
    {
        Assert.Equal("Get-SampleDevice", Text($"{Command}/command:details/command:name"));
        Assert.Equal("Get", Text($"{Command}/command:details/command:verb"));
        Assert.Equal("SampleDevice", Text($"{Command}/command:details/command:noun"));
        Assert.Equal(["Gets the sample devices of a host."], Texts($"{Command}/command:details/maml:description/maml:para"));
        Assert.Equal(3, Texts($"{Command}/maml:description/maml:para").Count);
    }

    [Fact]
    public void WritesOneSyntaxItemPerParameterSetInSyntaxOrder()
    {
        Assert.Equal(2, _maml.SelectNodes($"{Command}/command:syntax/command:syntaxItem", _ns)!.Count);
        const string first = $"{Command}/command:syntax/command:syntaxItem[1]";
        Assert.Equal("Get-SampleDevice", Text($"{first}/maml:name"));
        Assert.Equal(["Address", "Kind", "Timeout", "Force"], Texts($"{first}/command:parameter/maml:name"));
        Assert.Equal(["Name", "Kind", "Force"], Texts($"{Command}/command:syntax/command:syntaxItem[2]/command:parameter/maml:name"));

        var address = (XmlElement)Node($"{first}/command:parameter[maml:name='Address']");
        Assert.Equal("true", address.GetAttribute("required"));
        Assert.Equal("0", address.GetAttribute("position"));
        Assert.Equal("True (ByValue, ByPropertyName)", address.GetAttribute("pipelineInput"));
        Assert.Equal("false", address.GetAttribute("globbing"));
        Assert.Equal("PciAddress, Id", address.GetAttribute("aliases"));
        Assert.Equal("System.String[]", Text($"{first}/command:parameter[maml:name='Address']/command:parameterValue"));

        var kind = $"{first}/command:parameter[maml:name='Kind']";
        Assert.Equal("named", ((XmlElement)Node(kind)).GetAttribute("position"));
        Assert.Equal(["VGA", "3D", "Display"], Texts($"{kind}/command:parameterValueGroup/command:parameterValue"));

        // a switch has no value
        Assert.Null(_maml.SelectSingleNode($"{first}/command:parameter[maml:name='Force']/command:parameterValue", _ns));
        Assert.Equal("System.Management.Automation.SwitchParameter", Text($"{first}/command:parameter[maml:name='Force']/dev:type/maml:name"));

        var name = (XmlElement)Node($"{Command}/command:syntax/command:syntaxItem[2]/command:parameter[maml:name='Name']");
        Assert.Equal("true", name.GetAttribute("globbing"));
        Assert.Equal("True (ByPropertyName)", name.GetAttribute("pipelineInput"));
    }

    [Fact]
    public void WritesEveryParameterOnce()
    {
        const string parameters = $"{Command}/command:parameters/command:parameter";
        Assert.Equal(["Address", "Force", "Kind", "Name", "Timeout"], Texts($"{parameters}/maml:name"));
        Assert.Equal(
            ["True (ByValue, ByPropertyName)", "False", "False", "True (ByPropertyName)", "False"],
            _maml.SelectNodes(parameters, _ns)!.Cast<XmlElement>().Select(e => e.GetAttribute("pipelineInput")));
        Assert.Equal(["None", "False", "VGA", "None", "30"], Texts($"{parameters}/dev:defaultValue"));
        Assert.Equal(["0", "named", "named", "0", "named"], _maml.SelectNodes(parameters, _ns)!.Cast<XmlElement>().Select(e => e.GetAttribute("position")));
        Assert.Equal("The kind of device to get.", Text($"{parameters}[maml:name='Kind']/maml:description/maml:para"));
        Assert.Equal("System.Int32", Text($"{parameters}[maml:name='Timeout']/dev:type/maml:name"));
    }

    [Fact]
    public void WritesInputsOutputsNotesExamplesAndLinks()
    {
        Assert.Equal("System.String", Text($"{Command}/command:inputTypes/command:inputType/dev:type/maml:name"));
        Assert.Equal("You can pipe PCI addresses to this cmdlet.", Text($"{Command}/command:inputTypes/command:inputType/maml:description/maml:para"));
        Assert.Equal("HelpSample.SampleDevice", Text($"{Command}/command:returnValues/command:returnValue/dev:type/maml:name"));
        Assert.Equal("The cmdlet only reads; it changes nothing on the host.", Text($"{Command}/maml:alertSet/maml:alert/maml:para"));

        const string example = $"{Command}/command:examples/command:example";
        Assert.Equal(
            ["--------- Example 1: Get a device by its address ---------", "--------- Example 2: Find devices by name ---------"],
            Texts($"{example}/maml:title"));
        Assert.Equal("This example gets one device.\n\n", Text($"{example}[1]/maml:introduction/maml:para"));
        Assert.Equal("Get-SampleDevice -Address 0000:02:00.0", Text($"{example}[1]/dev:code"));
        Assert.Equal(2, Texts($"{example}[1]/dev:remarks/maml:para").Count);
        Assert.Null(_maml.SelectSingleNode($"{example}[2]/maml:introduction", _ns));

        const string links = $"{Command}/command:relatedLinks/maml:navigationLink";
        Assert.Equal(["Online Version:", "about_Sample", "PCI address format"], Texts($"{links}/maml:linkText"));
        Assert.Equal(["https://example.org/help/Get-SampleDevice", string.Empty, "https://example.org/pci-addresses"], Texts($"{links}/maml:uri"));
    }

    [Fact]
    public void WritesUtf8WithoutAByteOrderMark()
    {
        using var stream = new MemoryStream();
        MamlWriter.Write(stream, [Fixture.ReadCommand()]);
        byte[] bytes = stream.ToArray();
        Assert.StartsWith("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<helpItems", Encoding.UTF8.GetString(bytes));
        Assert.NotEqual(0xEF, bytes[0]);
    }

    [Fact]
    public void AnEmptyHelpUriAddsNoOnlineLink()
    {
        string text = Fixture.Read(Fixture.CmdletPage).Replace("HelpUri: https://example.org/help/Get-SampleDevice", "HelpUri: ''");
        var help = Reading.CommandPageReader.Read(Reading.MarkdownSource.Parse("page.md", text));
        Assert.Null(help.HelpUri);
        var document = new XmlDocument();
        document.LoadXml(MamlWriter.WriteString([help]));
        var texts = document.SelectNodes("//maml:navigationLink/maml:linkText", Fixture.Namespaces(document))!.Cast<XmlNode>().Select(n => n.InnerText);
        Assert.Equal(["about_Sample", "PCI address format"], texts);
    }

    [Fact]
    public void WindowsLineEndingsGiveTheSameHelp()
    {
        string text = Fixture.Read(Fixture.CmdletPage).ReplaceLineEndings("\r\n");
        var help = Reading.CommandPageReader.Read(Reading.MarkdownSource.Parse(Path.Combine(Fixture.SamplesDirectory, Fixture.CmdletPage), text));
        Assert.Equal(MamlWriter.WriteString([Fixture.ReadCommand()]), MamlWriter.WriteString([help]));
    }

    [Fact]
    public void AllParameterSetsInYamlMeansEverySet()
    {
        string text = Fixture.Read(Fixture.CmdletPage).Replace("- Name: (All)", "- Name: __AllParameterSets");
        var help = Reading.CommandPageReader.Read(Reading.MarkdownSource.Parse(Path.Combine(Fixture.SamplesDirectory, Fixture.CmdletPage), text));
        Assert.Equal(MamlWriter.WriteString([Fixture.ReadCommand()]), MamlWriter.WriteString([help]));
    }

    [Theory]
    [InlineData(false, false, "False")]
    [InlineData(true, false, "True (ByValue)")]
    [InlineData(false, true, "True (ByPropertyName)")]
    [InlineData(true, true, "True (ByValue, ByPropertyName)")]
    public void PipelineInputTextIsWhatGetHelpShows(bool byValue, bool byPropertyName, string expected) =>
        Assert.Equal(expected, MamlWriter.PipelineInput(byValue, byPropertyName));
}
