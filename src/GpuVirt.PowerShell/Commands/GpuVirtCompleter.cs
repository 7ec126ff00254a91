using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using System.Text;
using System.Threading.Tasks;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// What every completer of the module shares: the host it completes for (the command's <c>-Root</c> when typed, read
    /// from the session's location, else <c>/</c>), PowerShell quoting, and the bound on its time: a completion that has
    /// not answered in <see cref="Budget"/> offers nothing rather than hold the prompt.
    /// </summary>
    internal abstract class GpuVirtCompleter : IArgumentCompleter
    {
        /// <summary>The longest a completion may take (sysfs reads and virsh alike).</summary>
        public static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

        /// <summary>Whether the completion reads the host of <c>-Root</c> (and offers nothing when that does not exist).</summary>
        protected virtual bool ReadsHost => true;

        /// <summary>The completions; runs off the prompt's thread, for at most <see cref="Budget"/>.</summary>
        protected abstract IEnumerable<CompletionResult> Offer(CompletionRequest request);

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            // The root is resolved here, on the session's thread: only there does a nested command see its location.
            var host = ReadsHost ? Root(fakeBoundParameters) : null;
            if (ReadsHost && host is null) return Enumerable.Empty<CompletionResult>();
            var request = new CompletionRequest(commandName ?? string.Empty, (wordToComplete ?? string.Empty).Trim('\'', '"'), fakeBoundParameters, host);
            var task = Task.Run(() => Offer(request).ToList());
            try
            {
                return task.Wait(Budget) ? task.Result : Enumerable.Empty<CompletionResult>();
            }
            catch (AggregateException)
            {
                return Enumerable.Empty<CompletionResult>();
            }
        }

        /// <summary>A completion whose text needs no quoting (addresses, numbers, ids).</summary>
        protected static CompletionResult Value(string text, string tip) =>
            new CompletionResult(text, text, CompletionResultType.ParameterValue, tip);

        /// <summary>A completion of free text (guest names, type names), quoted for PowerShell when it needs it.</summary>
        protected static CompletionResult Quoted(string text, string tip) =>
            new CompletionResult(Quote(text), text, CompletionResultType.ParameterValue, tip);

        /// <summary>A text as a PowerShell argument: bare when plain, else single-quoted with every kind of single quote doubled.</summary>
        internal static string Quote(string text)
        {
            if (text.Length > 0 && text.All(c => char.IsLetterOrDigit(c) || c == '-' || c == '_' || c == '.') && !char.IsDigit(text[0]) && text[0] != '-')
                return text;
            var sb = new StringBuilder("'");
            foreach (var c in text)
            {
                sb.Append(c);
                if (c == '\'' || c == '\u2018' || c == '\u2019' || c == '\u201a' || c == '\u201b') sb.Append(c);
            }
            return sb.Append('\'').ToString();
        }

        private static HostRoot? Root(IDictionary? fakeBoundParameters)
        {
            var typed = CompletionRequest.Text(fakeBoundParameters, "Root");
            var given = string.IsNullOrEmpty(typed) ? "/" : typed!;
            try
            {
                var path = given;
                if (Runspace.DefaultRunspace != null)
                {
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
    }
}
