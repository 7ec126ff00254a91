using GpuVirt.HelpBuilder.Model;
using Markdig.Syntax;

namespace GpuVirt.HelpBuilder.Reading;

/// <summary>
/// Reads an about_ topic page. PlatyPS has no schema for these; this follows the shape of PowerShell's own about
/// topics: optional front matter, <c># about_Name</c>, <c>## Short description</c>, <c>## Long description</c>, then any
/// further <c>##</c> sections (Examples, See also, Keywords, ...).
/// </summary>
internal static class AboutTopicReader
{
    public const string ShortDescription = "Short description";
    public const string LongDescription = "Long description";

    public static AboutTopic Read(MarkdownSource source, string expectedName)
    {
        if (source.FrontMatter is { } frontMatter
            && frontMatter.TryGet(FrontMatterKeys.DocumentType, out string type, out int typeLine)
            && !string.Equals(type, "about", StringComparison.OrdinalIgnoreCase))
        {
            throw source.Error(typeLine, $"an about_ topic has 'document type: {type}'; leave the key out (or write 'about')");
        }

        var blocks = source.Blocks;
        var first = blocks.FirstOrDefault(b => b is not HtmlBlock);
        if (first is not HeadingBlock { Level: 1 } h1)
        {
            throw source.Error(first is null ? 1 : MarkdownSource.LineOf(first), $"expected '# {expectedName}' as the first heading");
        }

        string name = MarkdownText.Inline(h1.Inline);
        if (!string.Equals(name, expectedName, StringComparison.OrdinalIgnoreCase))
        {
            throw source.Error(h1, $"the heading '# {name}' does not match the file name ('{expectedName}')");
        }

        var sections = new List<(HeadingBlock Heading, List<Block> Body)>();
        foreach (var block in blocks.SkipWhile(b => b != h1).Skip(1))
        {
            if (block is HeadingBlock { Level: 1 } extra)
            {
                throw source.Error(extra, "a second '#' heading; an about_ topic has one, its name, and '##' sections below it");
            }

            if (block is HeadingBlock { Level: 2 } h2)
            {
                sections.Add((h2, []));
            }
            else if (sections.Count > 0)
            {
                sections[^1].Body.Add(block);
            }
            else if (block is not HtmlBlock)
            {
                throw source.Error(block, $"text before '## {ShortDescription}'");
            }
        }

        Expect(source, sections, 0, ShortDescription, h1);
        Expect(source, sections, 1, LongDescription, sections[0].Heading);

        var result = new List<AboutSection>();
        foreach (var (heading, body) in sections)
        {
            var text = MarkdownText.Blocks(body);
            if (result.Count == 0 && text.Count == 0)
            {
                throw source.Error(heading, $"the '## {ShortDescription}' section is empty");
            }

            result.Add(new AboutSection(MarkdownText.Inline(heading.Inline), text));
        }

        return new AboutTopic(source.Path, name, result);
    }

    private static void Expect(MarkdownSource source, List<(HeadingBlock Heading, List<Block> Body)> sections, int index, string title, Block previous)
    {
        if (sections.Count <= index)
        {
            throw source.Error(previous, $"missing required section '## {title}' after this line");
        }

        var heading = sections[index].Heading;
        string found = MarkdownText.Inline(heading.Inline);
        if (!string.Equals(found, title, StringComparison.OrdinalIgnoreCase))
        {
            throw source.Error(heading, $"expected '## {title}' here, found '## {found}'");
        }
    }
}
