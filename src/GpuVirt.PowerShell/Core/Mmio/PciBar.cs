using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace GpuVirt.Core.Mmio
{
    /// <summary>
    /// One base address register of a PCI function as the kernel shows it in the function's <c>resource</c> file:
    /// <c>start end flags</c>, in hex, one line per resource.
    /// </summary>
    internal sealed class PciBar
    {
        /// <summary>IORESOURCE_IO: an I/O port BAR.</summary>
        public const ulong IoFlag = 0x100;

        /// <summary>IORESOURCE_MEM: a memory BAR.</summary>
        public const ulong MemoryFlag = 0x200;

        /// <summary>IORESOURCE_PREFETCH: prefetchable memory.</summary>
        public const ulong PrefetchableFlag = 0x2000;

        /// <summary>IORESOURCE_MEM_64: the BAR is 64 bits wide and can be placed above 4 GiB.</summary>
        public const ulong Memory64Flag = 0x100000;

        public PciBar(PciAddress device, int index, ulong start, ulong end, ulong flags)
        {
            Device = device;
            Index = index;
            Start = start;
            End = end;
            Flags = flags;
        }

        /// <summary>The function the BAR belongs to.</summary>
        public PciAddress Device { get; }

        /// <summary>The BAR number, 0 to 5.</summary>
        public int Index { get; }

        public ulong Start { get; }
        public ulong End { get; }
        public ulong Flags { get; }

        /// <summary>The size in bytes: end - start + 1 (a power of two for a real BAR).</summary>
        public ulong Size => End - Start + 1;

        public bool IsMemory => (Flags & MemoryFlag) != 0;
        public bool IsIo => (Flags & IoFlag) != 0;
        public bool Is64Bit => IsMemory && (Flags & Memory64Flag) != 0;
        public bool IsPrefetchable => IsMemory && (Flags & PrefetchableFlag) != 0;

        /// <summary><c>io</c>, <c>mem32</c>, <c>mem64</c>, with <c>pref</c> for prefetchable memory, as lspci -vv words it.</summary>
        public string Kind => IsIo ? "io" : (Is64Bit ? "mem64" : "mem32") + (IsPrefetchable ? " pref" : string.Empty);

        public override string ToString() =>
            string.Format(CultureInfo.InvariantCulture, "{0} BAR {1} {2} {3}", Device, Index, Kind, MmioSize.Format(Size));
    }

    /// <summary>Reads the BARs of PCI functions from sysfs.</summary>
    internal static class PciBars
    {
        /// <summary>The sysfs attribute with one <c>start end flags</c> line per resource.</summary>
        public const string ResourceFile = "resource";

        /// <summary>
        /// The standard BARs, lines 0 to 5. Line 6 is the expansion ROM (QEMU gives a guest a ROM BAR below 4 GiB) and
        /// lines 7 and on are SR-IOV and bridge windows, which vfio does not show a guest; neither is read.
        /// </summary>
        public const int StandardBarCount = 6;

        /// <summary>The function's BARs that decode something (an unused BAR reads all zeros); null when the file is missing.</summary>
        public static IReadOnlyList<PciBar>? TryRead(PciInventory inventory, PciAddress address)
        {
            var text = Sysfs.TryReadText(Path.Combine(inventory.DeviceDirectory(address), ResourceFile));
            return text is null ? null : Parse(address, text);
        }

        /// <summary>Parses the text of a <c>resource</c> file; malformed lines are skipped.</summary>
        public static IReadOnlyList<PciBar> Parse(PciAddress address, string text)
        {
            var bars = new List<PciBar>();
            var lines = text.Split('\n');
            for (var i = 0; i < lines.Length && i < StandardBarCount; i++)
            {
                var words = lines[i].Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
                if (words.Length < 3) continue;
                if (!TryHex(words[0], out var start) || !TryHex(words[1], out var end) || !TryHex(words[2], out var flags)) continue;
                if (flags == 0 || end < start || (start == 0 && end == 0)) continue;
                if ((flags & (PciBar.MemoryFlag | PciBar.IoFlag)) == 0) continue;
                bars.Add(new PciBar(address, i, start, end, flags));
            }
            return bars;
        }

        private static bool TryHex(string text, out ulong value)
        {
            var s = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text.Substring(2) : text;
            return ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }
    }
}
