using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Takes PCI functions away from their host drivers for passthrough (procedure 16.15: every endpoint of the GPU's
    /// IOMMU group, such as its HDMI audio function), binding them to vfio-pci or pci-stub.
    /// </summary>
    [Cmdlet(VerbsData.Dismount, "GpuHostDriver", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(PciDevice))]
    public sealed class DismountGpuHostDriverCommand : HostDriverCmdlet
    {
        /// <summary>The driver to bind: vfio-pci (the default), pci-stub, or another loaded PCI driver (through sysfs).</summary>
        [Parameter]
        [ArgumentCompleter(typeof(PassthroughDriverCompleter))]
        [ValidateNotNullOrEmpty]
        public string Driver { get; set; } = HostDriverBinding.VfioPci;

        protected override void BeginProcessing()
        {
            try
            {
                HostDriverBinding.CheckDriverName(Driver);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        protected override void ProcessRecord() => Carry(address => Planner.PlanDetach(address, Driver, Method));
    }
}
