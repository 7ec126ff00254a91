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
    /// <summary>Completes the PCI drivers loaded on the host of the typed <c>-Root</c> (<c>/sys/bus/pci/drivers</c>).</summary>
    public sealed class PciDriverCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
                (Sysfs.TryListNames(host.Resolve(HostPaths.PciDrivers)) ?? new List<string>())
                    .Where(d => d.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    .OrderBy(d => d, StringComparer.Ordinal)
                    .Select(d => new CompletionResult(CompletionHost.Quote(d), d, CompletionResultType.ParameterValue, "loaded PCI driver " + d)));
        }
    }
}
