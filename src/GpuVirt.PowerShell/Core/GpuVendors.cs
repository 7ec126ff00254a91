using System;
using System.Collections.Generic;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>The GPU vendors a user names, and their PCI vendor ids.</summary>
    internal static class GpuVendors
    {
        public static readonly IReadOnlyDictionary<string, ushort[]> ByName = new Dictionary<string, ushort[]>(StringComparer.OrdinalIgnoreCase)
        {
            ["NVIDIA"] = new ushort[] { 0x10de },
            ["AMD"] = new ushort[] { 0x1002, 0x1022 },
            ["Intel"] = new ushort[] { 0x8086 },
        };

        /// <summary>Vendor ids for a name (NVIDIA, AMD, Intel) or a hex id (<c>10de</c>, <c>0x10de</c>).</summary>
        public static ushort[] Resolve(string vendor)
        {
            if (vendor != null && ByName.TryGetValue(vendor.Trim(), out var ids)) return ids;
            var parsed = Sysfs.ParseHex(vendor?.Trim());
            if (parsed is uint v && v <= 0xffff && (vendor ?? string.Empty).Trim().Length > 0) return new[] { (ushort)v };
            throw new GpuVirtException(ErrorIds.InvalidVendor, ErrorKind.InvalidArgument,
                $"'{vendor}' is not a GPU vendor. Give {string.Join(", ", ByName.Keys.ToArray())} or a hex vendor id such as 10de.", vendor);
        }
    }
}
