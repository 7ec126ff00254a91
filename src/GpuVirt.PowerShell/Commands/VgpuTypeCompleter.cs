using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the vGPU types of the typed <c>-Parent</c> (or of every parent): ids and names, quoted when needed.</summary>
    public sealed class VgpuTypeCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var parent = fakeBoundParameters?["Parent"] as string;
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
            {
                var vgpu = new VgpuInventory(host);
                var types = parent != null ? vgpu.Types(parent) ?? Array.Empty<VgpuType>() : vgpu.AllTypes();
                var results = new List<CompletionResult>();
                var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                foreach (var t in types)
                {
                    var tip = $"{t.Id} {t.Name} on {t.Parent}: {t.AvailableInstances} available";
                    foreach (var text in new[] { t.Name, t.Id })
                    {
                        if (text is null || !text.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !seen.Add(text)) continue;
                        results.Add(new CompletionResult(CompletionHost.Quote(text), text, CompletionResultType.ParameterValue, tip));
                    }
                }
                return results;
            });
        }
    }
}
