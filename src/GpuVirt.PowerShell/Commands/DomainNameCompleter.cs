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
    /// Completes guest names from virsh on the connection given with -Connect (or the default). One virsh process, stopped
    /// at <see cref="CompletionHost.Budget"/> and not tried again: a libvirt that does not answer offers no names.
    /// </summary>
    public sealed class DomainNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var connect = fakeBoundParameters?["Connect"] is { } value ? LanguagePrimitives.ConvertTo<string>(value) : null;
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
            {
                IReadOnlyList<string> names;
                try
                {
                    var virsh = new Virsh(new ProcessRunner(), connect) { Timeout = CompletionHost.Budget, RetryStalledReads = false };
                    names = virsh.ListDomains();
                }
                catch (GpuVirtException)
                {
                    return Enumerable.Empty<CompletionResult>();
                }
                return names
                    .Where(n => n.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    .OrderBy(n => n, StringComparer.OrdinalIgnoreCase)
                    .Select(n => new CompletionResult(CompletionHost.Quote(n), n, CompletionResultType.ParameterValue, n));
            });
        }
    }
}
