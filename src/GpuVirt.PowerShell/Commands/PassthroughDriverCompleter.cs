using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the drivers Dismount-GpuHostDriver binds for passthrough.</summary>
    internal sealed class PassthroughDriverCompleter : GpuVirtCompleter
    {
        protected override bool ReadsHost => false;

        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request) =>
            new[] { HostDriverBinding.VfioPci, HostDriverBinding.PciStub }.Where(request.Matches).Select(d => Value(d, d));
    }
}
