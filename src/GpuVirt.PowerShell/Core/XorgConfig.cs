using System.Globalization;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>
    /// The guest's Xorg configuration for an assigned GPU (procedure 16.17): the <c>BusID</c> in decimal fields
    /// (<c>00:0a.0</c> → <c>PCI:0:10:0</c>, <c>PCI:bus@domain:device:function</c> for a non-zero domain) and the
    /// <c>Section "Device"</c> block that holds it.
    /// </summary>
    internal static class XorgConfig
    {
        public const string DefaultIdentifier = "Device0";
        public const string DefaultDriver = "nvidia";
        public const string DefaultVendorName = "NVIDIA Corporation";

        private const ushort NvidiaVendor = 0x10de;
        private const ushort AmdVendor = 0x1002;
        private const ushort IntelVendor = 0x8086;

        public static string BusId(PciAddress address) => address.XorgBusId;

        /// <summary>
        /// The Xorg driver (DDX) for a display function of <paramref name="vendorId"/>: <c>nvidia</c> for NVIDIA (the
        /// procedure's: only NVIDIA's driver in the guest), <c>amdgpu</c> for AMD (xf86-video-amdgpu, GCN and later), and
        /// <c>modesetting</c>, Xorg's own driver over the kernel's KMS, for Intel (what Intel's i915 and xe kernel drivers
        /// are used with; the older xf86-video-intel is named <c>intel</c>) and for any other vendor.
        /// </summary>
        public static string DriverFor(ushort vendorId) => vendorId switch
        {
            NvidiaVendor => DefaultDriver,
            AmdVendor => "amdgpu",
            _ => "modesetting",
        };

        /// <summary>The VendorName for a function: its pci.ids vendor name, else the name of a GPU vendor the module knows, else none.</summary>
        public static string? VendorNameFor(PciDevice device)
        {
            if (!string.IsNullOrEmpty(device.VendorName) && device.VendorName!.IndexOfAny(new[] { '"', '\n', '\r', '\0' }) < 0) return device.VendorName;
            return device.VendorId switch
            {
                NvidiaVendor => DefaultVendorName,
                AmdVendor => "Advanced Micro Devices, Inc. [AMD/ATI]",
                IntelVendor => "Intel Corporation",
                _ => null,
            };
        }

        /// <summary>
        /// The Identifier of the <paramref name="index"/>th section (from 0) when the first is <paramref name="first"/>:
        /// the first as given, then its trailing number counted on (<c>Device0</c>, <c>Device1</c>, ...; <c>Card</c>,
        /// <c>Card1</c>, ...), so that the sections of one configuration never share an Identifier.
        /// </summary>
        public static string Identifier(string first, int index)
        {
            if (index == 0) return first;
            var digits = first.Length;
            while (digits > 0 && char.IsDigit(first[digits - 1])) digits--;
            var stem = first.Substring(0, digits);
            var start = digits < first.Length && long.TryParse(first.Substring(digits), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
            return stem + (start + index).ToString(CultureInfo.InvariantCulture);
        }

        /// <summary>
        /// The block for /etc/X11/xorg.conf, laid out as the procedure shows it:
        /// <code>
        /// Section "Device"
        ///     Identifier     "Device0"
        ///     Driver         "nvidia"
        ///     VendorName     "NVIDIA Corporation"
        ///     BusID          "PCI:0:9:0"
        /// EndSection
        /// </code>
        /// </summary>
        /// <param name="vendorName">null: no VendorName line (a vendor the module cannot name).</param>
        public static string DeviceSection(PciAddress address, string identifier = DefaultIdentifier, string driver = DefaultDriver,
            string? vendorName = DefaultVendorName)
        {
            var sb = new StringBuilder();
            sb.Append("Section \"Device\"\n");
            Entry(sb, "Identifier", identifier);
            Entry(sb, "Driver", driver);
            if (vendorName != null) Entry(sb, "VendorName", vendorName);
            Entry(sb, "BusID", BusId(address));
            sb.Append("EndSection");
            return sb.ToString();
        }

        private static void Entry(StringBuilder sb, string key, string value)
        {
            CheckValue(key, value);
            sb.Append("    ").Append(key.PadRight(15)).Append('"').Append(value).Append("\"\n");
        }

        /// <summary>An xorg.conf string cannot hold a double quote or a line break; an empty one says nothing.</summary>
        public static void CheckValue(string key, string? value)
        {
            if (string.IsNullOrEmpty(value) || value!.IndexOfAny(new[] { '"', '\n', '\r', '\0' }) >= 0)
            {
                throw new GpuVirtException(ErrorIds.InvalidXorgValue, ErrorKind.InvalidArgument,
                    string.Format(CultureInfo.InvariantCulture,
                        "'{0}' cannot be an xorg.conf {1}: give a non-empty value without double quotes or line breaks.", value, key), value);
            }
        }
    }
}
