namespace GpuVirt.HelpBuilder.Tests;

public class BuilderAndCliTests
{
    [Fact]
    public void BuildsOneMamlFileAndTheAboutTopicAndSkipsTheModulePage()
    {
        using var temp = new TempDirectory();
        var result = HelpBuilder.Build(Fixture.SamplesDirectory, temp.Out, "HelpSample");
        Assert.True(result.Succeeded);
        Assert.Equal(
            ["HelpSample.dll-Help.xml", "about_Sample.help.txt"],
            result.Written.Select(Path.GetFileName));
        Assert.Equal(["HelpSample.dll-Help.xml", "about_Sample.help.txt"], Directory.GetFiles(temp.Out).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void PutsEveryCmdletOfAHelpFileInIt()
    {
        using var temp = new TempDirectory();
        string page = Fixture.Read(Fixture.CmdletPage);
        temp.Write(Fixture.CmdletPage, page);
        temp.Write("Get-OtherDevice.md", page.Replace("Get-SampleDevice", "Get-OtherDevice"));
        var result = HelpBuilder.Build(temp.Docs, temp.Out);
        Assert.True(result.Succeeded);
        string xml = File.ReadAllText(Assert.Single(result.Written));
        var document = new System.Xml.XmlDocument();
        document.LoadXml(xml);
        var names = document.SelectNodes("//command:command/command:details/command:name", Fixture.Namespaces(document))!
            .Cast<System.Xml.XmlNode>().Select(n => n.InnerText);
        Assert.Equal(["Get-OtherDevice", "Get-SampleDevice"], names);
    }

    [Fact]
    public void LeavesPagesNamedInCapitalsAloneButStillReadsEveryOtherPage()
    {
        using var temp = new TempDirectory();
        string page = Fixture.Read(Fixture.CmdletPage);
        temp.Write(Fixture.CmdletPage, page);
        temp.Write("ARCHITECTURE.md", "# How the module is built\n\nNo front matter: a page for people who read the code.\n");
        var result = HelpBuilder.Build(temp.Docs, temp.Out);
        Assert.True(result.Succeeded);
        Assert.Single(result.Written);

        temp.Write("Architecture.md", "# Not in capitals\n");
        Assert.Single(HelpBuilder.Build(temp.Docs, temp.Out).Errors);
    }

    [Fact]
    public void TheSameCommandTwiceIsAnError()
    {
        using var temp = new TempDirectory();
        string page = Fixture.Read(Fixture.CmdletPage);
        temp.Write("A.md", page);
        temp.Write("B.md", page);
        var error = Assert.Single(HelpBuilder.Build(temp.Docs, temp.Out).Errors);
        Assert.EndsWith("B.md", error.File);
        Assert.Contains("command 'Get-SampleDevice' is already described by", error.Problem);
    }

    [Fact]
    public void OutputIsTheSameEveryRun()
    {
        using var temp = new TempDirectory();
        HelpBuilder.Build(Fixture.SamplesDirectory, Path.Combine(temp.Path, "1"));
        HelpBuilder.Build(Fixture.SamplesDirectory, Path.Combine(temp.Path, "2"));
        foreach (string name in new[] { "HelpSample.dll-Help.xml", "about_Sample.help.txt" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(temp.Path, "1", name)), File.ReadAllBytes(Path.Combine(temp.Path, "2", name)));
        }
    }

    [Fact]
    public void CliWritesAndExitsZero()
    {
        using var temp = new TempDirectory();
        var (code, stdout, stderr) = Run("--docs", Fixture.SamplesDirectory, "--out", temp.Out, "--module", "HelpSample");
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, stderr);
        Assert.Contains("wrote " + Path.Combine(temp.Out, "HelpSample.dll-Help.xml"), stdout);
        Assert.True(File.Exists(Path.Combine(temp.Out, "about_Sample.help.txt")));
    }

    [Fact]
    public void CliNamesFileAndLineAndExitsOne()
    {
        using var temp = new TempDirectory();
        string file = temp.Write(Fixture.CmdletPage, Fixture.Read(Fixture.CmdletPage).Replace("document type: cmdlet", "document type: widget"));
        var (code, _, stderr) = Run("--docs", temp.Docs, "--out", temp.Out);
        Assert.Equal(1, code);
        Assert.Contains($"error: {file}:2: unknown 'document type: widget'; expected 'cmdlet' or 'module'", stderr);
        Assert.Contains("nothing was written", stderr);
    }

    [Theory]
    [InlineData("--docs", "x")]
    [InlineData("--docs", "x", "--out")]
    [InlineData("--bogus")]
    public void CliUsageErrorsExitTwo(params string[] args)
    {
        var (code, _, stderr) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains("usage:", stderr);
    }

    [Fact]
    public void CliReportsAMissingDocsFolder()
    {
        using var temp = new TempDirectory();
        var (code, _, stderr) = Run("--docs", Path.Combine(temp.Path, "nope"), "--out", temp.Out);
        Assert.Equal(1, code);
        Assert.Contains("does not exist", stderr);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
