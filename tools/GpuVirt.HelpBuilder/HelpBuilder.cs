using System.Text;
using GpuVirt.HelpBuilder.Model;
using GpuVirt.HelpBuilder.Reading;
using GpuVirt.HelpBuilder.Writing;

namespace GpuVirt.HelpBuilder;

/// <summary>What one build wrote, and the schema problems it found (one per broken page).</summary>
internal sealed record BuildResult(IReadOnlyList<string> Written, IReadOnlyList<HelpSchemaException> Errors)
{
    public bool Succeeded => Errors.Count == 0;
}

/// <summary>
/// Reads a docs folder and writes the help PowerShell reads: one MAML file per 'external help file' named in the
/// cmdlet pages, and one about_Name.help.txt per about_Name.md. The module page is skipped. Nothing is written when
/// any page breaks the schema.
/// </summary>
internal static class HelpBuilder
{
    public const string CmdletType = "cmdlet";
    public const string ModuleType = "module";

    public static BuildResult Build(string docsDirectory, string outputDirectory, string? moduleName = null)
    {
        if (!Directory.Exists(docsDirectory))
        {
            throw new DirectoryNotFoundException($"the docs folder '{docsDirectory}' does not exist");
        }

        var errors = new List<HelpSchemaException>();
        var commands = new List<CommandHelp>();
        var topics = new List<AboutTopic>();
        var files = Directory.EnumerateFiles(docsDirectory, "*.md", SearchOption.TopDirectoryOnly)
            .Select(f => Path.Combine(docsDirectory, Path.GetFileName(f)))
            .OrderBy(f => f, StringComparer.Ordinal);
        foreach (string file in files)
        {
            try
            {
                string stem = Path.GetFileNameWithoutExtension(file);
                if (IsProjectDocument(stem))
                {
                    continue;
                }

                var source = MarkdownSource.Load(file);
                if (stem.StartsWith("about_", StringComparison.OrdinalIgnoreCase))
                {
                    topics.Add(AboutTopicReader.Read(source, stem));
                    continue;
                }

                string type = DocumentType(source);
                if (type == ModuleType)
                {
                    continue;
                }

                var command = CommandPageReader.Read(source);
                CheckModule(source, command, moduleName);
                var twin = commands.FirstOrDefault(c => string.Equals(c.Name, command.Name, StringComparison.OrdinalIgnoreCase));
                if (twin is not null)
                {
                    throw source.Error(1, $"command '{command.Name}' is already described by {twin.SourcePath}");
                }

                commands.Add(command);
            }
            catch (HelpSchemaException e)
            {
                errors.Add(e);
            }
        }

        if (errors.Count > 0)
        {
            return new BuildResult([], errors);
        }

        Directory.CreateDirectory(outputDirectory);
        var written = new List<string>();
        foreach (var group in commands.GroupBy(c => c.ExternalHelpFile, StringComparer.OrdinalIgnoreCase).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            string path = Path.Combine(outputDirectory, group.First().ExternalHelpFile);
            MamlWriter.WriteFile(path, group);
            written.Add(path);
        }

        foreach (var topic in topics)
        {
            string path = Path.Combine(outputDirectory, topic.Name + ".help.txt");
            File.WriteAllText(path, AboutTextWriter.Write(topic), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            written.Add(path);
        }

        return new BuildResult(written, errors);
    }

    /// <summary>The page's 'document type': 'cmdlet' or 'module'; anything else breaks the schema.</summary>
    /// <summary>
    /// A page named in capitals (ARCHITECTURE.md, README.md: a word of four letters or more, no verb-noun dash) is about
    /// the project, not help for a command or topic: the builder leaves it alone.
    /// </summary>
    internal static bool IsProjectDocument(string stem) =>
        stem.Length >= 4 && stem.All(c => (c >= 'A' && c <= 'Z') || c == '_');

    internal static string DocumentType(MarkdownSource source)
    {
        if (source.FrontMatter is not { } frontMatter)
        {
            throw source.Error(1, "no YAML front matter; a page starts with '---', 'document type: cmdlet' (or 'module') and the other keys, then '---'");
        }

        if (!frontMatter.TryGet(FrontMatterKeys.DocumentType, out string type, out int line))
        {
            throw source.Error(frontMatter.Line, "the front matter has no 'document type' key ('cmdlet' or 'module')");
        }

        string normalized = type.Trim().ToLowerInvariant();
        if (normalized is not (CmdletType or ModuleType))
        {
            throw source.Error(line, $"unknown 'document type: {type}'; expected 'cmdlet' or 'module'");
        }

        return normalized;
    }

    private static void CheckModule(MarkdownSource source, CommandHelp command, string? moduleName)
    {
        if (moduleName is null || string.Equals(command.ModuleName, moduleName, StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        source.FrontMatter!.TryGet(FrontMatterKeys.ModuleName, out _, out int line);
        throw source.Error(line, $"'Module Name' is '{command.ModuleName}', not '{moduleName}'");
    }
}
