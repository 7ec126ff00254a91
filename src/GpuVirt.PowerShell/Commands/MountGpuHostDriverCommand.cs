using System.IO;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Gives PCI functions taken for passthrough back to their host drivers (the reverse of Dismount-GpuHostDriver).</summary>
    [Cmdlet(VerbsData.Mount, "GpuHostDriver", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(PciDevice))]
    public sealed class MountGpuHostDriverCommand : HostDriverCmdlet
    {
        protected override void ProcessRecord()
        {
            foreach (var address in Addresses())
            {
                try
                {
                    Mount(address);
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }

        private void Mount(PciAddress address)
        {
            var binding = Binding;
            var before = binding.CurrentDriver(address);
            if (!binding.IsRedirected(address))
            {
                WriteVerbose($"{address} is already bound to the host driver {before}.");
                WriteObject(Reread(address));
                return;
            }
            var method = ResolveMethod();
            string action;
            if (method == HostDriverMethod.Virsh)
            {
                action = Virsh.CommandLine(VirshCommand.NodeDeviceReattach(address.NodeDeviceName));
            }
            else
            {
                var dir = Path.Combine(HostPaths.PciDevices, address.ToString());
                action = (binding.Override(address) is null ? string.Empty : $"clear {dir}/driver_override, ") +
                    (before is null ? string.Empty : $"write '{address}' to {dir}/driver/unbind, ") +
                    $"write '{address}' to {HostPaths.PciDriversProbe}";
            }
            var target = $"{address} (driver: {before ?? "none"})";
            if (!ShouldProcess(target, $"Give back to the host driver: {action}")) return;
            Recorder.Check();

            string? after;
            if (method == HostDriverMethod.Virsh)
            {
                Virsh.NodeDeviceReattach(address);
                after = binding.CurrentDriver(address);
            }
            else
            {
                after = binding.Reattach(address).DriverAfter;
            }
            Recorder.Record(HostDriverBinding.Journaled(address, before, after, method, detach: false));
            if (after is null)
            {
                WriteWarning($"{address} is free of its passthrough driver, but no host driver took it (is the host driver loaded or blacklisted?).");
            }
            WriteObject(Reread(address));
        }
    }
}
