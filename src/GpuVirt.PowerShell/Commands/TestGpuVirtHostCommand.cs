using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.HostReadiness;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Checks that a host is ready for GPU passthrough, one object per check (Pass, Warn or Fail) with what was seen and
    /// the fix; with -Quiet, one boolean: true when nothing fails.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "GpuVirtHost")]
    [OutputType(typeof(GpuVirtHostCheck))]
    [OutputType(typeof(bool))]
    public sealed class TestGpuVirtHostCommand : HostVirshCmdlet
    {
        /// <summary>Write only True when no check fails (warnings allowed), else False.</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        private protected override bool DisplayAsGpu => true;

        protected override void EndProcessing() => ForEachHost(() =>
        {
            // The guests are the host's when a connection is given, or on the live host: an image's devices are not the live guests'.
            var reachable = GuestReferences.Reachable(new ChangeHost(HostSystem, ConnectGiven));
            var checks = GpuVirtHostChecks.Run(Inventory, Virsh, Runner, StopToken, reachable ? () => ReadGuests() : (System.Func<HostdevOwnership?>?)null);
            if (Quiet)
            {
                WriteObject(checks.All(c => c.Status != HostCheckStatus.Fail));
                return;
            }
            WriteObject(checks, enumerateCollection: true);
        });

        private HostdevOwnership? ReadGuests()
        {
            try
            {
                return HostdevOwnership.Read(Virsh);
            }
            catch (GpuVirtException e)
            {
                WriteWarning("The guests' definitions cannot be read (" + e.Message + "): no IOMMU group is checked for a split between guests.");
                return null;
            }
        }
    }
}
