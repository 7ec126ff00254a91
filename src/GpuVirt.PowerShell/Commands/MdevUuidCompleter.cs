using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the UUIDs of the host's mediated devices, live or defined.</summary>
    public sealed class MdevUuidCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
                new VgpuInventory(host).Devices()
                    .Where(d => d.Uuid != null && d.Uuid.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    .GroupBy(d => d.Uuid!, StringComparer.OrdinalIgnoreCase)
                    .Select(g => g.First())
                    .Select(d => new CompletionResult(d.Uuid!, d.Uuid!, CompletionResultType.ParameterValue,
                        $"{d.Uuid} {d.TypeId} {d.TypeName} on {d.Parent}")));
        }
    }
}
