using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GpuVirt.Core.Boot
{
    /// <summary>One kernel argument inside a file, with its exact place.</summary>
    internal sealed class ArgumentWord
    {
        public ArgumentWord(int index, int region, string? variable, int start, int end, string text, bool isSimple, bool isOpaque, int firstAtom, int lastAtom)
        {
            Index = index;
            Region = region;
            Variable = variable;
            Start = start;
            End = end;
            Text = text;
            IsSimple = isSimple;
            IsOpaque = isOpaque;
            FirstAtom = firstAtom;
            LastAtom = lastAtom;
        }

        public int Index { get; }
        public int Region { get; }

        /// <summary>The shell variable that holds the argument (null in a plain command line file).</summary>
        public string? Variable { get; }

        public int Start { get; }
        public int End { get; }

        /// <summary>The argument as the kernel sees it (expansions kept as written).</summary>
        public string Text { get; }

        /// <summary>Plain characters in one quoted run: the module may rewrite it in place.</summary>
        public bool IsSimple { get; }

        /// <summary>Holds an expansion whose value is known only when the shell runs.</summary>
        public bool IsOpaque { get; }

        public int FirstAtom { get; }
        public int LastAtom { get; }

        public override string ToString() => Text;
    }

    /// <summary>How an appended argument found its place.</summary>
    internal enum AppendPlacement
    {
        /// <summary>Inside the value's last quoted run.</summary>
        InQuotes,

        /// <summary>In a new quoted run added at the end of the value (the value had no suitable one).</summary>
        NewQuotedRun,

        /// <summary>In a new assignment added at the end of the file (the variable was missing).</summary>
        NewAssignment,
    }

    /// <summary>
    /// The kernel argument list held in a file: the value of a shell variable (<c>GRUB_CMDLINE_LINUX</c> in
    /// <c>/etc/default/grub</c>) or a plain command line (<c>/etc/kernel/cmdline</c>). Every edit changes only the
    /// bytes of the words it touches and the whitespace that separates them, and returns the whole new text;
    /// removing what was appended gives back the original bytes.
    /// </summary>
    internal sealed class CmdlineDocument
    {
        /// <summary>The comment line written above an assignment the module adds, so that the undo can find it.</summary>
        public const string AddedAssignmentMarker = "# Added by Enable-IommuBoot (GpuVirt); Disable-IommuBoot removes it again.";

        private readonly IReadOnlyList<ShellAssignment> _regions;

        private CmdlineDocument(string text, string? variable, IReadOnlyList<ShellAssignment> regions)
        {
            Text = text;
            Variable = variable;
            _regions = regions;
            Words = SplitWords();
        }

        public string Text { get; }

        /// <summary>The shell variable, or null for a plain command line file.</summary>
        public string? Variable { get; }

        public bool IsPlain => Variable is null;

        /// <summary>The variable (the first one given) has an assignment that new arguments can join.</summary>
        public bool HasAssignment => PrimaryRegion >= 0;

        /// <summary>The last effective region of the variable new arguments go to, or -1.</summary>
        private int PrimaryRegion
        {
            get
            {
                if (IsPlain) return _regions.Count - 1;
                for (var i = _regions.Count - 1; i >= 0; i--) if (_regions[i].Name == Variable) return i;
                return -1;
            }
        }

        /// <summary>The last effective region of a variable, or -1.</summary>
        private int LastRegionOf(string? variable)
        {
            if (IsPlain) return _regions.Count - 1;
            var name = string.IsNullOrEmpty(variable) ? Variable : variable;
            for (var i = _regions.Count - 1; i >= 0; i--) if (_regions[i].Name == name) return i;
            return -1;
        }

        /// <summary>The arguments in effect, in order (for a variable assigned several times, those the last assignment keeps).</summary>
        public IReadOnlyList<ArgumentWord> Words { get; }

        /// <summary>The arguments as one line, the way the kernel would get them.</summary>
        public string ArgumentLine => string.Join(" ", Words.Select(w => w.Text));

        /// <summary>
        /// Reads the values of shell variables that the kernel gets one after the other (<c>GRUB_CMDLINE_LINUX</c>,
        /// then <c>GRUB_CMDLINE_LINUX_DEFAULT</c>): the words are in the order the kernel sees them. New arguments go to
        /// the first variable.
        /// </summary>
        public static CmdlineDocument ParseShell(string text, params string[] variables)
        {
            var effective = new List<ShellAssignment>();
            foreach (var variable in variables)
            {
                var all = ShellScanner.FindAssignments(text, variable);
                var mine = new List<ShellAssignment>();
                for (var i = all.Count - 1; i >= 0; i--)
                {
                    mine.Insert(0, all[i]);
                    if (!all[i].ReferencesItself(text)) break;
                }
                effective.AddRange(mine);
            }
            return new CmdlineDocument(text, variables[0], effective);
        }

        /// <summary>The variables that hold arguments, in kernel order, and that have an assignment.</summary>
        public IReadOnlyList<string> AssignedVariables => _regions.Select(r => r.Name).Where(n => n.Length > 0).Distinct().ToList();

        /// <summary>Reads a plain command line file: whitespace-separated arguments, no quoting.</summary>
        public static CmdlineDocument ParsePlain(string text)
        {
            var atoms = new List<Atom>(text.Length);
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                var blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
                atoms.Add(new Atom(i, i + 1, blank ? AtomKind.Space : AtomKind.Literal, c.ToString(), 0));
            }
            var segment = new Segment(0, '\0', 0) { End = text.Length };
            var region = new ShellAssignment(string.Empty, 0, 0, 0, text.Length, atoms, new[] { segment });
            return new CmdlineDocument(text, null, new[] { region });
        }

        private List<ArgumentWord> SplitWords()
        {
            var words = new List<ArgumentWord>();
            for (var r = 0; r < _regions.Count; r++)
            {
                var atoms = _regions[r].Atoms;
                var i = 0;
                while (i < atoms.Count)
                {
                    if (atoms[i].Kind == AtomKind.Space)
                    {
                        i++;
                        continue;
                    }
                    var j = i;
                    while (j < atoms.Count && atoms[j].Kind != AtomKind.Space) j++;
                    // atoms i..j-1 form a run; leading/trailing quotes and continuations are not part of the word.
                    var first = i;
                    var last = j - 1;
                    while (first <= last && IsFrame(atoms[first].Kind)) first++;
                    while (last >= first && IsFrame(atoms[last].Kind)) last--;
                    if (first <= last)
                    {
                        var sb = new StringBuilder();
                        var simple = true;
                        var opaque = false;
                        for (var k = first; k <= last; k++)
                        {
                            var a = atoms[k];
                            sb.Append(a.Text);
                            if (a.Kind != AtomKind.Literal || a.Segment != atoms[first].Segment) simple = false;
                            if (a.Kind == AtomKind.Opaque) opaque = true;
                        }
                        words.Add(new ArgumentWord(words.Count, r, IsPlain ? null : _regions[r].Name, atoms[first].Start, atoms[last].End, sb.ToString(), simple, opaque, first, last));
                    }
                    i = j;
                }
            }
            return words;
        }

        private static bool IsFrame(AtomKind kind) => kind == AtomKind.Quote || kind == AtomKind.Continuation;

        /// <summary>Rewrites one argument in place.</summary>
        public string ReplaceWord(int index, string newText)
        {
            var w = Words[index];
            if (!w.IsSimple) throw new InvalidOperationException($"The argument '{w.Text}' is not plain text and cannot be rewritten.");
            CheckWritable(newText);
            return Splice(w.Start, w.End, newText);
        }

        /// <summary>Removes one argument and the whitespace that separated it from its neighbour.</summary>
        public string RemoveWord(int index, out string separator, out bool separatorBefore, out int offset)
        {
            var w = Words[index];
            offset = w.Start - _regions[w.Region].ValueStart;
            var atoms = _regions[w.Region].Atoms;
            var prev = index > 0 && Words[index - 1].Region == w.Region ? Words[index - 1] : null;
            var next = index + 1 < Words.Count && Words[index + 1].Region == w.Region ? Words[index + 1] : null;

            // The gap to a neighbour is taken whole when it is only whitespace and line continuations (no quote).
            if (prev != null && IsPlainGap(atoms, prev.LastAtom + 1, w.FirstAtom - 1))
            {
                separator = Text.Substring(prev.End, w.Start - prev.End);
                separatorBefore = true;
                return Splice(prev.End, w.End, string.Empty);
            }
            if (next != null && IsPlainGap(atoms, w.LastAtom + 1, next.FirstAtom - 1))
            {
                separator = Text.Substring(w.End, next.Start - w.End);
                separatorBefore = false;
                return Splice(w.Start, next.Start, string.Empty);
            }

            // Across quotes: only the whitespace inside the word's own quoted run goes with it.
            var segment = atoms[w.FirstAtom].Segment;
            var before = w.FirstAtom;
            while (before > 0 && atoms[before - 1].Kind == AtomKind.Space && atoms[before - 1].Segment == segment) before--;
            if (prev != null && before < w.FirstAtom)
            {
                var start = atoms[before].Start;
                separator = Text.Substring(start, w.Start - start);
                separatorBefore = true;
                return Splice(start, w.End, string.Empty);
            }
            var lastSegment = atoms[w.LastAtom].Segment;
            var after = w.LastAtom;
            while (after + 1 < atoms.Count && atoms[after + 1].Kind == AtomKind.Space && atoms[after + 1].Segment == lastSegment) after++;
            if (next != null && after > w.LastAtom)
            {
                var end = atoms[after].End;
                separator = Text.Substring(w.End, end - w.End);
                separatorBefore = false;
                return Splice(w.Start, end, string.Empty);
            }

            separator = string.Empty;
            separatorBefore = true;
            return Splice(w.Start, w.End, string.Empty);
        }

        private static bool IsPlainGap(IReadOnlyList<Atom> atoms, int from, int to)
        {
            if (from > to) return false;
            var sawSpace = false;
            for (var i = from; i <= to; i++)
            {
                if (atoms[i].Kind == AtomKind.Space) sawSpace = true;
                else if (atoms[i].Kind != AtomKind.Continuation) return false;
            }
            return sawSpace;
        }

        /// <summary>Puts an argument back where <see cref="RemoveWord"/> took it from (in the variable that held it).</summary>
        public string InsertWord(int index, string text, string separator, bool separatorBefore, int offset = -1, string? variable = null)
        {
            CheckWritable(text);
            CheckSeparator(separator);
            var name = IsPlain ? null : string.IsNullOrEmpty(variable) ? Variable : variable;
            if (separatorBefore && index > 0 && index - 1 < Words.Count && Words[index - 1].Variable == name)
            {
                return Splice(Words[index - 1].End, Words[index - 1].End, separator + text);
            }
            if (!separatorBefore && index < Words.Count && Words[index].Variable == name)
            {
                return Splice(Words[index].Start, Words[index].Start, text + separator);
            }
            var regionIndex = LastRegionOf(name);
            if (regionIndex >= 0 && offset >= 0 && !Words.Any(w => w.Region == regionIndex))
            {
                // It was the only argument of its variable: it goes back to the same place in the value.
                var region = _regions[regionIndex];
                var at = region.ValueStart + offset;
                if (at <= region.ValueEnd && (IsPlain || region.Segments.Any(s => s.IsQuoted && at >= s.ContentStart && at <= s.ContentEnd)))
                    return Splice(at, at, text);
            }
            if (regionIndex >= 0 && name != Variable)
            {
                var inRegion = Words.Where(w => w.Region == regionIndex).ToList();
                if (inRegion.Count > 0 && inRegion[inRegion.Count - 1].IsSimple)
                {
                    var end = inRegion[inRegion.Count - 1].End;
                    return Splice(end, end, " " + text);
                }
            }
            return AppendWord(text, out _);
        }

        /// <summary>Adds an argument after the last one, inside the value's quotes.</summary>
        public string AppendWord(string text, out AppendPlacement placement)
        {
            CheckWritable(text);
            if (!HasAssignment)
            {
                placement = AppendPlacement.NewAssignment;
                var assignment = Variable + "=\"" + text + "\"";
                return Text.Length == 0 || Text.EndsWith("\n", StringComparison.Ordinal)
                    ? Text + AddedAssignmentMarker + "\n" + assignment + "\n"
                    : Text + "\n" + AddedAssignmentMarker + "\n" + assignment;
            }

            var regionIndex = PrimaryRegion;
            var region = _regions[regionIndex];
            var regionWords = Words.Where(w => w.Region == regionIndex).ToList();

            if (IsPlain)
            {
                placement = AppendPlacement.InQuotes;
                if (regionWords.Count > 0) return Splice(regionWords[regionWords.Count - 1].End, regionWords[regionWords.Count - 1].End, " " + text);
                // An empty or blank file: the argument goes first, before any trailing newline.
                return Splice(0, 0, text);
            }

            var lastQuoted = region.Segments.LastOrDefault(s => s.IsQuoted);
            if (lastQuoted != null && lastQuoted.End == region.ValueEnd)
            {
                placement = AppendPlacement.InQuotes;
                var inSegment = regionWords.Where(w => region.Atoms[w.LastAtom].Segment == lastQuoted.Index).ToList();
                if (inSegment.Count > 0)
                {
                    var end = inSegment[inSegment.Count - 1].End;
                    return Splice(end, end, " " + text);
                }
                return Splice(lastQuoted.ContentEnd, lastQuoted.ContentEnd, (regionWords.Count > 0 ? " " : string.Empty) + text);
            }

            placement = AppendPlacement.NewQuotedRun;
            return Splice(region.ValueEnd, region.ValueEnd, "\"" + (regionWords.Count > 0 ? " " : string.Empty) + text + "\"");
        }

        /// <summary>Undoes <see cref="AppendPlacement.NewQuotedRun"/>: drops an empty <c>""</c> left at the end of the value.</summary>
        public string RemoveEmptyTrailingQuotes()
        {
            if (!HasAssignment || IsPlain) return Text;
            var region = _regions[PrimaryRegion];
            var last = region.Segments.LastOrDefault();
            if (last != null && last.Quote == '"' && last.End == region.ValueEnd && last.End - last.Start == 2)
            {
                return Splice(last.Start, last.End, string.Empty);
            }
            return Text;
        }

        /// <summary>Undoes <see cref="AppendPlacement.NewAssignment"/>: removes the marker and the assignment once it holds no argument.</summary>
        public string RemoveAddedAssignment()
        {
            if (!HasAssignment || IsPlain || Words.Any(w => w.Region == PrimaryRegion)) return Text;
            var region = _regions[PrimaryRegion];
            var expected = Variable + "=\"\"";
            if (region.ValueEnd - region.NameStart != expected.Length || Text.Substring(region.NameStart, expected.Length) != expected) return Text;
            var markerLine = AddedAssignmentMarker + "\n";
            var markerStart = region.NameStart - markerLine.Length;
            if (markerStart < 0 || Text.Substring(markerStart, markerLine.Length) != markerLine) return Text;
            if (region.ValueEnd < Text.Length && Text[region.ValueEnd] == '\n')
            {
                return Splice(markerStart, region.ValueEnd + 1, string.Empty);
            }
            if (region.ValueEnd == Text.Length && markerStart > 0 && Text[markerStart - 1] == '\n')
            {
                return Splice(markerStart - 1, region.ValueEnd, string.Empty);
            }
            return Splice(markerStart, region.ValueEnd, string.Empty);
        }

        private string Splice(int start, int end, string insert) => Text.Substring(0, start) + insert + Text.Substring(end);

        /// <summary>The module writes only plain argument characters, which need no quoting in any shell string.</summary>
        private static void CheckWritable(string text)
        {
            if (text.Length == 0 || text.Any(c => !KernelArguments.IsPlainChar(c)))
                throw new ArgumentException($"'{text}' is not a plain kernel argument.", nameof(text));
        }

        private static void CheckSeparator(string separator)
        {
            if (separator.Replace("\\\n", string.Empty).Any(c => c != ' ' && c != '\t' && c != '\n' && c != '\r'))
                throw new ArgumentException("A separator is whitespace and line continuations only.", nameof(separator));
        }
    }
}
