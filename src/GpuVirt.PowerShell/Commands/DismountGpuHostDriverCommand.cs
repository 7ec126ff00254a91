using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Takes PCI functions away from their host drivers for passthrough (procedure 16.15: every endpoint of the GPU's
    /// IOMMU group, such as its HDMI audio function), binding them to vfio-pci or pci-stub. Refuses, before writing
    /// anything, a function the running host needs (unless forced), a vGPU parent with live vGPUs, a function a
    /// process holds open, and bridges.
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

        /// <summary>Also detach the other endpoints of each function's slot or IOMMU group (the HDMI audio function), as Add-GpuHostdev -IncludeCompanion attaches them.</summary>
        [Parameter]
        public SwitchParameter IncludeCompanion { get; set; }

        /// <summary>Also keep the binding across reboots for this address only: driverctl's /etc/driverctl.d/pci-ADDRESS (through driverctl on the live host when installed), and a modprobe softdep that loads vfio-pci first.</summary>
        [Parameter]
        public SwitchParameter Persistent { get; set; }

        /// <summary>Detach a function the running host needs (a disk controller, a routed NIC, the console GPU) even so, with a warning.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

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

        protected override void ProcessRecord() =>
            Carry(address => Planner.PlanDetach(address, Driver, Method, Force, Persistent), address => Planner.Functions(address, IncludeCompanion));

        /// <summary>Once every function is done: a group with endpoints still on host drivers cannot be given to a guest.</summary>
        protected override void EndProcessing()
        {
            foreach (var host in Carried.GroupBy(c => c.Host))
            {
                On(host.Key, () =>
                {
                    try
                    {
                        foreach (var warning in Planner.GroupsLeftNotViable(host.Select(c => c.Address).ToList())) WriteWarning(warning);
                    }
                    catch (GpuVirtException e)
                    {
                        WriteError(e);
                    }
                });
            }
        }
    }
}
