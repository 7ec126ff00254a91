using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace GpuVirt.Core.Mmio
{
    /// <summary>Byte sizes, alignment and address bits for MMIO sizing.</summary>
    public static class MmioSize
    {
        internal const ulong KiB = 1UL << 10;
        internal const ulong MiB = 1UL << 20;
        internal const ulong GiB = 1UL << 30;

        /// <summary>The smallest multiple of <paramref name="alignment"/> (a power of two) not below <paramref name="value"/>.</summary>
        internal static ulong AlignUp(ulong value, ulong alignment)
        {
            if (alignment <= 1) return value;
            var mask = alignment - 1;
            return (value + mask) & ~mask;
        }

        internal static ulong NextPowerOfTwo(ulong value)
        {
            if (value <= 1) return 1;
            var p = 1UL;
            while (p < value && p != 0) p <<= 1;
            return p;
        }

        /// <summary>The address bits needed to reach every byte below <paramref name="end"/> (exclusive).</summary>
        internal static int BitsFor(ulong end)
        {
            if (end <= 1) return 1;
            var last = end - 1;
            var bits = 0;
            while (last != 0)
            {
                bits++;
                last >>= 1;
            }
            return bits;
        }

        /// <summary><c>16 GiB</c>, <c>32 MiB</c>, <c>16.03 GiB</c>: binary units, at most two decimals.</summary>
        public static string Format(ulong bytes)
        {
            string[] units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
            double value = bytes;
            var unit = 0;
            while (value >= 1024 && unit < units.Length - 1)
            {
                value /= 1024;
                unit++;
            }
            return value.ToString("0.##", CultureInfo.InvariantCulture) + " " + units[unit];
        }
    }

    /// <summary>
    /// The 64-bit memory window one assigned function takes in the guest. q35 guests get each hostdev behind its own
    /// PCIe root port, and the guest firmware gives each port one window: its BARs, each naturally aligned (largest
    /// first, so they pack without gaps), the sum rounded up to the largest BAR's alignment, as SeaBIOS and OVMF size
    /// bridge windows.
    /// </summary>
    public sealed class MmioWindow
    {
        /// <summary>A bridge memory window is at least, and aligned to, 1 MiB.</summary>
        public const ulong MinimumAlignment = MmioSize.MiB;

        internal MmioWindow(PciAddress device, IReadOnlyList<PciBar> bars)
        {
            DeviceAddress = device;
            Bars = bars.OrderByDescending(b => b.Size).ThenBy(b => b.Index).ToList();
            BarBytes = Bars.Aggregate(0UL, (sum, b) => sum + MmioSize.NextPowerOfTwo(b.Size));
            Alignment = Math.Max(MinimumAlignment, Bars.Count == 0 ? 0 : MmioSize.NextPowerOfTwo(Bars[0].Size));
            Size = MmioSize.AlignUp(Math.Max(BarBytes, MinimumAlignment), Alignment);
        }

        /// <summary>The function's address (<c>0000:02:00.0</c>).</summary>
        public string Device => DeviceAddress.ToString();

        internal PciAddress DeviceAddress { get; }

        /// <summary>The function's 64-bit memory BARs, largest first.</summary>
        internal IReadOnlyList<PciBar> Bars { get; }

        /// <summary>The BARs, largest first, in one line (<c>BAR1 256 GiB, BAR3 32 MiB</c>).</summary>
        public string BarSizes => string.Join(", ", Bars.Select(b => "BAR" + b.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + MmioSize.Format(b.Size)));

        /// <summary>The BARs' sizes added up.</summary>
        public ulong BarBytes { get; }

        /// <summary>The window's alignment: its largest BAR's size, at least 1 MiB.</summary>
        public ulong Alignment { get; }

        /// <summary>The window's size: the BARs' sum rounded up to <see cref="Alignment"/>.</summary>
        public ulong Size { get; }

        public override string ToString() => Device + " " + MmioSize.Format(Size) + " aligned to " + MmioSize.Format(Alignment);
    }

    /// <summary>
    /// What a guest's 64-bit MMIO space (QEMU's pci-hole64) must hold for its assigned functions: their windows packed
    /// largest alignment first (no gaps, since every size is a multiple of its power-of-two alignment), plus headroom.
    /// </summary>
    internal sealed class MmioRequirement
    {
        private MmioRequirement(IReadOnlyList<MmioWindow> windows)
        {
            Windows = windows;
            BarBytes = windows.Aggregate(0UL, (s, w) => s + w.BarBytes);
            RequiredBytes = windows.Aggregate(0UL, (s, w) => s + w.Size);
            LargestAlignment = windows.Count == 0 ? 0 : windows.Max(w => w.Alignment);
            MinimumBytes = RequiredBytes + (LargestAlignment > MmioSize.GiB ? LargestAlignment - MmioSize.GiB : 0);
            RecommendedBytes = windows.Count == 0 ? 0 : MmioSize.AlignUp(Math.Max(RequiredBytes + LargestAlignment, MmioSize.GiB), Math.Max(LargestAlignment, MmioSize.GiB));
        }

        /// <summary>
        /// The windows of the functions that have 64-bit memory BARs. Every 64-bit BAR counts, prefetchable or not: a
        /// non-prefetchable one may land below 4 GiB instead, so counting it errs on the side of space.
        /// </summary>
        public static MmioRequirement For(IEnumerable<KeyValuePair<PciAddress, IReadOnlyList<PciBar>>> functions)
        {
            var windows = functions
                .Select(f => new { f.Key, Bars = f.Value.Where(b => b.Is64Bit).ToList() })
                .Where(f => f.Bars.Count > 0)
                .Select(f => new MmioWindow(f.Key, f.Bars))
                .OrderByDescending(w => w.Alignment)
                .ThenBy(w => w.Device)
                .ToList();
            return new MmioRequirement(windows);
        }

        public IReadOnlyList<MmioWindow> Windows { get; }

        /// <summary>The 64-bit BARs' sizes added up (what <c>lspci -vv</c> would sum).</summary>
        public ulong BarBytes { get; }

        /// <summary>The windows packed: the smallest 64-bit MMIO space that holds them.</summary>
        public ulong RequiredBytes { get; }

        /// <summary>
        /// The smallest 64-bit MMIO space sure to hold the windows wherever QEMU starts it: QEMU aligns the start only to
        /// 1 GiB, so aligning the first window may lose up to <see cref="LargestAlignment"/> less 1 GiB.
        /// </summary>
        public ulong MinimumBytes { get; }

        /// <summary>The largest window alignment.</summary>
        public ulong LargestAlignment { get; }

        /// <summary>
        /// What to give the guest: <see cref="RequiredBytes"/> plus one <see cref="LargestAlignment"/> of headroom (more
        /// than <see cref="MinimumBytes"/>), rounded up to that alignment and to whole GiB; zero when no function has a
        /// 64-bit BAR.
        /// </summary>
        public ulong RecommendedBytes { get; }
    }
}
