using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Reads the host a completion is for: the command's <c>-Root</c> when typed, else <c>/</c>.</summary>
    internal static class CompletionHost
    {
        public static VgpuInventory? Vgpu(IDictionary fakeBoundParameters)
        {
            var root = fakeBoundParameters?["Root"] as string ?? "/";
            try
            {
                var host = new HostRoot(root);
                return System.IO.Directory.Exists(host.Directory) ? new VgpuInventory(host) : null;
            }
            catch (ArgumentException)
            {
                return null;
            }
        }

        public static string Quote(string text) =>
            text.Any(c => char.IsWhiteSpace(c) || "'\"$`;(){}|&,#@".IndexOf(c) >= 0) ? "'" + text.Replace("'", "''") + "'" : text;

        public static string Prefix(string? word) => (word ?? string.Empty).Trim('\'', '"');
    }

    /// <summary>Completes mdev and SR-IOV vGPU parents.</summary>
    internal sealed class VgpuParentCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var vgpu = CompletionHost.Vgpu(fakeBoundParameters);
            if (vgpu is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            return vgpu.MdevParents().Concat(vgpu.SriovParents().Select(p => p.Address.ToString()))
                .Distinct()
                .Where(p => p.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || (p.StartsWith("0000:", StringComparison.Ordinal) && p.Substring(5).StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
                .Select(p => new CompletionResult(p, p, CompletionResultType.ParameterValue, p));
        }
    }

    /// <summary>Completes the vGPU types of the typed <c>-Parent</c> (or of every parent): ids and names, quoted when needed.</summary>
    internal sealed class VgpuTypeCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var vgpu = CompletionHost.Vgpu(fakeBoundParameters);
            if (vgpu is null) return Enumerable.Empty<CompletionResult>();
            var parent = fakeBoundParameters?["Parent"] as string;
            var types = parent != null ? vgpu.Types(parent) ?? Array.Empty<VgpuType>() : vgpu.AllTypes();
            var prefix = CompletionHost.Prefix(wordToComplete);
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
        }
    }
}
