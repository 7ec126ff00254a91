using System;
using System.Collections.Generic;
using System.Linq;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// What a stub driver's id list (<c>pci-stub.ids=</c> or <c>vfio-pci.ids=</c>) will claim at the next boot: every
    /// function of the host with one of those <c>vendor:device</c> ids, not only the ones that were chosen — a second
    /// identical GPU, or the console GPU, goes too. The boot planner calls it; it reads the host and writes nothing.
    /// </summary>
    internal sealed class BootClaims
    {
        private BootClaims(IReadOnlyList<PciDevice> claimed, IReadOnlyList<PciDevice> beyond, CheckFindings findings)
        {
            Claimed = claimed;
            BeyondChosen = beyond;
            Findings = findings;
        }

        /// <summary>Every function the ids claim at boot, sorted by address.</summary>
        public IReadOnlyList<PciDevice> Claimed { get; }

        /// <summary>The claimed functions that were not chosen (piped or given by address).</summary>
        public IReadOnlyList<PciDevice> BeyondChosen { get; }

        /// <summary>A <see cref="ErrorIds.HostCriticalDevice"/> refusal for each claimed function the running host needs, and warnings.</summary>
        public CheckFindings Findings { get; }

        /// <param name="chosen">The functions the user meant; empty when only ids were given.</param>
        public static BootClaims Simulate(PciInventory inventory, IReadOnlyList<string> ids, string driver, IReadOnlyCollection<PciAddress> chosen)
        {
            var claimed = inventory.Devices.Where(d => ids.Contains(d.Ids, StringComparer.OrdinalIgnoreCase)).ToList();
            var beyond = chosen.Count == 0 ? new List<PciDevice>() : claimed.Where(d => !chosen.Contains(d.PciAddress)).ToList();
            var findings = HostCriticalCheck.Check(inventory, claimed.Select(d => d.PciAddress), $"{driver}.ids={string.Join(",", ids)} claims it at the next boot, which");
            // IommuBoot.CheckStubIds warns about each function claimed beyond the chosen ones.
            return new BootClaims(claimed, beyond, findings);
        }

        /// <summary>One line per claimed function, for -WhatIf and the result.</summary>
        public IReadOnlyList<string> Describe(string driver) =>
            Claimed.Select(d => $"At the next boot {driver} claims {d.Address} ({d.Ids} {d.Description})" +
                (d.IsHostCritical ? $" — the host needs it: {d.HostCritical}" : string.Empty)).ToList();
    }
}
