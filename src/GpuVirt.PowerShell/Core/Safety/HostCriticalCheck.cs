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
    /// Refuses a change that takes a function the running host depends on (<see cref="HostCriticalDevices"/>) from the
    /// host: binding it to vfio-pci or pci-stub, attaching it to a guest with <c>managed='yes'</c>, or claiming it at
    /// boot by id. <c>-Force</c> overrides it, with a warning naming each function.
    /// </summary>
    internal static class HostCriticalCheck
    {
        /// <param name="change">What would take the functions, as a sentence subject: <c>Binding it to vfio-pci</c>.</param>
        public static CheckFindings Check(PciInventory inventory, IEnumerable<PciAddress> functions, string change)
        {
            var findings = new CheckFindings();
            foreach (var address in functions.Distinct())
            {
                var needs = inventory.HostCritical.For(address);
                if (needs.Count == 0) continue;
                var device = inventory.Find(address);
                var what = device is null ? address.ToString() : $"{address} ({device.ClassName ?? "class " + device.ClassId}, {device.Description})";
                findings.RefuseUnlessForced(new GpuVirtException(ErrorIds.HostCriticalDevice, ErrorKind.InvalidOperation,
                    $"{what} is needed by the running host: {string.Join("; ", needs.Select(n => n.Reason))}. " +
                    $"{change} would take it from the host.{CheckFindings.NothingChanged} Use -Force only if the host can do without it.",
                    address.ToString()));
            }
            return findings;
        }
    }
}
