using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using System.Threading.Tasks;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// What every completer shares: the host it completes for (the command's <c>-Root</c> when typed, else <c>/</c>),
    /// PowerShell quoting, and the bound on its time: a completion that has not answered in <see cref="Budget"/> offers
    /// nothing rather than hold the prompt.
    /// </summary>
    internal static class CompletionHost
    {
        /// <summary>The longest a completion may take (sysfs reads and virsh alike).</summary>
        public static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

        /// <summary>The host of the typed <c>-Root</c> (relative to the current location, <c>~</c> expanded), null when it does not exist.</summary>
        public static HostRoot? Root(IDictionary? fakeBoundParameters)
        {
            var given = fakeBoundParameters?["Root"] is { } value ? LanguagePrimitives.ConvertTo<string>(value) : "/";
            if (string.IsNullOrEmpty(given)) given = "/";
            try
            {
                var path = given;
                if (Runspace.DefaultRunspace != null)
                {
                    // The completion runs on the session's pipeline thread: a nested command there sees its location.
                    using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
                    ps.AddScript("$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($args[0])").AddArgument(given);
                    try
                    {
                        var resolved = ps.Invoke();
                        if (resolved.Count == 1 && resolved[0]?.BaseObject is string full) path = full;
                    }
                    catch (Exception e) when (e is RuntimeException || e is PSInvalidOperationException)
                    {
                        path = given;
                    }
                }
                var host = new HostRoot(path);
                return Directory.Exists(host.Directory) ? host : null;
            }
            catch (ArgumentException)
            {
                return null;
            }
        }

        /// <summary>
        /// Runs <paramref name="complete"/> for at most <see cref="Budget"/>; its results, or none when it is slower or fails.
        /// </summary>
        public static IEnumerable<CompletionResult> Bounded(Func<IEnumerable<CompletionResult>> complete)
        {
            var task = Task.Run(() => complete().ToList());
            try
            {
                return task.Wait(Budget) ? task.Result : Enumerable.Empty<CompletionResult>();
            }
            catch (AggregateException)
            {
                return Enumerable.Empty<CompletionResult>();
            }
        }

        /// <summary>A text as a PowerShell argument: bare when plain, else single-quoted with every kind of single quote doubled.</summary>
        public static string Quote(string text)
        {
            if (text.Length > 0 && text.All(c => char.IsLetterOrDigit(c) || c == '-' || c == '_' || c == '.') && !char.IsDigit(text[0]) && text[0] != '-')
                return text;
            var sb = new System.Text.StringBuilder("'");
            foreach (var c in text)
            {
                sb.Append(c);
                if (c == '\'' || c == '\u2018' || c == '\u2019' || c == '\u201a' || c == '\u201b') sb.Append(c);
            }
            return sb.Append('\'').ToString();
        }

        public static string Prefix(string? word) => (word ?? string.Empty).Trim('\'', '"');

        /// <summary>Whether a PCI address matches what was typed, in full (<c>0000:01</c>) or without the domain (<c>01:00</c>).</summary>
        public static bool MatchesAddress(string address, string prefix) =>
            address.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            || (address.StartsWith("0000:", StringComparison.Ordinal) && address.Substring(5).StartsWith(prefix, StringComparison.OrdinalIgnoreCase));

        public static CompletionResult Value(string text, string tip) =>
            new CompletionResult(text, text, CompletionResultType.ParameterValue, tip);
    }
}
