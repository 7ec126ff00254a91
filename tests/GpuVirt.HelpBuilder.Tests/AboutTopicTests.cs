using GpuVirt.HelpBuilder.Reading;
using GpuVirt.HelpBuilder.Writing;

namespace GpuVirt.HelpBuilder.Tests;

public class AboutTopicTests
{
    private static string Text() =>
        AboutTextWriter.Write(AboutTopicReader.Read(MarkdownSource.Load(Path.Combine(Fixture.SamplesDirectory, Fixture.AboutPage)), "about_Sample"));

    [Fact]
    public void StartsWithTopicAndShortDescription()
    {
        Assert.StartsWith(
            "TOPIC\n    about_Sample\n\nSHORT DESCRIPTION\n    Explains how the sample module finds devices.\n\nLONG DESCRIPTION\n",
            Text());
    }

    [Fact]
    public void WrapsProseAtEightyColumnsAndKeepsCodeAsIs()
    {
        string text = Text();
        var lines = text.Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= 80, $"longer than 80 columns: '{l}'"));
        Assert.Contains("    The sample module reads the devices of a host from the `/sys` tree. Every\n    device has", text);
        Assert.Contains("\n    Finding devices\n", text);
        Assert.Contains("\n    1. By address, with the Address parameter.\n    2. By name,", text);
        Assert.Contains("\n        Get-SampleDevice -Name 'GK*'\n", text);
        Assert.Contains("\n        Kind     Class\n        -------  --------\n        VGA      0x0300xx\n", text);
    }

    [Fact]
    public void WritesFurtherSectionsInCapitals()
    {
        Assert.EndsWith(
            "\nSEE ALSO\n    - Get-SampleDevice\n    - PCI address format (https://example.org/pci-addresses)\n",
            Text());
    }

    [Fact]
    public void ALongWordIsNotBroken()
    {
        var sb = new System.Text.StringBuilder();
        string word = new('x', 90);
        AboutTextWriter.AppendWrapped(sb, $"a {word} b", "    ", "    ");
        Assert.Equal($"    a\n    {word}\n    b\n", sb.ToString());
    }
}
