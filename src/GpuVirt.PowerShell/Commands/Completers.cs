using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the GPU vendor names Get-GpuDevice understands.</summary>
    internal sealed class GpuVendorCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            return GpuVendors.ByName.Keys
                .Where(k => k.StartsWith(prefix, System.StringComparison.OrdinalIgnoreCase))
                .OrderBy(k => k)
                .Select(k => new CompletionResult(k, k, CompletionResultType.ParameterValue, k + " (" + string.Join(", ", GpuVendors.ByName[k].Select(v => v.ToString("x4"))) + ")"));
        }
    }

    /// <summary>Completes guest names from <c>virsh list --all --name</c> on the connection given with -Connect (or the default).</summary>
    internal sealed class DomainNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var connect = fakeBoundParameters != null && fakeBoundParameters.Contains("Connect") ? fakeBoundParameters["Connect"] as string : null;
            IReadOnlyList<string> names;
            try
            {
                names = new Virsh(new ProcessRunner(), connect).ListDomains();
            }
            catch (GpuVirtException)
            {
                return Enumerable.Empty<CompletionResult>();
            }
            var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            return names
                .Where(n => n.StartsWith(prefix, System.StringComparison.OrdinalIgnoreCase))
                .OrderBy(n => n, System.StringComparer.OrdinalIgnoreCase)
                .Select(n => new CompletionResult(QuoteForPowerShell(n), n, CompletionResultType.ParameterValue, n));
        }

        /// <summary>A name as a PowerShell argument: bare when plain, else single-quoted with quotes doubled.</summary>
        internal static string QuoteForPowerShell(string name)
        {
            if (name.Length > 0 && name.All(c => char.IsLetterOrDigit(c) || c == '-' || c == '_' || c == '.') && !char.IsDigit(name[0]) && name[0] != '-')
                return name;
            var sb = new System.Text.StringBuilder("'");
            foreach (var c in name)
            {
                sb.Append(c);
                if (c == '\'' || c == '\u2018' || c == '\u2019' || c == '\u201a' || c == '\u201b') sb.Append(c);
            }
            return sb.Append('\'').ToString();
        }
    }

    /// <summary>Completes the drivers Dismount-GpuHostDriver binds for passthrough.</summary>
    internal sealed class PassthroughDriverCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            return new[] { HostDriverBinding.VfioPci, HostDriverBinding.PciStub }
                .Where(d => d.StartsWith(prefix, System.StringComparison.OrdinalIgnoreCase))
                .Select(d => new CompletionResult(d, d, CompletionResultType.ParameterValue, d));
        }
    }
}
