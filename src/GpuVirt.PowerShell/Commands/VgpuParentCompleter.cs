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
}
