using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>The procedure's limit of assigned PCI devices per guest (RHEL 7: 32).</summary>
    internal static class HostdevLimits
    {
        public const int MaxAssignedDevices = 32;

        /// <summary>Whether a hostdev counts as an assigned PCI device: a PCI hostdev, or a mediated device the guest sees as one (model vfio-pci).</summary>
        public static bool IsAssignedPciDevice(Hostdev hostdev) =>
            hostdev.Kind == HostdevKind.Pci || (hostdev.Model ?? HostDriverBinding.VfioPci) == HostDriverBinding.VfioPci;
    }

    /// <summary>
    /// Refuses to attach a guest's 33rd assigned PCI device (the seed's limit of 32: PCI hostdevs and vfio-pci mediated
    /// devices, counting those attached before it in the same command) with <see cref="ErrorIds.HostdevLimitExceeded"/>;
    /// <c>-Force</c> lifts it, with a warning.
    /// </summary>
    internal sealed class HostdevLimitCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (plan.Kind != ChangeKind.HostdevAttach || plan.Guest is null) return;
            var guest = plan.Guest;
            var assigned = new HashSet<HostdevSource>(guest.Definitions.Hostdevs.Where(HostdevLimits.IsAssignedPciDevice).Select(h => h.SourceDevice));
            // A device the guest has already is no new device (libvirt refuses it as already attached).
            if (assigned.Contains(guest.Adding)) return;
            var before = guest.AttachedBefore.Where(s => !assigned.Contains(s)).Distinct().Count();
            var count = assigned.Count + before;
            if (count < HostdevLimits.MaxAssignedDevices) return;
            var has = $"Guest '{guest.Domain}' already has {Count(assigned.Count)}" +
                (before == 0 ? string.Empty : $" and this command attaches {before.ToString(CultureInfo.InvariantCulture)} more before it");
            var past = $"{guest.Adding} would be past the limit of {HostdevLimits.MaxAssignedDevices} per guest";
            plan.Refusals.Add(new PlanRefusal(
                new GpuVirtException(ErrorIds.HostdevLimitExceeded, ErrorKind.InvalidOperation,
                    $"{has}; {past}. Remove one first (Remove-GpuHostdev), or use -Force.", guest.Adding.ToString()),
                $"{has}; {past}. -Force attaches it anyway."));
        }

        private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture) + (n == 1 ? " assigned PCI device" : " assigned PCI devices");
    }
}
