using System;
using System.Globalization;

namespace GpuVirt.Core
{
    /// <summary>
    /// A PCI function address: domain (segment), bus, device (slot) and function.
    /// Parses the kernel's form (<c>0000:02:00.0</c>), the short form lspci prints without -D (<c>02:00.0</c>),
    /// libvirt's node-device name (<c>pci_0000_02_00_0</c>) and domains of 4 to 8 hex digits (Intel VMD: <c>10000:01:00.0</c>).
    /// </summary>
    internal readonly struct PciAddress : IEquatable<PciAddress>, IComparable<PciAddress>, IComparable
    {
        public const string AcceptedForms =
            "'0000:02:00.0' (domain:bus:device.function, domain of 4 to 8 hex digits), '02:00.0' (domain 0) or 'pci_0000_02_00_0' (libvirt node device)";

        public PciAddress(uint domain, byte bus, byte device, byte function)
        {
            if (device > 0x1f) throw new ArgumentOutOfRangeException(nameof(device), device, "A PCI device number is 0 to 0x1f.");
            if (function > 7) throw new ArgumentOutOfRangeException(nameof(function), function, "A PCI function number is 0 to 7.");
            Domain = domain;
            Bus = bus;
            Device = device;
            Function = function;
        }

        public uint Domain { get; }
        public byte Bus { get; }
        public byte Device { get; }
        public byte Function { get; }

        /// <summary>The address of function 0 of the same slot.</summary>
        public PciAddress Slot => new PciAddress(Domain, Bus, Device, 0);

        internal bool IsSameSlot(PciAddress other) => Domain == other.Domain && Bus == other.Bus && Device == other.Device;

        /// <summary>libvirt's node-device name: <c>pci_0000_02_00_0</c>.</summary>
        public string NodeDeviceName => string.Format(CultureInfo.InvariantCulture, "pci_{0}_{1:x2}_{2:x2}_{3:x}", DomainText, Bus, Device, Function);

        /// <summary>The domain as the kernel prints it: at least four lower-case hex digits.</summary>
        public string DomainText => Domain.ToString("x4", CultureInfo.InvariantCulture);

        public string LibvirtDomain => "0x" + DomainText;
        public string LibvirtBus => "0x" + Bus.ToString("x2", CultureInfo.InvariantCulture);
        public string LibvirtSlot => "0x" + Device.ToString("x2", CultureInfo.InvariantCulture);
        public string LibvirtFunction => "0x" + Function.ToString("x", CultureInfo.InvariantCulture);

        /// <summary>Xorg's BusID: decimal fields, <c>PCI:bus:device:function</c>, or <c>PCI:bus@domain:device:function</c> for a non-zero domain.</summary>
        public string XorgBusId => Domain == 0
            ? string.Format(CultureInfo.InvariantCulture, "PCI:{0}:{1}:{2}", Bus, Device, Function)
            : string.Format(CultureInfo.InvariantCulture, "PCI:{0}@{1}:{2}:{3}", Bus, Domain, Device, Function);

        public override string ToString() =>
            string.Format(CultureInfo.InvariantCulture, "{0}:{1:x2}:{2:x2}.{3:x}", DomainText, Bus, Device, Function);

        public static PciAddress Parse(string text)
        {
            if (TryParse(text, out var address)) return address;
            throw NotAnAddress(text);
        }

        /// <summary>The <see cref="ErrorIds.InvalidPciAddress"/> error for text that does not parse, showing the accepted forms.</summary>
        internal static GpuVirtException NotAnAddress(string? text) =>
            new GpuVirtException(ErrorIds.InvalidPciAddress, ErrorKind.InvalidArgument,
                $"'{text}' is not a PCI address. Accepted forms: {AcceptedForms}.", text);

        public static bool TryParse(string? text, out PciAddress address)
        {
            address = default;
            if (text is null) return false;
            var s = text.Trim();
            if (s.Length == 0) return false;

            if (s.StartsWith("pci_", StringComparison.OrdinalIgnoreCase))
            {
                var parts = s.Substring(4).Split('_');
                if (parts.Length != 4) return false;
                return TryBuild(parts[0], parts[1], parts[2], parts[3], requireDomainWidth: true, out address);
            }

            var dot = s.LastIndexOf('.');
            if (dot < 0) return false;
            var function = s.Substring(dot + 1);
            var head = s.Substring(0, dot).Split(':');
            return head.Length switch
            {
                2 => TryBuild("0", head[0], head[1], function, requireDomainWidth: false, out address),
                3 => TryBuild(head[0], head[1], head[2], function, requireDomainWidth: true, out address),
                _ => false,
            };
        }

        private static bool TryBuild(string domain, string bus, string device, string function, bool requireDomainWidth, out PciAddress address)
        {
            address = default;
            if (requireDomainWidth && (domain.Length < 4 || domain.Length > 8)) return false;
            if (bus.Length != 2 || device.Length != 2 || function.Length != 1) return false;
            if (!IsHex(domain) || !IsHex(bus) || !IsHex(device) || !IsHex(function)) return false;
            var d = uint.Parse(domain, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            var b = byte.Parse(bus, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            var dev = byte.Parse(device, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            var f = byte.Parse(function, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
            if (dev > 0x1f || f > 7) return false;
            address = new PciAddress(d, b, dev, f);
            return true;
        }

        private static bool IsHex(string s)
        {
            foreach (var c in s)
            {
                if (!Uri.IsHexDigit(c)) return false;
            }
            return s.Length > 0;
        }

        private ulong Key => ((ulong)Domain << 16) | ((ulong)Bus << 8) | ((ulong)Device << 3) | Function;

        public bool Equals(PciAddress other) => Key == other.Key;
        public override bool Equals(object? obj) => obj is PciAddress other && Equals(other);
        public override int GetHashCode() => Key.GetHashCode();
        public int CompareTo(PciAddress other) => Key.CompareTo(other.Key);

        public int CompareTo(object? obj) => obj switch
        {
            null => 1,
            PciAddress other => CompareTo(other),
            _ => throw new ArgumentException("Not a PCI address.", nameof(obj)),
        };

        public static bool operator ==(PciAddress left, PciAddress right) => left.Equals(right);
        public static bool operator !=(PciAddress left, PciAddress right) => !left.Equals(right);
        public static bool operator <(PciAddress left, PciAddress right) => left.CompareTo(right) < 0;
        public static bool operator >(PciAddress left, PciAddress right) => left.CompareTo(right) > 0;
        public static bool operator <=(PciAddress left, PciAddress right) => left.CompareTo(right) <= 0;
        public static bool operator >=(PciAddress left, PciAddress right) => left.CompareTo(right) >= 0;
    }
}
