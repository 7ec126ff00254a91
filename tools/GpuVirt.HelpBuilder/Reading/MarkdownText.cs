using System.Text;
using System.Text.RegularExpressions;
using GpuVirt.HelpBuilder.Model;
using Markdig.Extensions.Tables;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace GpuVirt.HelpBuilder.Reading;

/// <summary>
/// Turns Markdig blocks and inlines into the plain text that console help shows: emphasis markers dropped,
/// inline code kept in backticks, soft line breaks joined so the help viewer can reflow the text, links shown as
/// their text (with the address after it when it is an absolute one).
/// </summary>
internal static partial class MarkdownText
{
    /// <summary>The plain text of a run of inlines.</summary>
    public static string Inline(ContainerInline? container)
    {
        if (container is null)
        {
            return string.Empty;
        }

        var sb = new StringBuilder();
        AppendInlines(sb, container);
        return sb.ToString().Trim();
    }

    /// <summary>The text blocks of a run of markdown blocks.</summary>
    public static List<TextBlock> Blocks(IEnumerable<Block> blocks, int depth = 0)
    {
        var result = new List<TextBlock>();
        foreach (var block in blocks)
        {
            AddBlock(result, block, depth);
        }

        return result;
    }

    /// <summary>
    /// The blocks as MAML paragraphs: one string per paragraph, code block, table or whole list (its items on lines
    /// of their own, so Get-Help shows them without blank lines between).
    /// </summary>
    public static List<string> Paragraphs(IEnumerable<Block> blocks)
    {
        var paragraphs = new List<string>();
        TextBlock? previous = null;
        foreach (var block in Blocks(blocks))
        {
            string text = ToParagraph(block);
            if (text.Length == 0)
            {
                continue;
            }

            if (previous is not null && block.Kind == TextBlockKind.ListItem && previous.Kind == TextBlockKind.ListItem)
            {
                paragraphs[^1] += "\n" + text;
            }
            else
            {
                paragraphs.Add(text);
            }

            previous = block;
        }

        return paragraphs;
    }

    public static string ToParagraph(TextBlock block) => block.Kind switch
    {
        TextBlockKind.ListItem => new string(' ', block.Depth * 2) + (block.Marker.Length > 0 ? block.Marker + " " : "  ") + block.Text,
        _ => block.Text,
    };

    /// <summary>The content of a code block, without the fences and without trailing blank lines.</summary>
    public static string Code(LeafBlock block)
    {
        var lines = block.Lines.Lines.Take(block.Lines.Count).Select(l => l.Slice.ToString().TrimEnd()).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return string.Join('\n', lines);
    }

    private static void AddBlock(List<TextBlock> result, Block block, int depth)
    {
        switch (block)
        {
            case HeadingBlock heading:
                result.Add(new TextBlock(TextBlockKind.Heading, Inline(heading.Inline), depth));
                break;
            case ParagraphBlock paragraph:
                string text = AlertMarker().Replace(Inline(paragraph.Inline), m => m.Groups[1].Value.ToUpperInvariant() + ": ");
                if (text.Length > 0)
                {
                    result.Add(new TextBlock(TextBlockKind.Paragraph, text, depth));
                }

                break;
            case CodeBlock code: // fenced and indented
                result.Add(new TextBlock(TextBlockKind.Code, Code(code), depth));
                break;
            case ListBlock list:
                AddList(result, list, depth);
                break;
            case QuoteBlock quote:
                foreach (var child in quote)
                {
                    AddBlock(result, child, depth);
                }

                break;
            case Table table:
                result.Add(new TextBlock(TextBlockKind.Table, TableText(table), depth));
                break;
            case HtmlBlock:
            case ThematicBreakBlock:
            case LinkReferenceDefinitionGroup:
                break;
            case ContainerBlock container:
                foreach (var child in container)
                {
                    AddBlock(result, child, depth);
                }

                break;
        }
    }

    private static void AddList(List<TextBlock> result, ListBlock list, int depth)
    {
        int number = int.TryParse(list.OrderedStart, out int start) ? start : 1;
        foreach (var item in list.OfType<ListItemBlock>())
        {
            string marker = list.IsOrdered ? $"{number++}{list.OrderedDelimiter}" : "-";
            bool first = true;
            foreach (var child in item)
            {
                if (child is ListBlock nested)
                {
                    AddList(result, nested, depth + 1);
                    first = false;
                    continue;
                }

                var inner = new List<TextBlock>();
                AddBlock(inner, child, depth);
                foreach (var b in inner)
                {
                    if (b.Kind is TextBlockKind.Paragraph or TextBlockKind.Heading)
                    {
                        result.Add(new TextBlock(TextBlockKind.ListItem, b.Text, depth, first ? marker : string.Empty));
                    }
                    else
                    {
                        result.Add(b with { Depth = depth + 1 });
                    }

                    first = false;
                }
            }
        }
    }

    private static string TableText(Table table)
    {
        var rows = table.OfType<TableRow>()
            .Select(r => (r.IsHeader, Cells: r.OfType<TableCell>().Select(c => string.Join(' ', Blocks(c).Select(ToParagraph))).ToList()))
            .ToList();
        int columns = rows.Count == 0 ? 0 : rows.Max(r => r.Cells.Count);
        var widths = Enumerable.Range(0, columns)
            .Select(i => rows.Max(r => i < r.Cells.Count ? r.Cells[i].Length : 0))
            .ToArray();
        var lines = new List<string>();
        foreach (var (isHeader, cells) in rows)
        {
            lines.Add(string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
            if (isHeader)
            {
                lines.Add(string.Join("  ", widths.Select(w => new string('-', Math.Max(w, 1)))));
            }
        }

        return string.Join('\n', lines);
    }

    private static void AppendInlines(StringBuilder sb, ContainerInline container)
    {
        foreach (var inline in container)
        {
            switch (inline)
            {
                case LiteralInline literal:
                    sb.Append(literal.Content.ToString());
                    break;
                case CodeInline code:
                    sb.Append('`').Append(code.Content).Append('`');
                    break;
                case LineBreakInline lineBreak:
                    sb.Append(lineBreak.IsHard ? "\n" : " ");
                    break;
                case AutolinkInline autolink:
                    sb.Append(autolink.Url);
                    break;
                case HtmlEntityInline entity:
                    sb.Append(entity.Transcoded.ToString());
                    break;
                case LinkInline link:
                    AppendLink(sb, link);
                    break;
                case PipeTableDelimiterInline:
                    sb.Append('|');
                    break;
                case ContainerInline inner: // emphasis and the like: the text without the markers
                    AppendInlines(sb, inner);
                    break;
                case HtmlInline:
                    break;
                default:
                    sb.Append(inline.ToString());
                    break;
            }
        }
    }

    private static void AppendLink(StringBuilder sb, LinkInline link)
    {
        var text = new StringBuilder();
        AppendInlines(text, link);
        string label = text.ToString().Trim();
        string url = link.Url ?? string.Empty;
        if (link.IsImage)
        {
            sb.Append(label);
            return;
        }

        if (label.Length == 0)
        {
            sb.Append(url);
        }
        else if (IsAbsolute(url) && !string.Equals(label, url, StringComparison.Ordinal))
        {
            sb.Append(label).Append(" (").Append(url).Append(')');
        }
        else
        {
            sb.Append(label);
        }
    }

    internal static bool IsAbsolute(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    [GeneratedRegex(@"^\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*", RegexOptions.IgnoreCase)]
    private static partial Regex AlertMarker();
}
