using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// Refuses a sysfs write that the kernel would block on because a process holds the device (6.1's vfio waits for
    /// the holder instead of answering EBUSY): <see cref="ErrorIds.DeviceInUse"/> for a PCI function,
    /// <see cref="ErrorIds.VgpuDeviceBusy"/> for a vGPU, naming pid, command and guest.
    /// </summary>
    internal static class DeviceHolderCheck
    {
        /// <param name="hostDriverNodes">Also count the host driver's users (DRM and NVIDIA nodes): true when unbinding a host driver.</param>
        public static CheckFindings CheckPci(HostRoot root, PciAddress address, bool hostDriverNodes, string change)
        {
            var findings = new CheckFindings();
            var holders = DeviceHolders.OfPci(root, address, hostDriverNodes);
            if (holders.Count > 0)
            {
                findings.Refuse(new GpuVirtException(ErrorIds.DeviceInUse, ErrorKind.ResourceBusy,
                    $"{address} is in use: {DeviceHolder.Describe(holders)}. {change} would wait in the kernel until it is released." +
                    $"{CheckFindings.NothingChanged} {Advice(holders)}", address.ToString()));
            }
            return findings;
        }

        /// <summary>Holders of a vGPU: a mediated device by UUID, or an SR-IOV vGPU's virtual function.</summary>
        public static CheckFindings CheckVgpu(HostRoot root, VgpuDevice device, string change)
        {
            var findings = new CheckFindings();
            var holders = device.Uuid != null
                ? DeviceHolders.OfMdev(root, device.Uuid)
                : DeviceHolders.OfPci(root, device.PciAddress!.Value, hostDriverNodes: false);
            if (holders.Count > 0)
            {
                var what = device.Uuid != null ? "mediated device " + device.Uuid : "vGPU on virtual function " + device.Address;
                findings.Refuse(new GpuVirtException(ErrorIds.VgpuDeviceBusy, ErrorKind.ResourceBusy,
                    $"The {what} is in use: {DeviceHolder.Describe(holders)}. {change} would wait in the kernel until it is released." +
                    $"{CheckFindings.NothingChanged} {Advice(holders)}", device.ToString()));
            }
            return findings;
        }

        internal static string Advice(IReadOnlyList<DeviceHolder> holders)
        {
            var guests = holders.Where(h => h.Guest != null).Select(h => h.Guest!).Distinct(StringComparer.Ordinal).ToList();
            var others = holders.Where(h => h.Guest is null).Select(h => h.Pid).Distinct().ToList();
            var parts = new List<string>();
            if (guests.Count > 0) parts.Add($"shut down guest '{string.Join("', '", guests)}' (virsh shutdown)");
            if (others.Count > 0) parts.Add($"stop process {string.Join(", ", others.Select(p => p.ToString(CultureInfo.InvariantCulture)))}");
            return "First " + string.Join(", and ", parts) + ", then try again.";
        }
    }
}
