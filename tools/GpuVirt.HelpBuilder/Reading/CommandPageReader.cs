using System.Globalization;
using System.Text.RegularExpressions;
using GpuVirt.HelpBuilder.Model;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace GpuVirt.HelpBuilder.Reading;

/// <summary>
/// Reads a cmdlet page in the PlatyPS 2024-05-01 markdown schema by walking Markdig's block list, and checks it
/// against the schema: front matter keys, one H1 with the command name, the H2 sections in their order, a heading and
/// code block per parameter set, a yaml block per parameter, a heading per input and output type, links as links.
/// Every problem is a <see cref="HelpSchemaException"/> naming the file and line.
/// </summary>
internal static partial class CommandPageReader
{
    public const string Synopsis = "SYNOPSIS";
    public const string Syntax = "SYNTAX";
    public const string Aliases = "ALIASES";
    public const string Description = "DESCRIPTION";
    public const string Examples = "EXAMPLES";
    public const string Parameters = "PARAMETERS";
    public const string Inputs = "INPUTS";
    public const string Outputs = "OUTPUTS";
    public const string Notes = "NOTES";
    public const string RelatedLinks = "RELATED LINKS";

    /// <summary>The H2 sections of a cmdlet page, in the order the schema puts them.</summary>
    public static readonly IReadOnlyList<string> SectionOrder =
        [Synopsis, Syntax, Aliases, Description, Examples, Parameters, Inputs, Outputs, Notes, RelatedLinks];

    /// <summary>ALIASES came with the 2024-05-01 schema; PlatyPS only warns when it is missing, and so do we not fail.</summary>
    public static readonly IReadOnlySet<string> OptionalSections = new HashSet<string> { Aliases };

    private static readonly HashSet<string> CodeLanguages = new(StringComparer.OrdinalIgnoreCase)
    {
        string.Empty, "powershell", "pwsh", "ps", "ps1", "posh",
    };

    public static CommandHelp Read(MarkdownSource source)
    {
        var frontMatter = source.FrontMatter ?? throw source.Error(1, "no YAML front matter ('---' block) at the top of the page");
        CheckFrontMatter(source, frontMatter);

        var blocks = source.Blocks;
        int h1Index = IndexOfFirst(blocks, b => b is HeadingBlock);
        if (h1Index < 0 || blocks[h1Index] is not HeadingBlock { Level: 1 } h1)
        {
            int line = h1Index < 0 ? frontMatter.Line : MarkdownSource.LineOf(blocks[h1Index]);
            throw source.Error(line, "expected the command name as a '# Verb-Noun' heading before any other heading");
        }

        string name = MarkdownText.Inline(h1.Inline);
        frontMatter.TryGet(FrontMatterKeys.Title, out string title, out int titleLine);
        if (!string.Equals(name, title, StringComparison.Ordinal))
        {
            throw source.Error(h1, $"the heading '# {name}' does not match the front matter title '{title}' (line {titleLine})");
        }

        RejectContent(source, blocks.Take(h1Index), "before the '# " + name + "' heading");
        var sections = SplitSections(source, blocks.Skip(h1Index + 1).ToList(), name);

        var syntax = ReadSyntax(source, sections[Syntax]);
        var parameters = ReadParameters(source, sections[Parameters], syntax, out bool hasCommonParameters);

        return new CommandHelp(
            source.Path,
            name,
            frontMatter.Values,
            ReadSynopsis(source, sections[Synopsis]),
            syntax,
            sections.TryGetValue(Aliases, out var aliases) ? MarkdownText.Paragraphs(aliases.Body) : [],
            MarkdownText.Paragraphs(sections[Description].Body),
            ReadExamples(source, sections[Examples]),
            parameters,
            hasCommonParameters,
            ReadTypes(source, sections[Inputs]),
            ReadTypes(source, sections[Outputs]),
            MarkdownText.Paragraphs(sections[Notes].Body),
            ReadLinks(source, sections[RelatedLinks]));
    }

    private sealed record Section(HeadingBlock Heading, List<Block> Body);

