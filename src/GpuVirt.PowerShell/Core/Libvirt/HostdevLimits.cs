using System;
using System.Collections.Generic;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>
    /// The procedure's limits on what one guest is given: at most 32 assigned PCI devices, and a 64-bit MMIO space
    /// that holds their BARs (else the GPUs do not work in the guest).
    /// </summary>
    public static class HostdevLimits
    {
        /// <summary>The seed's limit of assigned PCI devices per guest (RHEL 7: 32).</summary>
        public const int MaxAssignedDevices = 32;

        /// <summary>PCI hostdevs, and mediated devices the guest sees as PCI devices (model vfio-pci), each counted once.</summary>
        public static IReadOnlyList<HostdevSource> AssignedPciDevices(IEnumerable<Hostdev> hostdevs) =>
            hostdevs.Where(h => h.Kind == HostdevKind.Pci || (h.Model ?? "vfio-pci") == "vfio-pci")
                .Select(h => h.Source)
                .Distinct()
                .ToList();

        /// <summary>The <see cref="ErrorIds.HostdevLimitExceeded"/> error for one device that would be past the limit.</summary>
        public static GpuVirtException LimitExceeded(string domain, HostdevSource source, int assigned) =>
            new GpuVirtException(ErrorIds.HostdevLimitExceeded, ErrorKind.InvalidOperation,
                $"Guest '{domain}' already has {assigned} assigned PCI devices; {source} would be past the limit of {MaxAssignedDevices} " +
                "per guest. Remove one first (Remove-GpuHostdev), or use -Force.", source.ToString());

        /// <summary>
        /// A warning when the guest's 64-bit MMIO space, as its definition gives it, will not hold the BARs of its PCI
        /// hostdevs with <paramref name="adding"/> attached; null when it fits (or nothing being added has a 64-bit BAR).
        /// </summary>
        public static string? MmioWarning(DomainDefinition definition, IReadOnlyCollection<PciAddress> adding, PciInventory inventory)
        {
            if (adding.Count == 0) return null;
            var space = GuestMmio.Evaluate(definition.Xml, inventory, adding);
            if (space.Fits || !space.Windows.Any(w => adding.Contains(w.Device))) return null;
            return $"Guest '{definition.Name}' will not give its hostdevs the 64-bit MMIO space they need: " + string.Join("; ", space.Missing) +
                $". Run Set-GuestMmioSpace -Domain '{definition.Name}' to size it, or the GPUs may not work in the guest.";
        }
    }
}
