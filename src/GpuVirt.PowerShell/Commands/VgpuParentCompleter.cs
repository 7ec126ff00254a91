using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>Completes mdev and SR-IOV vGPU parents of the host of the typed <c>-Root</c>.</summary>
    internal sealed class VgpuParentCompleter : GpuVirtCompleter
    {
        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request)
        {
            var vgpu = new VgpuInventory(request.Host!);
            return vgpu.MdevParents().Concat(vgpu.SriovParents().Select(p => p.Address.ToString()))
                .Distinct()
                .Where(request.MatchesAddress)
                .Select(p => Value(p, p));
        }
    }
}
