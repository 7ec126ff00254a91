using System.Linq;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>
    /// THE quoting of one word the POSIX shell way, which virsh's command-string parser shares: plain words stay as they
    /// are; anything else goes inside single quotes, where every character is literal (<c>;</c>, <c>"</c>, <c>\</c>,
    /// <c>#</c>, <c>$</c>, newlines), and an embedded single quote becomes <c>'\''</c>. Used for the command lines
    /// -Verbose and -WhatIf show and for the virsh command strings the module runs.
    /// </summary>
    internal static class ShellQuote
    {
        public static string Word(string word)
        {
            if (word.Length > 0 && word.All(IsPlain)) return word;
            var sb = new StringBuilder(word.Length + 2);
            sb.Append('\'');
            foreach (var c in word)
            {
                if (c == '\'') sb.Append("'\\''");
                else sb.Append(c);
            }
            sb.Append('\'');
            return sb.ToString();
        }

        private static bool IsPlain(char c) =>
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "-_./:=,@%+".IndexOf(c) >= 0;
    }
}
