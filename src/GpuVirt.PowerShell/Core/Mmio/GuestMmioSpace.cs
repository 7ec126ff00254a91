using System;
using System.Collections.Generic;
using System.Linq;
using System.Xml.Linq;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Mmio
{
    /// <summary>
    /// A guest's 64-bit MMIO space next to what its PCI hostdevs need: the space their 64-bit BARs take (sizes, natural
    /// alignment, headroom) and the vCPU physical address bits that reach it, against the definition's
    /// <c>&lt;pcihole64&gt;</c> and <c>&lt;maxphysaddr&gt;</c>.
    /// </summary>
    public sealed class GuestMmioSpace : HostObject
    {
        public string Domain { get; internal set; } = string.Empty;
        public string? Machine { get; internal set; }

        /// <summary>The host PCI functions the guest is given (PCI hostdevs, and any about to be attached).</summary>
        public IReadOnlyList<string> Hostdevs => HostdevAddresses.Select(a => a.ToString()).ToList();

        internal IReadOnlyList<PciAddress> HostdevAddresses { get; set; } = Array.Empty<PciAddress>();

        /// <summary>Hostdevs whose BARs cannot be read here: mediated devices (their BARs are the vGPU driver's) and functions missing from this host.</summary>
        public IReadOnlyList<string> NotSized { get; internal set; } = Array.Empty<string>();

        /// <summary>Each function's 64-bit window, largest alignment first.</summary>
        public IReadOnlyList<MmioWindow> Windows { get; internal set; } = Array.Empty<MmioWindow>();

        /// <summary>The 64-bit BARs' sizes added up.</summary>
        public ulong BarBytes { get; internal set; }

        /// <summary>The windows packed with their alignment.</summary>
        public ulong RequiredBytes { get; internal set; }

        /// <summary>The smallest 64-bit MMIO space sure to hold the windows: required plus what aligning the first one may lose.</summary>
        public ulong MinimumBytes { get; internal set; }

        /// <summary>What Set-GuestMmioSpace gives a guest whose space is below <see cref="MinimumBytes"/>: required plus headroom.</summary>
        public ulong RecommendedBytes { get; internal set; }

        /// <summary>The definition's <c>&lt;pcihole64&gt;</c> in bytes; null when it sets none.</summary>
        public ulong? PciHole64Bytes { get; internal set; }

        /// <summary>The 64-bit MMIO space QEMU gives the guest: <see cref="PciHole64Bytes"/>, else QEMU's default for the machine.</summary>
        public ulong EffectivePciHole64Bytes { get; internal set; }

        /// <summary>The guest-physical address the 64-bit MMIO space starts at.</summary>
        public ulong Hole64Start { get; internal set; }

        /// <summary>The vCPU physical address bits that reach the end of the 64-bit MMIO space: the effective one when it fits, else the recommended one.</summary>
        public int RequiredPhysBits { get; internal set; }

        public string CpuMode { get; internal set; } = "custom";

        /// <summary>The definition's <c>&lt;maxphysaddr mode&gt;</c>: <c>passthrough</c>, <c>emulate</c>, or null.</summary>
        public string? MaxPhysAddrMode { get; internal set; }
        public int? MaxPhysAddrBits { get; internal set; }

        /// <summary>The host CPU's physical address bits (<c>/proc/cpuinfo</c>); null when unknown.</summary>
        public int? HostPhysBits { get; internal set; }

        /// <summary>The vCPU's physical address bits; null when they are the host's and those are unknown.</summary>
        public int? EffectivePhysBits { get; internal set; }

        public bool HoleFits => EffectivePciHole64Bytes >= MinimumBytes;

        public bool PhysBitsFit => EffectivePhysBits is null || EffectivePhysBits >= RequiredPhysBits;

        /// <summary>The guest's definition gives its hostdevs the 64-bit MMIO space they need and the address bits to reach it.</summary>
        public bool Fits => HoleFits && PhysBitsFit;

        /// <summary>What the definition lacks, one line each (empty when it fits).</summary>
        public IReadOnlyList<string> Missing { get; internal set; } = Array.Empty<string>();

        public override string ToString() => Domain;
    }

    /// <summary>Computes <see cref="GuestMmioSpace"/> from a guest's definition and the host's sysfs.</summary>
    internal static class GuestMmio
    {
        /// <summary>Reads a guest's persistent definition through <paramref name="virsh"/> and evaluates it on the host of <paramref name="inventory"/>.</summary>
        public static GuestMmioSpace Read(Virsh virsh, string domain, PciInventory inventory)
        {
            var name = virsh.ResolveDomain(domain);
            return Evaluate(virsh.Run(VirshCommand.DumpXml(name, inactive: true), name), inventory).Through(virsh.Uri);
        }

        /// <summary>Evaluates a definition, counting <paramref name="adding"/> as if already attached.</summary>
        public static GuestMmioSpace Evaluate(string domainXml, PciInventory inventory, IEnumerable<PciAddress>? adding = null)
        {
            var doc = DomainXml.Load(domainXml, "a domain");
            var parsed = DomainXml.Parse(domainXml);
            return Evaluate(doc, parsed, inventory, adding);
        }

        internal static GuestMmioSpace Evaluate(XDocument doc, DomainDefinition parsed, PciInventory inventory, IEnumerable<PciAddress>? adding)
        {
            var definition = GuestMmioXml.Read(doc);
            var addresses = parsed.Hostdevs.Where(h => h.Kind == HostdevKind.Pci).Select(h => h.PciAddress!.Value)
                .Concat(adding ?? Enumerable.Empty<PciAddress>())
                .Distinct()
                .OrderBy(a => a)
                .ToList();
            var notSized = parsed.Hostdevs.Where(h => h.Kind == HostdevKind.Mdev)
                .Select(h => "mdev " + h.Source + " (a vGPU's BARs are set by its driver, not in sysfs)")
                .ToList();
            var functions = new List<KeyValuePair<PciAddress, IReadOnlyList<PciBar>>>();
            foreach (var address in addresses)
            {
                var bars = inventory.Find(address) is null ? null : PciBars.TryRead(inventory, address);
                if (bars is null)
                {
                    notSized.Add(address + " (not on this host: no " + HostPaths.PciDevices + "/" + address + "/" + PciBars.ResourceFile + ")");
                    continue;
                }
                functions.Add(new KeyValuePair<PciAddress, IReadOnlyList<PciBar>>(address, bars));
            }
            var requirement = MmioRequirement.For(functions);
            var hostBits = CpuInfo.TryReadPhysicalAddressBits(inventory.Root);
            return Compose(definition, addresses, notSized, requirement, hostBits).On(inventory.Root);
        }

        internal static GuestMmioSpace Compose(GuestMmioDefinition definition, IReadOnlyList<PciAddress> addresses, IReadOnlyList<string> notSized,
            MmioRequirement requirement, int? hostBits)
        {
            var space = new GuestMmioSpace
            {
                Domain = definition.Name,
                Machine = definition.Machine,
                HostdevAddresses = addresses,
                NotSized = notSized,
                Windows = requirement.Windows,
                BarBytes = requirement.BarBytes,
                RequiredBytes = requirement.RequiredBytes,
                RecommendedBytes = requirement.RecommendedBytes,
                MinimumBytes = requirement.MinimumBytes,
                PciHole64Bytes = definition.PciHole64Bytes,
                EffectivePciHole64Bytes = definition.EffectiveHole64Bytes,
                Hole64Start = definition.Hole64Start,
                CpuMode = definition.CpuMode,
                MaxPhysAddrMode = definition.MaxPhysAddrMode,
                MaxPhysAddrBits = definition.MaxPhysAddrBits,
                HostPhysBits = hostBits,
                EffectivePhysBits = definition.EffectivePhysBits(hostBits),
            };
            space.RequiredPhysBits = MmioSize.BitsFor(space.Hole64Start + (space.HoleFits ? space.EffectivePciHole64Bytes : space.RecommendedBytes));
            var missing = new List<string>();
            if (!space.HoleFits)
            {
                missing.Add($"<pcihole64> of {MmioSize.Format(space.EffectivePciHole64Bytes)}" + (space.PciHole64Bytes is null ? " (QEMU's default)" : string.Empty)
                    + $" is smaller than the {MmioSize.Format(space.MinimumBytes)} the hostdevs' 64-bit BARs need ({MmioSize.Format(space.RequiredBytes)} with alignment, plus what aligning the first may lose); {MmioSize.Format(space.RecommendedBytes)} is recommended");
            }
            if (!space.PhysBitsFit)
            {
                missing.Add($"the vCPU has {space.EffectivePhysBits} physical address bits; reaching the 64-bit MMIO space's end takes {space.RequiredPhysBits} (<maxphysaddr>)");
            }
            space.Missing = missing;
            return space;
        }
    }
}