    private static void CheckFrontMatter(MarkdownSource source, FrontMatter frontMatter)
    {
        foreach (string key in FrontMatterKeys.RequiredForCmdlet)
        {
            if (!frontMatter.TryGet(key, out string value, out int line))
            {
                throw source.Error(frontMatter.Line, $"the front matter has no '{key}' key");
            }

            if (key != FrontMatterKeys.HelpUri && string.IsNullOrWhiteSpace(value))
            {
                throw source.Error(line, $"the front matter key '{key}' is empty");
            }
        }

        frontMatter.TryGet(FrontMatterKeys.SchemaVersion, out string version, out int versionLine);
        if (version != FrontMatterKeys.SupportedSchemaVersion)
        {
            throw source.Error(versionLine, $"'PlatyPS schema version' is '{version}'; only '{FrontMatterKeys.SupportedSchemaVersion}' is supported");
        }

        frontMatter.TryGet(FrontMatterKeys.MsDate, out string date, out int dateLine);
        if (!DateTime.TryParseExact(date, "MM/dd/yyyy", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            throw source.Error(dateLine, $"'ms.date' is '{date}'; expected a date written MM/dd/yyyy");
        }

        frontMatter.TryGet(FrontMatterKeys.ExternalHelpFile, out string helpFile, out int helpFileLine);
        if (!helpFile.EndsWith("-Help.xml", StringComparison.OrdinalIgnoreCase) || helpFile.IndexOfAny(['/', '\\']) >= 0)
        {
            throw source.Error(helpFileLine, $"'external help file' is '{helpFile}'; expected a file name like 'Assembly.dll-Help.xml'");
        }

        frontMatter.TryGet(FrontMatterKeys.HelpUri, out string helpUri, out int helpUriLine);
        if (helpUri.Length > 0 && !MarkdownText.IsAbsolute(helpUri))
        {
            throw source.Error(helpUriLine, $"'HelpUri' is '{helpUri}'; expected an absolute http(s) address or ''");
        }
    }

    private static Dictionary<string, Section> SplitSections(MarkdownSource source, List<Block> blocks, string name)
    {
        var sections = new Dictionary<string, Section>(StringComparer.Ordinal);
        Section? current = null;
        int lastIndex = -1;
        string? lastName = null;
        foreach (var block in blocks)
        {
            if (block is HeadingBlock { Level: 1 } extra)
            {
                throw source.Error(extra, $"a second '#' heading ('{MarkdownText.Inline(extra.Inline)}'); a cmdlet page has one, the command name");
            }

            if (block is HeadingBlock { Level: 2 } h2)
            {
                string title = MarkdownText.Inline(h2.Inline);
                string? known = SectionOrder.FirstOrDefault(s => string.Equals(s, title, StringComparison.OrdinalIgnoreCase));
                if (known is null)
                {
                    throw source.Error(h2, $"unknown section '## {title}'; the sections are {string.Join(", ", SectionOrder.Select(s => "'## " + s + "'"))}");
                }

                if (sections.TryGetValue(known, out var earlier))
                {
                    throw source.Error(h2, $"section '## {known}' appears twice (first at line {MarkdownSource.LineOf(earlier.Heading)})");
                }

                int index = IndexOfFirst(SectionOrder, s => s == known);
                if (index < lastIndex)
                {
                    throw source.Error(h2, $"section '## {known}' is out of order: it must come before '## {lastName}'");
                }

                current = new Section(h2, []);
                sections.Add(known, current);
                lastIndex = index;
                lastName = known;
                continue;
            }

            if (current is null)
            {
                RejectContent(source, [block], $"between '# {name}' and '## {Synopsis}'");
                continue;
            }

            current.Body.Add(block);
        }

        for (int i = 0; i < SectionOrder.Count; i++)
        {
            string wanted = SectionOrder[i];
            if (sections.ContainsKey(wanted) || OptionalSections.Contains(wanted))
            {
                continue;
            }

            var next = SectionOrder.Skip(i + 1).Where(sections.ContainsKey).Select(s => sections[s].Heading).FirstOrDefault();
            int line = next is not null ? MarkdownSource.LineOf(next) : LastLine(source);
            string where = next is not null ? $" (expected before '## {MarkdownText.Inline(next.Inline)}')" : " (expected at the end)";
            throw source.Error(line, $"missing required section '## {wanted}'{where}");
        }

        return sections;
    }

    private static List<string> ReadSynopsis(MarkdownSource source, Section section)
    {
        var synopsis = MarkdownText.Paragraphs(section.Body);
        if (synopsis.Count == 0)
        {
            throw source.Error(section.Heading, "the SYNOPSIS section is empty");
        }

        return synopsis;
    }

    private static List<SyntaxItem> ReadSyntax(MarkdownSource source, Section section)
    {
        var items = new List<SyntaxItem>();
        HeadingBlock? setHeading = null;
        foreach (var block in section.Body)
        {
            switch (block)
            {
                case HeadingBlock { Level: 3 } h3:
                    if (setHeading is not null)
                    {
                        throw source.Error(setHeading, $"parameter set '### {MarkdownText.Inline(setHeading.Inline)}' has no code block with its syntax");
                    }

                    setHeading = h3;
                    break;
                case FencedCodeBlock code:
                    if (setHeading is null)
                    {
                        throw source.Error(code, "a syntax code block without a '### ParameterSetName' heading above it (use '### __AllParameterSets' for a command with one set)");
                    }

                    string setName = MarkdownText.Inline(setHeading.Inline);
                    bool isDefault = DefaultSuffix().IsMatch(setName);
                    setName = DefaultSuffix().Replace(setName, string.Empty).Trim();
                    string text = MarkdownText.Code(code);
                    if (text.Trim().Length == 0)
                    {
                        throw source.Error(code, $"the syntax code block of parameter set '{setName}' is empty");
                    }

                    if (items.Any(i => string.Equals(i.ParameterSetName, setName, StringComparison.OrdinalIgnoreCase)))
                    {
                        throw source.Error(setHeading, $"parameter set '{setName}' appears twice in SYNTAX");
                    }

                    items.Add(new SyntaxItem(setName, isDefault, text, MarkdownSource.LineOf(setHeading)));
                    setHeading = null;
                    break;
                case HtmlBlock:
                    break;
                default:
                    throw source.Error(block, "SYNTAX holds only '### ParameterSetName' headings, each with a code block");
            }
        }

        if (setHeading is not null)
        {
            throw source.Error(setHeading, $"parameter set '### {MarkdownText.Inline(setHeading.Inline)}' has no code block with its syntax");
        }

        if (items.Count == 0)
        {
            throw source.Error(section.Heading, "the SYNTAX section has no parameter set ('### ParameterSetName' and a code block)");
        }

        return items;
    }

    private static List<Example> ReadExamples(MarkdownSource source, Section section)
    {
        var examples = new List<Example>();
        foreach (var (heading, body) in SplitByH3(source, section, "an example needs a '### Example N: title' heading"))
        {
            string title = MarkdownText.Inline(heading.Inline);
            var introduction = new List<Block>();
            string? code = null;
            var remarks = new List<Block>();
            foreach (var block in body)
            {
                if (code is null && block is FencedCodeBlock fenced && CodeLanguages.Contains(Language(fenced)))
                {
                    code = MarkdownText.Code(fenced);
                }
                else if (code is null)
                {
                    introduction.Add(block);
                }
                else
                {
                    remarks.Add(block);
                }
            }

            examples.Add(new Example(title, MarkdownText.Paragraphs(introduction), code ?? string.Empty, MarkdownText.Paragraphs(remarks)));
        }

        return examples;
    }

    private static List<Parameter> ReadParameters(MarkdownSource source, Section section, List<SyntaxItem> syntax, out bool hasCommonParameters)
    {
        hasCommonParameters = false;
        var parameters = new List<Parameter>();
        foreach (var (heading, body) in SplitByH3(source, section, "a parameter needs a '### -Name' heading"))
        {
            string title = MarkdownText.Inline(heading.Inline);
            if (string.Equals(title, "CommonParameters", StringComparison.OrdinalIgnoreCase))
            {
                hasCommonParameters = true;
                continue;
            }

            if (string.Equals(title, "WorkflowCommonParameters", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (!ParameterHeading().IsMatch(title))
            {
                throw source.Error(heading, $"'### {title}' is not a parameter heading; expected '### -Name' or '### CommonParameters'");
            }

            string name = title.TrimStart('-');
            if (parameters.Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
            {
                throw source.Error(heading, $"parameter -{name} is described twice");
            }

            var yamlBlocks = body.OfType<FencedCodeBlock>().Where(b => Language(b).StartsWith("yaml", StringComparison.OrdinalIgnoreCase)).ToList();
            if (yamlBlocks.Count == 0)
            {
                throw source.Error(heading, $"parameter -{name} has no ```yaml block with its metadata");
            }

            if (yamlBlocks.Count > 1)
            {
                throw source.Error(yamlBlocks[1], $"parameter -{name} has more than one ```yaml block");
            }

            int yamlIndex = body.IndexOf(yamlBlocks[0]);
            var after = body.Skip(yamlIndex + 1).FirstOrDefault(b => b is not HtmlBlock);
            if (after is not null)
            {
                throw source.Error(after, $"parameter -{name}: text after its yaml block; the description goes between the heading and the yaml block");
            }

            var description = MarkdownText.Paragraphs(body.Take(yamlIndex));
            var parameter = ParameterYaml.Read(source, name, description, heading, yamlBlocks[0]);
            foreach (var set in parameter.ParameterSets)
            {
                if (!set.IsAllSets
                    && !syntax.Any(s => string.Equals(s.ParameterSetName, set.Name, StringComparison.OrdinalIgnoreCase)))
                {
                    throw source.Error(yamlBlocks[0], $"parameter -{name} names parameter set '{set.Name}', which SYNTAX does not have (it has {string.Join(", ", syntax.Select(s => "'" + s.ParameterSetName + "'"))})");
                }
            }

            parameters.Add(parameter);
        }

        return parameters;
    }

    private static List<InputOutput> ReadTypes(MarkdownSource source, Section section)
    {
        string kind = MarkdownText.Inline(section.Heading.Inline).ToUpperInvariant();
        return SplitByH3(source, section, $"each entry of {kind} needs a '### TypeName' heading")
            .Select(t => new InputOutput(MarkdownText.Inline(t.Heading.Inline), MarkdownText.Paragraphs(t.Body)))
            .ToList();
    }

    private static List<RelatedLink> ReadLinks(MarkdownSource source, Section section)
    {
        var links = new List<RelatedLink>();
        foreach (var block in section.Body)
        {
            switch (block)
            {
                case ListBlock list:
                    foreach (var item in list.OfType<ListItemBlock>())
                    {
                        AddLinks(source, item, links);
                    }

                    break;
                case ParagraphBlock paragraph:
                    AddLinks(source, paragraph, links);
                    break;
                case HtmlBlock:
                    break;
                default:
                    throw source.Error(block, "RELATED LINKS holds only links, as a list: '- [Text](uri)'");
            }
        }

        return links;
    }

    private static void AddLinks(MarkdownSource source, Block block, List<RelatedLink> links)
    {
        var found = block.Descendants<LinkInline>().Where(l => !l.IsImage).ToList();
        if (found.Count == 0)
        {
            throw source.Error(block, "a RELATED LINKS entry without a link; write '- [Text](uri)'");
        }

        foreach (var link in found)
        {
            string text = MarkdownText.Inline(link);
            string url = link.Url ?? string.Empty;
            links.Add(new RelatedLink(text.Length > 0 ? text : url, url));
        }
    }

    /// <summary>Splits a section body at its H3 headings; anything but comments before the first is an error.</summary>
    private static List<(HeadingBlock Heading, List<Block> Body)> SplitByH3(MarkdownSource source, Section section, string what)
    {
        var result = new List<(HeadingBlock, List<Block>)>();
        foreach (var block in section.Body)
        {
            if (block is HeadingBlock { Level: 3 } h3)
            {
                result.Add((h3, []));
            }
            else if (result.Count > 0)
            {
                result[^1].Item2.Add(block);
            }
            else if (block is not HtmlBlock)
            {
                throw source.Error(block, $"text directly under '## {MarkdownText.Inline(section.Heading.Inline)}': {what}");
            }
        }

        return result;
    }

    private static void RejectContent(MarkdownSource source, IEnumerable<Block> blocks, string where)
    {
        var stray = blocks.FirstOrDefault(b => b is not HtmlBlock and not ThematicBreakBlock);
        if (stray is not null)
        {
            throw source.Error(stray, $"unexpected text {where}");
        }
    }

    private static string Language(FencedCodeBlock block) => (block.Info ?? string.Empty).Trim();

    private static int IndexOfFirst<T>(IReadOnlyList<T> blocks, Func<T, bool> predicate)
    {
        for (int i = 0; i < blocks.Count; i++)
        {
            if (predicate(blocks[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private static int LastLine(MarkdownSource source) =>
        source.Blocks.Count == 0 ? 1 : MarkdownSource.LineOf(source.Blocks[^1]);

    [GeneratedRegex(@"\s*\(Default\)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex DefaultSuffix();

    [GeneratedRegex(@"^-[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex ParameterHeading();
}
