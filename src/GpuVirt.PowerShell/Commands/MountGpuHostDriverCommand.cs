using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Gives PCI functions taken for passthrough back to their host drivers (the reverse of Dismount-GpuHostDriver).</summary>
    [Cmdlet(VerbsData.Mount, "GpuHostDriver", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(PciDevice))]
    public sealed class MountGpuHostDriverCommand : HostDriverCmdlet
    {
        protected override void ProcessRecord() => Carry(address => Planner.PlanReattach(address, Method));
    }
}
