using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Gives PCI functions taken for passthrough back to their host drivers (the reverse of Dismount-GpuHostDriver).</summary>
    [Cmdlet(VerbsData.Mount, "GpuHostDriver", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(PciDevice))]
    public sealed class MountGpuHostDriverCommand : HostDriverCmdlet
    {
        /// <summary>Also remove the boot-time binding Dismount-GpuHostDriver -Persistent (or driverctl set-override) recorded for the address.</summary>
        [Parameter]
        public SwitchParameter Persistent { get; set; }

        /// <summary>Gives the function back even when a guest's definition still references it, with a warning.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord() => Carry(address => Planner.PlanReattach(address, Method, Force, Persistent));
    }
}
