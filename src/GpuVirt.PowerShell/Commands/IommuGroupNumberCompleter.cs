using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the IOMMU group numbers of the host of the typed <c>-Root</c>, with their members as the tip.</summary>
    internal sealed class IommuGroupNumberCompleter : GpuVirtCompleter
    {
        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request)
        {
            var groups = request.Host!.Resolve(HostPaths.IommuGroups);
            foreach (var n in IommuGroups.GroupNumbers(request.Host).Select(n => n.ToString(CultureInfo.InvariantCulture)))
            {
                if (!n.StartsWith(request.Prefix, StringComparison.Ordinal)) continue;
                var members = Sysfs.TryListNames(Path.Combine(groups, n, "devices")) ?? new List<string>();
                members.Sort(StringComparer.Ordinal);
                yield return Value(n, "IOMMU group " + n + ": " + string.Join(", ", members));
            }
        }
    }
}
