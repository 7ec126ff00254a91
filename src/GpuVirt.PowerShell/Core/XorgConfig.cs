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

        public static string BusId(PciAddress address) => address.XorgBusId;

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
        public static string DeviceSection(PciAddress address, string identifier = DefaultIdentifier, string driver = DefaultDriver,
            string vendorName = DefaultVendorName)
        {
            var sb = new StringBuilder();
            sb.Append("Section \"Device\"\n");
            Entry(sb, "Identifier", identifier);
            Entry(sb, "Driver", driver);
            Entry(sb, "VendorName", vendorName);
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
