using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the GPU vendor names Get-GpuDevice understands.</summary>
    internal sealed class GpuVendorCompleter : GpuVirtCompleter
    {
        protected override bool ReadsHost => false;

        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request) =>
            GpuVendors.ByName.Keys
                .Where(request.Matches)
                .OrderBy(k => k)
                .Select(k => Value(k, k + " (" + string.Join(", ", GpuVendors.ByName[k].Select(v => v.ToString("x4"))) + ")"));
    }
}
