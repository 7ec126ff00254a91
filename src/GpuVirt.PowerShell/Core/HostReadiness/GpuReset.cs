using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.HostReadiness
{
    /// <summary>How a GPU can be reset between guests, from the kernel's <c>reset_method</c>, its config space and known reset bugs.</summary>
    internal sealed class GpuResetCapability
    {
        internal GpuResetCapability(IReadOnlyList<string>? methods, bool? flr, string? knownBug)
        {
            Methods = methods;
            Flr = flr;
            KnownBug = knownBug;
        }

        /// <summary>The kernel's reset methods in order (<c>reset_method</c>, kernels 5.15 and later); null when the attribute is absent.</summary>
        public IReadOnlyList<string>? Methods { get; }

        /// <summary>Function Level Reset in the PCI Express or Advanced Features capability; null when config space past the header cannot be read.</summary>
        public bool? Flr { get; }

        /// <summary>The name of a GPU family with a known reset bug (it does not come back after a guest stops), null otherwise.</summary>
        public string? KnownBug { get; }
    }

    internal static class GpuReset
    {
        public const string ResetMethodFile = "reset_method";
        public const string ConfigFile = "config";

        /// <summary>
        /// AMD GPUs that do not reset properly between guests (the "AMD reset bug"), by device id: the families the
        /// vendor-reset module works around.
        /// </summary>
        public static readonly IReadOnlyDictionary<(ushort Vendor, ushort Device), string> KnownResetBugs = new Dictionary<(ushort, ushort), string>
        {
            [(0x1002, 0x67df)] = "AMD Polaris 10 (Radeon RX 470/480/570/580)",
            [(0x1002, 0x67ef)] = "AMD Polaris 11 (Radeon RX 460/560)",
            [(0x1002, 0x67ff)] = "AMD Polaris 11 (Radeon RX 560)",
            [(0x1002, 0x699f)] = "AMD Polaris 12 (Radeon RX 550)",
            [(0x1002, 0x687f)] = "AMD Vega 10 (Radeon RX Vega 56/64)",
            [(0x1002, 0x6863)] = "AMD Vega 10 (Radeon Vega Frontier Edition)",
            [(0x1002, 0x66af)] = "AMD Vega 20 (Radeon VII)",
            [(0x1002, 0x731f)] = "AMD Navi 10 (Radeon RX 5600/5700)",
            [(0x1002, 0x7340)] = "AMD Navi 14 (Radeon RX 5500)",
            [(0x1002, 0x7360)] = "AMD Navi 12 (Radeon Pro 5600M)",
        };

        public static GpuResetCapability Read(PciDevice device)
        {
            var text = Sysfs.TryReadText(Path.Combine(device.Directory, ResetMethodFile));
            var methods = text?.Split(new[] { ' ', '\t', '\n' }, StringSplitOptions.RemoveEmptyEntries).ToList();
            KnownResetBugs.TryGetValue((device.VendorId, device.DeviceId), out var bug);
            return new GpuResetCapability(methods, HasFlr(Path.Combine(device.Directory, ConfigFile)), bug);
        }

        /// <summary>
        /// Reads the capability list of a config space file: FLR is bit 28 of Device Capabilities in the PCI Express
        /// capability (id 0x10), or bit 1 of the Advanced Features capability (id 0x13). Null when only the 64-byte
        /// header is readable (an unprivileged reader gets no more).
        /// </summary>
        public static bool? HasFlr(string configPath)
        {
            byte[] config;
            try
            {
                // PCI Express config space is 4 KiB; the bound leaves room and stops an endless file.
                config = FileReads.ReadBytes(configPath, configPath, 64 * 1024);
            }
            catch (GpuVirtException)
            {
                return null;
            }
            if (config.Length <= 64) return null;
            if ((config[0x06] & 0x10) == 0) return false;   // no capability list
            var offset = config[0x34] & 0xfc;
            for (var hops = 0; offset >= 0x40 && offset + 8 <= config.Length && hops < 48; hops++)
            {
                var id = config[offset];
                if (id == 0x10)
                {
                    var devcap = BitConverter.ToUInt32(config, offset + 4);
                    if ((devcap & (1u << 28)) != 0) return true;
                }
                else if (id == 0x13 && (config[offset + 3] & 0x02) != 0)
                {
                    return true;
                }
                offset = config[offset + 1] & 0xfc;
            }
            return false;
        }
    }
}
