using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>Completes the UUIDs of the host's mediated devices, live or defined.</summary>
    internal sealed class MdevUuidCompleter : GpuVirtCompleter
    {
        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request) =>
            new VgpuInventory(request.Host!).Devices()
                .Where(d => d.Uuid != null && request.Matches(d.Uuid))
                .GroupBy(d => d.Uuid!, StringComparer.OrdinalIgnoreCase)
                .Select(g => g.First())
                .Select(d => Value(d.Uuid!, $"{d.Uuid} {d.TypeId} {d.TypeName} on {d.Parent}"));
    }
}
