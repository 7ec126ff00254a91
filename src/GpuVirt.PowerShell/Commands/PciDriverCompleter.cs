using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the PCI drivers loaded on the host of the typed <c>-Root</c> (<c>/sys/bus/pci/drivers</c>).</summary>
    internal sealed class PciDriverCompleter : GpuVirtCompleter
    {
        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request) =>
            (Sysfs.TryListNames(request.Host!.Resolve(HostPaths.PciDrivers)) ?? new List<string>())
                .Where(request.Matches)
                .OrderBy(d => d, StringComparer.Ordinal)
                .Select(d => Quoted(d, "loaded PCI driver " + d));
    }
}
