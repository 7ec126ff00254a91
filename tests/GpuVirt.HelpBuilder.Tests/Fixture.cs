using System.Xml;
using GpuVirt.HelpBuilder.Reading;
using GpuVirt.HelpBuilder.Writing;

namespace GpuVirt.HelpBuilder.Tests;

/// <summary>The sample pages, and temporary docs folders made from them.</summary>
internal static class Fixture
{
    public static string SamplesDirectory => Path.Combine(AppContext.BaseDirectory, "samples", "docs");

    public const string CmdletPage = "Get-SampleDevice.md";
    public const string ModulePage = "HelpSample.md";
    public const string AboutPage = "about_Sample.md";

    public static string Read(string page) => File.ReadAllText(Path.Combine(SamplesDirectory, page)).ReplaceLineEndings("\n");

    public static Model.CommandHelp ReadCommand() =>
        CommandPageReader.Read(MarkdownSource.Load(Path.Combine(SamplesDirectory, CmdletPage)));

    public static XmlDocument Maml()
    {
        var document = new XmlDocument();
        document.LoadXml(MamlWriter.WriteString([ReadCommand()]));
        return document;
    }

    public static XmlNamespaceManager Namespaces(XmlDocument document)
    {
        var ns = new XmlNamespaceManager(document.NameTable);
        ns.AddNamespace("msh", MamlWriter.RootNamespace);
        ns.AddNamespace("maml", MamlWriter.MamlNamespace);
        ns.AddNamespace("command", MamlWriter.CommandNamespace);
        ns.AddNamespace("dev", MamlWriter.DevNamespace);
        return ns;
    }

    /// <summary>The 1-based number of the first line of <paramref name="text"/> that contains <paramref name="marker"/>.</summary>
    public static int LineOf(string text, string marker, int occurrence = 1)
    {
        var lines = text.Split('\n');
        int seen = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Contains(marker, StringComparison.Ordinal) && ++seen == occurrence)
            {
                return i + 1;
            }
        }

        throw new InvalidOperationException($"'{marker}' is not in the text");
    }
}

/// <summary>A temporary folder, removed when disposed.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("helpbuilder-tests-").FullName;
    }

    public string Path { get; }

    public string Docs => Directory.CreateDirectory(System.IO.Path.Combine(Path, "docs")).FullName;

    public string Out => System.IO.Path.Combine(Path, "out");

    public string Write(string name, string text)
    {
        string file = System.IO.Path.Combine(Docs, name);
        File.WriteAllText(file, text);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
