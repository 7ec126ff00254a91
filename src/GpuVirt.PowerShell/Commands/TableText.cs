using System;
using System.Collections.Generic;
using System.Text;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Text laid out for the module's table views. PowerShell's table wrapping cuts a long cell at the column's width,
    /// in the middle of a word; the views of long sentences (Detail, Fix) break them here at spaces instead, to a width
    /// worked out the way PowerShell shares a table's free width among the columns that have none of their own.
    /// </summary>
    public static class TableText
    {
        /// <summary>The narrowest a shared column is made, however narrow the console.</summary>
        public const int MinimumWidth = 16;

        private static readonly char[] Separators = { '-', '/', '_', '.', ',', ':', '=' };

        /// <summary>
        /// <paramref name="text"/> with line breaks at spaces so that no line is wider than one of
        /// <paramref name="shares"/> columns sharing a table <paramref name="tableWidth"/> wide once the fixed columns
        /// (<paramref name="fixedWidth"/>, their separators included) are laid out. A word longer than that is cut.
        /// </summary>
        public static string Wrap(object? text, int tableWidth, int fixedWidth, int shares)
        {
            var value = text?.ToString();
            if (string.IsNullOrEmpty(value)) return string.Empty;
            if (shares < 1) shares = 1;
            if (tableWidth <= 0) tableWidth = 120;
            var width = Math.Max(MinimumWidth, (tableWidth - fixedWidth - (shares - 1)) / shares);
            var lines = new List<string>();
            foreach (var paragraph in value!.Replace("\r\n", "\n").Split('\n'))
            {
                WrapParagraph(paragraph, width, lines);
            }
            return string.Join("\n", lines);
        }

        private static void WrapParagraph(string paragraph, int width, List<string> lines)
        {
            var line = new StringBuilder();
            foreach (var word in paragraph.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries))
            {
                var rest = word;
                if (line.Length > 0 && line.Length + 1 + rest.Length > width)
                {
                    lines.Add(line.ToString());
                    line.Clear();
                }
                while (rest.Length > width)
                {
                    if (line.Length > 0)
                    {
                        lines.Add(line.ToString());
                        line.Clear();
                    }
                    // A long path or name breaks after one of its own separators when it has one in reach.
                    var cut = rest.LastIndexOfAny(Separators, width - 1) + 1;
                    if (cut <= width / 3) cut = width;
                    lines.Add(rest.Substring(0, cut));
                    rest = rest.Substring(cut);
                }
                if (line.Length > 0) line.Append(' ');
                line.Append(rest);
            }
            lines.Add(line.ToString());
        }
    }
}
