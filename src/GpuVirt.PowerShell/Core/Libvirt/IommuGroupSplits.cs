using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GpuVirt.Core.HostReadiness;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>An IOMMU group whose functions the definitions of more than one guest hold.</summary>
    internal sealed class IommuGroupSplit
    {
        public IommuGroupSplit(int group, IReadOnlyList<(PciAddress Address, string Domain)> holders)
        {
            Group = group;
            Holders = holders;
        }

        public int Group { get; }

        /// <summary>Each function of the group a guest holds, with that guest (one line per guest and function).</summary>
        public IReadOnlyList<(PciAddress Address, string Domain)> Holders { get; }

        public IReadOnlyList<string> Domains => Holders.Select(h => h.Domain).Distinct(System.StringComparer.Ordinal).ToList();

        public string Describe() => string.Join(", ", Holders.Select(h => $"{h.Address} in guest '{h.Domain}'"));
    }

    /// <summary>
    /// The rule that an IOMMU group goes to one guest: VFIO hands a whole group to one process, so a group whose
    /// functions two guests hold lets neither of them start (the second finds the group busy, or not viable while the
    /// first keeps its part). Add-GpuHostdev refuses such an attach (<see cref="ErrorIds.IommuGroupSplit"/>) and reads
    /// the rule again under the lock; Test-GpuVirtHost lists the groups that are split already.
    /// </summary>
    internal static class IommuGroupSplits
    {
        /// <summary>
        /// The refusal of giving <paramref name="source"/> to <paramref name="domain"/> while another guest holds a
        /// function of its IOMMU group (-Force lifts it, with a warning that says the same); null when the group is
        /// free of other guests, for an mdev, or for a function in no group.
        /// </summary>
        public static PlanRefusal? Refusal(HostdevOwnership ownership, PciInventory inventory, HostdevSource source, string domain)
        {
            if (source.Kind != HostdevKind.Pci) return null;
            var address = source.Address!.Value;
            if (!(inventory.Find(address)?.IommuGroup is int group)) return null;
            var others = Members(inventory, group)
                .Where(m => m != address)
                .SelectMany(m => ownership.OwnersOf(m, domain).Select(d => (Address: m, Domain: d)))
                .ToList();
            if (others.Count == 0) return null;
            var guests = others.Select(o => o.Domain).Distinct(System.StringComparer.Ordinal).ToList();
            var held = string.Join(", ", others.Select(o => $"{o.Address} in guest '{o.Domain}'"));
            var fact = $"{address} is in IOMMU group {group.ToString(CultureInfo.InvariantCulture)}, and the group is assigned to guest '{string.Join("', '", guests)}' already ({held}). " +
                $"A VFIO group can be given to one guest only: split between guest '{domain}' and guest '{guests[0]}', neither of them can start.";
            return new PlanRefusal(
                new GpuVirtException(ErrorIds.IommuGroupSplit, ErrorKind.ResourceBusy,
                    fact + $" Give {address} to guest '{guests[0]}' instead, or remove the group's functions there first (Get-GpuHostdev '{guests[0]}' | Remove-GpuHostdev), or use -Force. Nothing was attached.",
                    address.ToString()),
                fact + " -Force attaches it anyway.");
        }

        /// <summary>Every IOMMU group whose functions the guests of <paramref name="ownership"/> hold in more than one guest.</summary>
        public static IReadOnlyList<IommuGroupSplit> Find(HostdevOwnership ownership, PciInventory inventory)
        {
            var byGroup = new SortedDictionary<int, List<(PciAddress Address, string Domain)>>();
            foreach (var hostdev in ownership.Hostdevs.Where(h => h.Kind == HostdevKind.Pci))
            {
                var address = hostdev.PciAddress!.Value;
                if (!(inventory.Find(address)?.IommuGroup is int group)) continue;
                if (!byGroup.TryGetValue(group, out var list)) byGroup[group] = list = new List<(PciAddress, string)>();
                if (!list.Contains((address, hostdev.Domain))) list.Add((address, hostdev.Domain));
            }
            return byGroup
                .Where(g => g.Value.Select(h => h.Domain).Distinct(System.StringComparer.Ordinal).Count() > 1)
                .Select(g => new IommuGroupSplit(g.Key, g.Value.OrderBy(h => h.Address).ThenBy(h => h.Domain, System.StringComparer.Ordinal).ToList()))
                .ToList();
        }

        /// <summary>
        /// The doctor's check (Test-GpuVirtHost): one Fail per IOMMU group split between guests, naming each function and
        /// its guest, or one Pass when no group is; nothing when the guests were not read.
        /// </summary>
        public static IReadOnlyList<GpuVirtHostCheck> Checks(PciInventory inventory, HostdevOwnership? ownership)
        {
            const string name = "IOMMU group in one guest";
            if (ownership is null) return new GpuVirtHostCheck[0];
            var splits = Find(ownership, inventory);
            if (splits.Count == 0)
            {
                var held = ownership.Hostdevs.Count(h => h.Kind == HostdevKind.Pci);
                return new[] { new GpuVirtHostCheck(name, HostCheckStatus.Pass,
                    $"no IOMMU group is split between guests ({held.ToString(CultureInfo.InvariantCulture)} PCI hostdevs in {ownership.Guests.Count.ToString(CultureInfo.InvariantCulture)} guests)") };
            }
            return splits.Select(split => new GpuVirtHostCheck(name, HostCheckStatus.Fail,
                $"IOMMU group {split.Group.ToString(CultureInfo.InvariantCulture)} is split between guest '{string.Join("' and guest '", split.Domains)}': {split.Describe()}; " +
                "a VFIO group can be given to one guest only, so none of them can start",
                $"Give every function of IOMMU group {split.Group.ToString(CultureInfo.InvariantCulture)} to one guest: remove the others' hostdevs " +
                $"(Get-GpuHostdev '{split.Domains[1]}' | Remove-GpuHostdev), then Add-GpuHostdev them to guest '{split.Domains[0]}'.",
                split.Holders[0].Address)).ToList();
        }

        /// <summary>The PCI functions of a group, as sysfs lists them (every function whose <c>iommu_group</c> is the group).</summary>
        private static IEnumerable<PciAddress> Members(PciInventory inventory, int group) =>
            inventory.Devices.Where(d => d.IommuGroup == group).Select(d => d.PciAddress);
    }
}
