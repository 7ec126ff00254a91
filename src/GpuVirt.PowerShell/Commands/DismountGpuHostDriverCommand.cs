using System.IO;
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

        protected override void ProcessRecord()
        {
            foreach (var address in Addresses())
            {
                try
                {
                    Dismount(address);
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }

        private void Dismount(PciAddress address)
        {
            var binding = Binding;
            var before = binding.CurrentDriver(address);
            if (before == Driver)
            {
                WriteVerbose($"{address} is already bound to {Driver}.");
                WriteObject(Reread(address));
                return;
            }
            var method = ResolveMethod(virshCanDoIt: HostDriverBinding.VirshBackend(Driver) != null);
            string action;
            if (method == HostDriverMethod.Virsh)
            {
                var backend = HostDriverBinding.VirshBackend(Driver) ?? throw new GpuVirtException(ErrorIds.HostDriverMethodNotSupported,
                    ErrorKind.InvalidArgument, $"virsh nodedev-detach binds to vfio only; use -Method Sysfs for {Driver}.", Driver);
                action = Virsh.CommandLine(VirshCommand.NodeDeviceDetach(address.NodeDeviceName, backend));
            }
            else
            {
                var dir = Path.Combine(HostPaths.PciDevices, address.ToString());
                action = $"write '{Driver}' to {dir}/driver_override" +
                    (before is null ? string.Empty : $", '{address}' to {dir}/driver/unbind") +
                    $", '{address}' to {HostPaths.PciDriversProbe}";
            }
            var target = $"{address} (driver: {before ?? "none"})";
            if (!ShouldProcess(target, $"Detach from the host driver and bind to {Driver}: {action}")) return;
            Recorder.Check();

            if (method == HostDriverMethod.Virsh)
            {
                Virsh.NodeDeviceDetach(address, HostDriverBinding.VirshBackend(Driver));
                var now = binding.CurrentDriver(address);
                if (now != Driver)
                {
                    throw new GpuVirtException(ErrorIds.HostDriverNotBound, ErrorKind.InvalidOperation,
                        $"virsh nodedev-detach reported success, but {address} is bound to {(now is null ? "no driver" : "'" + now + "'")}, not '{Driver}'.", address);
                }
            }
            else
            {
                binding.Detach(address, Driver);
            }
            Recorder.Record(HostDriverBinding.Journaled(address, before, binding.CurrentDriver(address), method, detach: true));
            WriteObject(Reread(address));
        }
    }
}
