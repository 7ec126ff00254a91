using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Completes guest names from virsh on the connection given with -Connect (or the default). One virsh process, stopped
    /// at <see cref="GpuVirtCompleter.Budget"/> and not tried again: a libvirt that does not answer offers no names.
    /// </summary>
    internal sealed class DomainNameCompleter : GpuVirtCompleter
    {
        protected override bool ReadsHost => false;

        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request)
        {
            IReadOnlyList<string> names;
            try
            {
                var virsh = new Virsh(new ProcessRunner(), request.Text("Connect")) { Timeout = Budget, RetryStalledReads = false };
                names = virsh.ListDomains();
            }
            catch (GpuVirtException)
            {
                return Enumerable.Empty<CompletionResult>();
            }
            return names.Where(request.Matches).OrderBy(n => n, StringComparer.OrdinalIgnoreCase).Select(n => Quoted(n, n));
        }
    }
}
