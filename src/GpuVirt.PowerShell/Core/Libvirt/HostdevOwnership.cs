using System;
using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// Which guest holds which host device: every guest's persistent definition, and the running definition of the
    /// guests that run (a device attached with <c>--live</c> only is there), read in one virsh process. Enforces the
    /// procedure's rules "each GPU is owned by one guest" and "each vGPU UUID is assigned to one guest at a time".
    /// </summary>
    internal sealed class HostdevOwnership
    {
        private readonly Dictionary<HostdevSource, List<Hostdev>> _bySource;

        private HostdevOwnership(IReadOnlyList<Guest> guests, IReadOnlyList<Hostdev> hostdevs)
        {
            Guests = guests;
            Domains = guests.Select(g => g.Name).ToList();
            ActiveDomains = guests.Where(g => g.Active).Select(g => g.Name).ToList();
            Hostdevs = hostdevs;
            _bySource = hostdevs.GroupBy(h => h.SourceDevice).ToDictionary(g => g.Key, g => g.ToList());
        }

        /// <summary>Every guest, with its UUID.</summary>
        public IReadOnlyList<Guest> Guests { get; }

        /// <summary>Every guest's name, exactly as defined.</summary>
        public IReadOnlyList<string> Domains { get; }

        /// <summary>The running guests.</summary>
        public IReadOnlyList<string> ActiveDomains { get; }

        /// <summary>Every PCI and mdev hostdev of every guest, once per guest and source.</summary>
        public IReadOnlyList<Hostdev> Hostdevs { get; }

        /// <summary>
        /// Reads every guest's hostdevs: two virsh processes (the guest list, then all definitions, each read by its
        /// guest's UUID, so that a name with spaces or a name that looks like another guest's UUID reads its own).
        /// </summary>
        public static HostdevOwnership Read(Virsh virsh)
        {
            var guests = virsh.ListGuests();
            var requests = guests.Select(g => (g.Key, true)).Concat(guests.Where(g => g.Active).Select(g => (g.Key, false))).ToList();
            var definitions = requests.Count == 0 ? Array.Empty<DomainDefinition>() : virsh.ReadDefinitions(requests);
            var seen = new HashSet<(string, HostdevSource)>();
            var hostdevs = new List<Hostdev>();
            foreach (var definition in definitions)
            {
                foreach (var hostdev in definition.Hostdevs)
                {
                    if (seen.Add((hostdev.Domain, hostdev.SourceDevice))) hostdevs.Add(hostdev);
                }
            }
            return new HostdevOwnership(guests, hostdevs) { Definitions = definitions };
        }

        /// <summary>The definitions read: each guest's persistent one, then the running ones.</summary>
        public IReadOnlyList<DomainDefinition> Definitions { get; private set; } = Array.Empty<DomainDefinition>();

        /// <summary>A guest's definitions as read, persistent first (empty when none was read).</summary>
        public IReadOnlyList<DomainDefinition> DefinitionsOf(string domain) =>
            Definitions.Where(d => string.Equals(d.Name, domain, StringComparison.Ordinal)).ToList();

        public bool HasDomain(string name) => Domains.Contains(name, StringComparer.Ordinal);

        /// <summary>The guests whose definitions hold the device, except <paramref name="except"/>.</summary>
        public IReadOnlyList<string> OwnersOf(HostdevSource source, string? except = null) =>
            _bySource.TryGetValue(source, out var list)
                ? list.Select(h => h.Domain).Where(d => !string.Equals(d, except, StringComparison.Ordinal)).Distinct(StringComparer.Ordinal).ToList()
                : (IReadOnlyList<string>)Array.Empty<string>();

        public IReadOnlyList<string> OwnersOf(PciAddress address, string? except = null) => OwnersOf(HostdevSource.Pci(address), except);

        public IReadOnlyList<string> OwnersOf(Guid mdevUuid, string? except = null) => OwnersOf(HostdevSource.Mdev(mdevUuid), except);

        /// <summary>
        /// A <see cref="ErrorIds.HostdevInUse"/> refusal when another guest holds the device (-Force lifts it, with a
        /// warning that says the same); null when the device is free.
        /// </summary>
        public PlanRefusal? InUse(HostdevSource source, string domain)
        {
            var owners = OwnersOf(source, domain);
            if (owners.Count == 0) return null;
            var what = source.Kind == HostdevKind.Pci ? "PCI device " + source : "mediated device " + source;
            var rule = source.Kind == HostdevKind.Pci
                ? "each GPU is owned by one guest"
                : "each vGPU UUID is assigned to one guest at a time";
            var fact = $"The {what} is already assigned to guest '{string.Join("', '", owners)}' ({rule}).";
            return new PlanRefusal(
                new GpuVirtException(ErrorIds.HostdevInUse, ErrorKind.ResourceBusy,
                    fact + $" Remove it there first (Get-GpuHostdev '{owners[0]}' | Remove-GpuHostdev), or use -Force.", source.ToString()),
                fact + " -Force attaches it anyway.");
        }
    }
}
