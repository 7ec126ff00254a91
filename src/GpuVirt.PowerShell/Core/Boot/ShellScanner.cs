using System;
using System.Collections.Generic;
using System.Text;

namespace GpuVirt.Core.Boot
{
    /// <summary>What one piece of a shell assignment's value is.</summary>
    internal enum AtomKind
    {
        /// <summary>A character that stands for itself.</summary>
        Literal,

        /// <summary>Quoted whitespace: it separates kernel arguments once the shell has expanded the value.</summary>
        Space,

        /// <summary>A backslash escape (<c>\"</c>, <c>\$</c>): a literal character written in two.</summary>
        Escape,

        /// <summary>An expansion (<c>$(...)</c>, <c>${...}</c>, <c>$NAME</c>, backticks): its text is known only at run time.</summary>
        Opaque,

        /// <summary>A backslash-newline the shell removes.</summary>
        Continuation,

        /// <summary>An opening or closing quote character.</summary>
        Quote,
    }

    /// <summary>One piece of a value, with its place in the file and the text it stands for after quote removal.</summary>
    internal readonly struct Atom
    {
        public Atom(int start, int end, AtomKind kind, string text, int segment)
        {
            Start = start;
            End = end;
            Kind = kind;
            Text = text;
            Segment = segment;
        }

        public int Start { get; }
        public int End { get; }
        public AtomKind Kind { get; }
        public string Text { get; }

        /// <summary>The quoted or unquoted run the atom belongs to (an index into the value's segments).</summary>
        public int Segment { get; }
    }

    /// <summary>A quoted (<c>"..."</c>, <c>'...'</c>) or unquoted run of a value.</summary>
    internal sealed class Segment
    {
        public Segment(int index, char quote, int start)
        {
            Index = index;
            Quote = quote;
            Start = start;
        }

        public int Index { get; }

        /// <summary><c>"</c>, <c>'</c>, or <c>\0</c> for an unquoted run.</summary>
        public char Quote { get; }

        /// <summary>Where the segment starts (its opening quote, if any).</summary>
        public int Start { get; }

        /// <summary>Where the segment ends (after its closing quote, if any).</summary>
        public int End { get; set; }

        public bool IsQuoted => Quote != '\0';

        /// <summary>Where the text between the quotes starts and ends.</summary>
        public int ContentStart => IsQuoted ? Start + 1 : Start;
        public int ContentEnd => IsQuoted ? End - 1 : End;
    }

    /// <summary>One <c>NAME=value</c> assignment found at a command position of a shell file.</summary>
    internal sealed class ShellAssignment
    {
        public ShellAssignment(string name, int lineStart, int nameStart, int valueStart, int valueEnd, IReadOnlyList<Atom> atoms, IReadOnlyList<Segment> segments)
        {
            Name = name;
            LineStart = lineStart;
            NameStart = nameStart;
            ValueStart = valueStart;
            ValueEnd = valueEnd;
            Atoms = atoms;
            Segments = segments;
        }

        public string Name { get; }
        public int LineStart { get; }
        public int NameStart { get; }
        public int ValueStart { get; }
        public int ValueEnd { get; }
        public IReadOnlyList<Atom> Atoms { get; }
        public IReadOnlyList<Segment> Segments { get; }

        /// <summary>True when the value mentions the variable itself (<c>"$GRUB_CMDLINE_LINUX quiet"</c>): it adds to the earlier value.</summary>
        public bool ReferencesItself(string text)
        {
            foreach (var a in Atoms)
            {
                if (a.Kind != AtomKind.Opaque) continue;
                var raw = text.Substring(a.Start, a.End - a.Start);
                if (raw == "$" + Name || raw == "${" + Name + "}") return true;
            }
            return false;
        }
    }

