using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>Reads the CPU vendor from <c>/proc/cpuinfo</c>.</summary>
    internal static class CpuInfo
    {
        public static CpuVendor? TryReadVendor(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCpuinfo));
            if (text is null) return null;
            foreach (var line in text.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon < 0 || line.Substring(0, colon).Trim() != "vendor_id") continue;
                switch (line.Substring(colon + 1).Trim())
                {
                    case "GenuineIntel":
                        return CpuVendor.Intel;
                    case "AuthenticAMD":
                    case "HygonGenuine":
                        return CpuVendor.Amd;
                    default:
                        return null;
                }
            }
            return null;
        }

        public static CpuVendor ReadVendor(HostRoot root) =>
            TryReadVendor(root) ?? throw new GpuVirtException(ErrorIds.CpuVendorUnknown, ErrorKind.ObjectNotFound,
                $"The CPU vendor could not be read from '{HostPaths.ProcCpuinfo}' under '{root.Directory}' (GenuineIntel or AuthenticAMD). Give -CpuVendor Intel or -CpuVendor Amd.",
                root.Directory);

        /// <summary>The CPU's physical address bits (<c>address sizes : 46 bits physical, 48 bits virtual</c>); null when not shown.</summary>
        public static int? TryReadPhysicalAddressBits(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCpuinfo));
            if (text is null) return null;
            foreach (var line in text.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon < 0 || line.Substring(0, colon).Trim() != "address sizes") continue;
                var words = line.Substring(colon + 1).Trim().Split(' ');
                return words.Length > 1 && words[1] == "bits" && int.TryParse(words[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bits)
                    ? bits : (int?)null;
            }
            return null;
        }

        /// <summary>The feature flags of the first CPU (<c>flags : fpu vme … vmx</c>); empty when not shown.</summary>
        public static IReadOnlyCollection<string> ReadFlags(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCpuinfo));
            var flags = new HashSet<string>(StringComparer.Ordinal);
            if (text is null) return flags;
            foreach (var line in text.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon < 0 || line.Substring(0, colon).Trim() != "flags") continue;
                foreach (var flag in line.Substring(colon + 1).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries)) flags.Add(flag);
                break;
            }
            return flags;
        }
    }
}
