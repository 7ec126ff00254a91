using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace GpuVirt.Core.Boot
{
    /// <summary>
    /// The record of what Enable-IommuBoot changed, kept on the host so that Disable-IommuBoot removes exactly that
    /// and leaves every argument the user had before. One edit per line, tab-separated, with backslash escapes.
    /// </summary>
    internal static class BootEditLog
    {
        public const string HostPath = "/var/lib/gpuvirt/boot-edits.tsv";

        private const string Header = "# GpuVirt: kernel command line edits made by Enable-IommuBoot; Disable-IommuBoot undoes them. Do not edit.";

        public static IReadOnlyList<BootEdit> Read(HostRoot root)
        {
            var full = root.Resolve(HostPath);
            if (!System.IO.File.Exists(full)) return Array.Empty<BootEdit>();
            return Parse(HostFiles.ReadText(full, HostPath));
        }

        public static IReadOnlyList<BootEdit> Parse(string text)
        {
            var list = new List<BootEdit>();
            var lineNumber = 0;
            foreach (var line in text.Split('\n'))
            {
                lineNumber++;
                if (line.Length == 0 || line.StartsWith("#", StringComparison.Ordinal)) continue;
                var f = line.Split('\t').Select(Unescape).ToArray();
                if ((f.Length != 12 && f.Length != 13) || !Enum.TryParse<BootEditKind>(f[0], out var kind)
                    || !int.TryParse(f[6], NumberStyles.Integer, CultureInfo.InvariantCulture, out var index)
                    || !int.TryParse(f[7], NumberStyles.Integer, CultureInfo.InvariantCulture, out var occurrence)
                    || !int.TryParse(f[11], NumberStyles.Integer, CultureInfo.InvariantCulture, out var offset))
                {
                    throw new GpuVirtException(ErrorIds.BootFileMalformed, ErrorKind.InvalidData,
                        $"Line {lineNumber} of '{HostPath}' is not an edit record. The file was changed by hand; restore it from a backup or remove the line.", HostPath);
                }
                list.Add(new BootEdit
                {
                    Kind = kind,
                    File = f[1],
                    Key = f[2],
                    Item = f[3],
                    OldItem = f[4],
                    Word = f[5],
                    Index = index,
                    Occurrence = occurrence,
                    Separator = f[8],
                    SeparatorBefore = f[9] == "1",
                    Created = f[10] == "1",
                    Offset = offset,
                    Variable = f.Length > 12 ? f[12] : string.Empty,
                });
            }
            return list;
        }

        public static string Format(IEnumerable<BootEdit> edits)
        {
            var sb = new StringBuilder(Header).Append('\n');
            foreach (var e in edits)
            {
                var fields = new[]
                {
                    e.Kind.ToString(), e.File, e.Key, e.Item, e.OldItem, e.Word,
                    e.Index.ToString(CultureInfo.InvariantCulture), e.Occurrence.ToString(CultureInfo.InvariantCulture),
                    e.Separator, e.SeparatorBefore ? "1" : "0", e.Created ? "1" : "0", e.Offset.ToString(CultureInfo.InvariantCulture), e.Variable,
                };
                sb.Append(string.Join("\t", fields.Select(Escape))).Append('\n');
            }
            return sb.ToString();
        }

        private static string Escape(string s) =>
            s.Replace("\\", "\\\\").Replace("\t", "\\t").Replace("\n", "\\n").Replace("\r", "\\r");

        private static string Unescape(string s)
        {
            if (s.IndexOf('\\') < 0) return s;
            var sb = new StringBuilder(s.Length);
            for (var i = 0; i < s.Length; i++)
            {
                if (s[i] != '\\' || i + 1 >= s.Length)
                {
                    sb.Append(s[i]);
                    continue;
                }
                var n = s[++i];
                sb.Append(n switch { 't' => '\t', 'n' => '\n', 'r' => '\r', _ => n });
            }
            return sb.ToString();
        }
    }
}