    /// <summary>
    /// Reads the shell files boot loaders source (<c>/etc/default/grub</c>, <c>/etc/sysconfig/grub</c>) the way
    /// <c>/bin/sh</c> does, far enough to find variable assignments and split their values into pieces with exact
    /// positions: quotes, backslash escapes, line continuations, comments, and <c>$(...)</c>, <c>${...}</c>,
    /// <c>$((...))</c> and backtick expansions with any nesting of quotes and brackets inside. Nothing is evaluated.
    /// </summary>
    internal sealed class ShellScanner
    {
        private static readonly HashSet<string> Keywords = new HashSet<string>(StringComparer.Ordinal)
        {
            "then", "do", "else", "elif", "if", "while", "until", "!", "{", "export", "readonly", "local",
        };

        private readonly string _text;
        private int _pos;

        private ShellScanner(string text)
        {
            _text = text;
        }

        /// <summary>Every assignment to <paramref name="name"/> at a command position, in file order.</summary>
        public static IReadOnlyList<ShellAssignment> FindAssignments(string text, string name)
        {
            var scanner = new ShellScanner(text);
            return scanner.Scan(name);
        }

        private List<ShellAssignment> Scan(string name)
        {
            var found = new List<ShellAssignment>();
            var commandStart = true;
            var lineStart = 0;
            while (_pos < _text.Length)
            {
                var c = _text[_pos];
                if (c == '\n')
                {
                    _pos++;
                    commandStart = true;
                    lineStart = _pos;
                    continue;
                }
                if (c == ' ' || c == '\t' || c == '\r')
                {
                    _pos++;
                    continue;
                }
                if (c == '#')
                {
                    SkipComment();
                    continue;
                }
                if (c == ';' || c == '&' || c == '|' || c == '(' || c == ')')
                {
                    _pos++;
                    commandStart = true;
                    continue;
                }
                if (c == '\\' && Peek(1) == '\n')
                {
                    _pos += 2;
                    continue;
                }

                var wordStart = _pos;
                if (commandStart && TryReadAssignmentName(out var assigned))
                {
                    var valueStart = _pos;
                    var (atoms, segments) = ReadWord(valueStart);
                    if (assigned == name)
                    {
                        found.Add(new ShellAssignment(assigned, lineStart, wordStart, valueStart, _pos, atoms, segments));
                    }
                    // Further assignments may follow on the same command (A=1 B=2 cmd).
                    continue;
                }

                _pos = wordStart;
                ReadWord(wordStart);
                var word = _text.Substring(wordStart, _pos - wordStart);
                commandStart = Keywords.Contains(word);
            }
            return found;
        }

        private char Peek(int offset) => _pos + offset < _text.Length ? _text[_pos + offset] : '\0';

        private void SkipComment()
        {
            while (_pos < _text.Length && _text[_pos] != '\n') _pos++;
        }

        private bool TryReadAssignmentName(out string name)
        {
            name = string.Empty;
            var start = _pos;
            if (!IsNameStart(_text[_pos])) return false;
            var p = _pos + 1;
            while (p < _text.Length && IsNameChar(_text[p])) p++;
            if (p >= _text.Length || _text[p] != '=') return false;
            name = _text.Substring(start, p - start);
            _pos = p + 1;
            return true;
        }

        private static bool IsNameStart(char c) => c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        private static bool IsNameChar(char c) => IsNameStart(c) || (c >= '0' && c <= '9');

        private static bool EndsWord(char c) =>
            c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>';

