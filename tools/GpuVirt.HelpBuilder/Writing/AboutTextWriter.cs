using System.Text;
using GpuVirt.HelpBuilder.Model;

namespace GpuVirt.HelpBuilder.Writing;

/// <summary>
/// Writes an about_ topic as the plain text help file PowerShell shows (<c>about_Name.help.txt</c>): a TOPIC heading,
/// then each section's title in capitals with its text indented under it, prose wrapped at 80 columns, code kept as is.
/// </summary>
internal static class AboutTextWriter
{
    public const int Width = 80;
    private const int Indent = 4;

    public static string Write(AboutTopic topic)
    {
        var sb = new StringBuilder();
        sb.Append("TOPIC\n");
        sb.Append(new string(' ', Indent)).Append(topic.Name).Append('\n');
        foreach (var section in topic.Sections)
        {
            sb.Append('\n').Append(section.Title.ToUpperInvariant()).Append('\n');
            bool first = true;
            TextBlock? previous = null;
            foreach (var block in section.Blocks)
            {
                // list items of one list sit together; everything else is separated by a blank line
                bool tight = previous is not null && block.Kind == TextBlockKind.ListItem && previous.Kind == TextBlockKind.ListItem;
                if (!first && !tight)
                {
                    sb.Append('\n');
                }

                AppendBlock(sb, block);
                first = false;
                previous = block;
            }
        }

        return sb.ToString();
    }

    private static void AppendBlock(StringBuilder sb, TextBlock block)
    {
        int indent = Indent + (block.Depth * 2);
        switch (block.Kind)
        {
            case TextBlockKind.Code:
            case TextBlockKind.Table:
                foreach (string line in block.Text.Split('\n'))
                {
                    sb.Append(line.Length == 0 ? string.Empty : new string(' ', indent + Indent) + line).Append('\n');
                }

                break;
            case TextBlockKind.ListItem:
                string marker = block.Marker.Length > 0 ? block.Marker + " " : string.Empty;
                int hanging = indent + (block.Marker.Length > 0 ? marker.Length : 2);
                AppendWrapped(sb, block.Text, new string(' ', indent) + (marker.Length > 0 ? marker : "  "), new string(' ', hanging));
                break;
            default:
                AppendWrapped(sb, block.Text, new string(' ', indent), new string(' ', indent));
                break;
        }
    }

    /// <summary>Word-wraps text to <see cref="Width"/> columns; hard line breaks in the text are kept.</summary>
    internal static void AppendWrapped(StringBuilder sb, string text, string firstPrefix, string prefix)
    {
        bool firstLine = true;
        foreach (string hardLine in text.Split('\n'))
        {
            var line = new StringBuilder(firstLine ? firstPrefix : prefix);
            int start = line.Length;
            foreach (string word in hardLine.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length > start && line.Length + 1 + word.Length > Width)
                {
                    sb.Append(line.ToString().TrimEnd()).Append('\n');
                    line.Clear().Append(prefix);
                    start = line.Length;
                }

                if (line.Length > start)
                {
                    line.Append(' ');
                }

                line.Append(word);
            }

            sb.Append(line.ToString().TrimEnd()).Append('\n');
            firstLine = false;
        }
    }
}
