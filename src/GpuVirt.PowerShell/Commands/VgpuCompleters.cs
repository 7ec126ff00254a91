using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes mdev and SR-IOV vGPU parents of the host of the typed <c>-Root</c>.</summary>
    public sealed class VgpuParentCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
            {
                var vgpu = new VgpuInventory(host);
                return vgpu.MdevParents().Concat(vgpu.SriovParents().Select(p => p.Address.ToString()))
                    .Distinct()
                    .Where(p => CompletionHost.MatchesAddress(p, prefix))
                    .Select(p => new CompletionResult(p, p, CompletionResultType.ParameterValue, p));
            });
        }
    }

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