        /// <summary>Reads one shell word from the current position, splitting it into atoms and segments.</summary>
        private (List<Atom>, List<Segment>) ReadWord(int start)
        {
            var atoms = new List<Atom>();
            var segments = new List<Segment>();
            Segment? unquoted = null;

            Segment OpenUnquoted()
            {
                if (unquoted == null)
                {
                    unquoted = new Segment(segments.Count, '\0', _pos);
                    segments.Add(unquoted);
                }
                return unquoted;
            }

            void CloseUnquoted()
            {
                if (unquoted != null)
                {
                    unquoted.End = _pos;
                    unquoted = null;
                }
            }

            while (_pos < _text.Length)
            {
                var c = _text[_pos];
                if (EndsWord(c)) break;
                if (c == '\'')
                {
                    CloseUnquoted();
                    ReadQuoted('\'', atoms, segments);
                    continue;
                }
                if (c == '"')
                {
                    CloseUnquoted();
                    ReadQuoted('"', atoms, segments);
                    continue;
                }

                var seg = OpenUnquoted();
                if (c == '\\')
                {
                    if (_pos + 1 >= _text.Length)
                    {
                        atoms.Add(new Atom(_pos, _pos + 1, AtomKind.Literal, "\\", seg.Index));
                        _pos++;
                    }
                    else if (_text[_pos + 1] == '\n')
                    {
                        atoms.Add(new Atom(_pos, _pos + 2, AtomKind.Continuation, string.Empty, seg.Index));
                        _pos += 2;
                    }
                    else
                    {
                        atoms.Add(new Atom(_pos, _pos + 2, AtomKind.Escape, _text[_pos + 1].ToString(), seg.Index));
                        _pos += 2;
                    }
                    continue;
                }
                if (c == '$' || c == '`')
                {
                    var s = _pos;
                    if (TrySkipExpansion())
                    {
                        atoms.Add(new Atom(s, _pos, AtomKind.Opaque, _text.Substring(s, _pos - s), seg.Index));
                        continue;
                    }
                }
                atoms.Add(new Atom(_pos, _pos + 1, AtomKind.Literal, c.ToString(), seg.Index));
                _pos++;
            }
            CloseUnquoted();
            return (atoms, segments);
        }

        /// <summary>
        /// Reads a quoted segment from its opening quote to its closing one. Between single quotes every character is
        /// itself; between double quotes a backslash escapes <c>$ ` " \</c> and a line break, and expansions stay whole.
        /// </summary>
        private void ReadQuoted(char quote, List<Atom> atoms, List<Segment> segments)
        {
            var seg = new Segment(segments.Count, quote, _pos);
            segments.Add(seg);
            atoms.Add(new Atom(_pos, _pos + 1, AtomKind.Quote, string.Empty, seg.Index));
            _pos++;
            while (true)
            {
                if (_pos >= _text.Length) throw Unterminated(seg.Start, quote.ToString());
                var c = _text[_pos];
                if (c == quote)
                {
                    atoms.Add(new Atom(_pos, _pos + 1, AtomKind.Quote, string.Empty, seg.Index));
                    _pos++;
                    seg.End = _pos;
                    return;
                }
                if (quote == '"' && ReadDoubleQuotedSpecial(c, atoms, seg)) continue;
                atoms.Add(new Atom(_pos, _pos + 1, IsBlank(c) ? AtomKind.Space : AtomKind.Literal, c.ToString(), seg.Index));
                _pos++;
            }
        }

        /// <summary>Reads an escape, a line continuation or an expansion inside double quotes; false for a plain character.</summary>
        private bool ReadDoubleQuotedSpecial(char c, List<Atom> atoms, Segment seg)
        {
            if (c == '\\' && _pos + 1 < _text.Length)
            {
                var n = _text[_pos + 1];
                if (n == '\n')
                {
                    atoms.Add(new Atom(_pos, _pos + 2, AtomKind.Continuation, string.Empty, seg.Index));
                    _pos += 2;
                    return true;
                }
                if (n == '$' || n == '`' || n == '"' || n == '\\')
                {
                    atoms.Add(new Atom(_pos, _pos + 2, AtomKind.Escape, n.ToString(), seg.Index));
                    _pos += 2;
                    return true;
                }
            }
            if (c == '$' || c == '`')
            {
                var s = _pos;
                if (TrySkipExpansion())
                {
                    atoms.Add(new Atom(s, _pos, AtomKind.Opaque, _text.Substring(s, _pos - s), seg.Index));
                    return true;
                }
            }
            return false;
        }

        private static bool IsBlank(char c) => c == ' ' || c == '\t' || c == '\n' || c == '\r';

