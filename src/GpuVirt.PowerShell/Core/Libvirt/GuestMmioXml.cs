using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Xml.Linq;
using GpuVirt.Core.Mmio;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// What a guest's definition says about its 64-bit MMIO space: the machine, its memory, the <c>&lt;pcihole64&gt;</c>
    /// of the root PCI controller and the vCPU's <c>&lt;maxphysaddr&gt;</c>.
    /// </summary>
    internal sealed class GuestMmioDefinition
    {
        /// <summary>QEMU's pci-hole64 when the definition sets none: 32 GiB on q35, 2 GiB on i440fx (pc).</summary>
        public const ulong DefaultQ35Hole64 = 32 * MmioSize.GiB;
        public const ulong DefaultPcHole64 = 2 * MmioSize.GiB;

        /// <summary>QEMU's vCPU physical address bits when nothing else decides them.</summary>
        public const int DefaultPhysBits = 40;

        public string Name { get; internal set; } = string.Empty;
        public string? Arch { get; internal set; }
        public string? Machine { get; internal set; }

        /// <summary>A q35 machine (root controller <c>pcie-root</c>); false for i440fx (<c>pci-root</c>).</summary>
        public bool IsQ35 => Machine != null && Machine.IndexOf("q35", StringComparison.OrdinalIgnoreCase) >= 0;

        /// <summary>An x86 guest, the only kind QEMU gives a pci-hole64 and libvirt a <c>&lt;pcihole64&gt;</c>.</summary>
        public bool IsX86 => Arch is null || Arch == "x86_64" || Arch == "i686";

        public ulong MemoryBytes { get; internal set; }
        public ulong? MaxMemoryBytes { get; internal set; }
        public int MaxMemorySlots { get; internal set; }

        /// <summary>The <c>&lt;cpu mode&gt;</c>: <c>custom</c> (also when there is no &lt;cpu&gt;), <c>host-model</c>, <c>host-passthrough</c>, <c>maximum</c>.</summary>
        public string CpuMode { get; internal set; } = "custom";

        /// <summary>True for <c>host-passthrough</c> and <c>maximum</c>: QEMU's host and max models, which take the host's physical address bits under KVM.</summary>
        public bool CpuTakesHostPhysBits => CpuMode == "host-passthrough" || CpuMode == "maximum";

        /// <summary>The <c>&lt;maxphysaddr mode&gt;</c> (<c>passthrough</c> or <c>emulate</c>), null when absent.</summary>
        public string? MaxPhysAddrMode { get; internal set; }

        /// <summary>The <c>bits</c> of an emulated <c>&lt;maxphysaddr&gt;</c>.</summary>
        public int? MaxPhysAddrBits { get; internal set; }

        /// <summary>The <c>&lt;pcihole64&gt;</c> of the root controller in bytes; null when the definition sets none.</summary>
        public ulong? PciHole64Bytes { get; internal set; }

        public ulong DefaultHole64Bytes => IsQ35 ? DefaultQ35Hole64 : DefaultPcHole64;

        public ulong EffectiveHole64Bytes => PciHole64Bytes ?? DefaultHole64Bytes;

        /// <summary>
        /// Where QEMU starts the 64-bit hole: above the RAM that does not fit below 4 GiB (q35 keeps 2 GiB below 4 GiB
        /// from 2.75 GiB of RAM on, i440fx 3 GiB from 3.5 GiB on) and any memory hot-plug area, aligned to 1 GiB.
        /// </summary>
        public ulong Hole64Start
        {
            get
            {
                ulong lowLimit = IsQ35 ? 0xb0000000UL : 0xe0000000UL;
                ulong lowMemory = IsQ35 ? 0x80000000UL : 0xc0000000UL;
                var above4G = MemoryBytes >= lowLimit ? MemoryBytes - lowMemory : 0;
                var end = 4 * MmioSize.GiB + above4G;
                if (MaxMemoryBytes is ulong max && max > MemoryBytes)
                {
                    end = MmioSize.AlignUp(end, MmioSize.GiB) + (max - MemoryBytes) + (ulong)MaxMemorySlots * MmioSize.GiB;
                }
                return MmioSize.AlignUp(end, MmioSize.GiB);
            }
        }

        /// <summary>The vCPU's physical address bits; null when they are the host's and the host's are unknown.</summary>
        public int? EffectivePhysBits(int? hostPhysBits)
        {
            if (MaxPhysAddrMode == "emulate" && MaxPhysAddrBits is int bits) return bits;
            if (MaxPhysAddrMode == "passthrough") return hostPhysBits;
            return CpuTakesHostPhysBits ? hostPhysBits : DefaultPhysBits;
        }
    }

    /// <summary>Reads and writes the MMIO parts of libvirt domain XML.</summary>
    internal static class GuestMmioXml
    {
        public static GuestMmioDefinition Read(XDocument doc)
        {
            var domain = doc.Root ?? throw new GpuVirtException(ErrorIds.InvalidDomainXml, ErrorKind.InvalidData, "The document is not a libvirt <domain> definition.", null);
            var type = domain.Element("os")?.Element("type");
            var definition = new GuestMmioDefinition
            {
                Name = (string?)domain.Element("name") ?? string.Empty,
                Arch = (string?)type?.Attribute("arch"),
                Machine = (string?)type?.Attribute("machine"),
                MemoryBytes = ScaledBytes(domain.Element("memory"), "KiB") ?? 0,
                MaxMemoryBytes = ScaledBytes(domain.Element("maxMemory"), "KiB"),
                MaxMemorySlots = int.TryParse((string?)domain.Element("maxMemory")?.Attribute("slots"), NumberStyles.None, CultureInfo.InvariantCulture, out var slots) ? slots : 0,
            };
            var cpu = domain.Element("cpu");
            if (cpu != null)
            {
                definition.CpuMode = (string?)cpu.Attribute("mode") ?? "custom";
                var max = cpu.Element("maxphysaddr");
                if (max != null)
                {
                    definition.MaxPhysAddrMode = (string?)max.Attribute("mode");
                    definition.MaxPhysAddrBits = int.TryParse((string?)max.Attribute("bits"), NumberStyles.None, CultureInfo.InvariantCulture, out var b) ? b : (int?)null;
                }
            }
            var hole = RootController(domain)?.Element("pcihole64");
            if (hole != null) definition.PciHole64Bytes = ScaledBytes(hole, "KiB");
            return definition;
        }

        /// <summary>The root PCI controller: <c>&lt;controller type='pci' index='0' model='pcie-root'|'pci-root'&gt;</c>.</summary>
        public static XElement? RootController(XElement domain) =>
            domain.Element("devices")?.Elements("controller").FirstOrDefault(c =>
                (string?)c.Attribute("type") == "pci"
                && ((string?)c.Attribute("model") == "pcie-root" || (string?)c.Attribute("model") == "pci-root"));

        /// <summary>Sets <c>&lt;pcihole64 unit='KiB'&gt;</c> on the root controller, adding the controller if the definition has none.</summary>
        public static void SetPciHole64(XDocument doc, ulong bytes, bool q35)
        {
            var domain = doc.Root!;
            var devices = domain.Element("devices");
            if (devices is null)
            {
                devices = new XElement("devices");
                domain.Add(devices);
            }
            var controller = RootController(domain);
            if (controller is null)
            {
                controller = new XElement("controller", new XAttribute("type", "pci"), new XAttribute("index", "0"),
                    new XAttribute("model", q35 ? "pcie-root" : "pci-root"));
                var firstController = devices.Elements("controller").FirstOrDefault();
                if (firstController != null) firstController.AddBeforeSelf(controller);
                else devices.Add(controller);
            }
            controller.Elements("pcihole64").Remove();
            // libvirt wants pcihole64 first among the controller's children (before <model>, <target>, <address>).
            controller.AddFirst(new XElement("pcihole64", new XAttribute("unit", "KiB"),
                (MmioSize.AlignUp(bytes, MmioSize.KiB) / MmioSize.KiB).ToString(CultureInfo.InvariantCulture)));
        }

        /// <summary>Sets <c>&lt;cpu&gt;&lt;maxphysaddr mode='passthrough'/&gt;</c> or <c>mode='emulate' bits='N'</c>, adding &lt;cpu&gt; if needed.</summary>
        public static void SetMaxPhysAddr(XDocument doc, int? emulateBits)
        {
            var domain = doc.Root!;
            var cpu = domain.Element("cpu");
            if (cpu is null)
            {
                cpu = new XElement("cpu");
                // The schema takes <cpu> after <features> or <os>, wherever those are; libvirt does not care about order here.
                var after = domain.Element("features") ?? domain.Element("os");
                if (after != null) after.AddAfterSelf(cpu);
                else domain.Add(cpu);
            }
            cpu.Elements("maxphysaddr").Remove();
            var element = emulateBits is int bits
                ? new XElement("maxphysaddr", new XAttribute("mode", "emulate"), new XAttribute("bits", bits.ToString(CultureInfo.InvariantCulture)))
                : new XElement("maxphysaddr", new XAttribute("mode", "passthrough"));
            // libvirt writes it after <model>, <vendor> and <topology>, before <feature>, <cache>, <numa>.
            var before = cpu.Elements().FirstOrDefault(e => e.Name.LocalName == "feature" || e.Name.LocalName == "cache" || e.Name.LocalName == "numa");
            if (before != null) before.AddBeforeSelf(element);
            else cpu.Add(element);
        }

        /// <summary>libvirt's scaled integers: a value and a <c>unit</c> attribute (b, KB, KiB, k, MB, MiB, M … EiB).</summary>
        public static ulong? ScaledBytes(XElement? element, string defaultUnit)
        {
            if (element is null) return null;
            if (!ulong.TryParse(element.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value)) return null;
            var unit = (string?)element.Attribute("unit") ?? defaultUnit;
            var scale = UnitScale(unit);
            return scale is ulong s ? value * s : (ulong?)null;
        }

        private static ulong? UnitScale(string unit)
        {
            switch (unit)
            {
                case "b": case "bytes": return 1;
                case "KB": return 1000UL;
                case "k": case "K": case "KiB": return 1UL << 10;
                case "MB": return 1000UL * 1000;
                case "M": case "MiB": return 1UL << 20;
                case "GB": return 1000UL * 1000 * 1000;
                case "G": case "GiB": return 1UL << 30;
                case "TB": return 1000UL * 1000 * 1000 * 1000;
                case "T": case "TiB": return 1UL << 40;
                case "PB": return 1000UL * 1000 * 1000 * 1000 * 1000;
                case "P": case "PiB": return 1UL << 50;
                case "EB": return 1000UL * 1000 * 1000 * 1000 * 1000 * 1000;
                case "E": case "EiB": return 1UL << 60;
                default: return null;
            }
        }
    }
}
