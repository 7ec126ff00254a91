using System;
using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>Completes the vGPU types of the typed <c>-Parent</c> (or of every parent): ids and names, quoted when needed.</summary>
    internal sealed class VgpuTypeCompleter : GpuVirtCompleter
    {
        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request)
        {
            var vgpu = new VgpuInventory(request.Host!);
            var parent = request.Text("Parent");
            var types = parent != null ? vgpu.Types(parent) ?? Array.Empty<VgpuType>() : vgpu.AllTypes();
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var t in types)
            {
                var tip = $"{t.Id} {t.Name} on {t.Parent}: {t.AvailableInstances} available";
                foreach (var text in new[] { t.Name, t.Id })
                {
                    if (text is null || !request.Matches(text) || !seen.Add(text)) continue;
                    yield return Quoted(text, tip);
                }
            }
        }
    }
}