        /// <summary>Skips an expansion at the current position; false when the <c>$</c> is a plain character.</summary>
        private bool TrySkipExpansion()
        {
            var start = _pos;
            if (_text[_pos] == '`')
            {
                _pos++;
                SkipBackquoted(start);
                return true;
            }
            var n = Peek(1);
            if (n == '(')
            {
                _pos += 2;
                SkipParenthesized(start);
                return true;
            }
            if (n == '{')
            {
                _pos += 2;
                SkipBraced(start);
                return true;
            }
            if (IsNameStart(n))
            {
                _pos += 2;
                while (_pos < _text.Length && IsNameChar(_text[_pos])) _pos++;
                return true;
            }
            if ((n >= '0' && n <= '9') || "@*#?-$!".IndexOf(n) >= 0 && n != '\0')
            {
                _pos += 2;
                return true;
            }
            return false;
        }

        /// <summary>After <c>$(</c> (or <c>$((</c>): up to the matching <c>)</c>, minding quotes, comments and nested expansions.</summary>
        private void SkipParenthesized(int start) => SkipNested(start, '(', ')', commentsAllowed: true);

        /// <summary>After <c>${</c>: up to the matching <c>}</c>.</summary>
        private void SkipBraced(int start) => SkipNested(start, '{', '}', commentsAllowed: false);

        /// <summary>Up to the <paramref name="close"/> that matches an opening already consumed, minding quotes and nested expansions.</summary>
        private void SkipNested(int start, char open, char close, bool commentsAllowed)
        {
            var depth = 0;
            while (true)
            {
                if (_pos >= _text.Length) throw Unterminated(start, close.ToString());
                var c = _text[_pos];
                switch (c)
                {
                    case '\\':
                        _pos += 2;
                        continue;
                    case '\'':
                        SkipSingleQuotedRaw(_pos);
                        continue;
                    case '"':
                        SkipDoubleQuotedRaw(_pos);
                        continue;
                    case '`':
                        _pos++;
                        SkipBackquoted(_pos - 1);
                        continue;
                    case '$':
                        if (TrySkipExpansion()) continue;
                        _pos++;
                        continue;
                    case '#' when commentsAllowed:
                        // A comment starts only at the beginning of a word.
                        if (_pos > 0 && (IsBlank(_text[_pos - 1]) || _text[_pos - 1] == ';' || _text[_pos - 1] == '('))
                        {
                            SkipComment();
                            continue;
                        }
                        _pos++;
                        continue;
                }
                _pos++;
                if (c == open)
                {
                    depth++;
                }
                else if (c == close)
                {
                    if (depth == 0) return;
                    depth--;
                }
            }
        }

        private void SkipBackquoted(int start)
        {
            while (true)
            {
                if (_pos >= _text.Length) throw Unterminated(start, "`");
                var c = _text[_pos];
                if (c == '\\')
                {
                    _pos += 2;
                    continue;
                }
                _pos++;
                if (c == '`') return;
            }
        }

        private void SkipSingleQuotedRaw(int start)
        {
            _pos++;
            while (true)
            {
                if (_pos >= _text.Length) throw Unterminated(start, "'");
                if (_text[_pos++] == '\'') return;
            }
        }

        private void SkipDoubleQuotedRaw(int start)
        {
            _pos++;
            while (true)
            {
                if (_pos >= _text.Length) throw Unterminated(start, "\"");
                var c = _text[_pos];
                if (c == '\\')
                {
                    _pos += 2;
                    continue;
                }
                if (c == '"')
                {
                    _pos++;
                    return;
                }
                if ((c == '$' || c == '`') && TrySkipExpansion()) continue;
                _pos++;
            }
        }

        private GpuVirtException Unterminated(int start, string closer)
        {
            var line = 1;
            for (var i = 0; i < start && i < _text.Length; i++) if (_text[i] == '\n') line++;
            return new GpuVirtException(ErrorIds.BootFileMalformed, ErrorKind.InvalidData,
                $"Line {line}: a quote or expansion that starts here is never closed (expected {closer}). The shell would reject this file too; fix it before changing it.",
                line);
        }
    }
}
