using System;
using System.Globalization;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>The two kinds of GPU hostdev: a whole PCI function, or a mediated device (vGPU) by UUID.</summary>
    public enum HostdevKind
    {
        Pci,
        Mdev,
    }

    /// <summary>What a hostdev gives the guest: a host PCI address or an mdev UUID. Two sources are equal when they name the same device.</summary>
    internal readonly struct HostdevSource : IEquatable<HostdevSource>
    {
        private HostdevSource(HostdevKind kind, PciAddress? address, Guid? uuid)
        {
            Kind = kind;
            Address = address;
            Uuid = uuid;
        }

        internal static HostdevSource Pci(PciAddress address) => new HostdevSource(HostdevKind.Pci, address, null);

        internal static HostdevSource Mdev(Guid uuid) => new HostdevSource(HostdevKind.Mdev, null, uuid);

        public HostdevKind Kind { get; }
        public PciAddress? Address { get; }
        public Guid? Uuid { get; }

        /// <summary>The host PCI address (<c>0000:02:00.0</c>) or the UUID in lower case, as libvirt writes it.</summary>
        public override string ToString() =>
            Kind == HostdevKind.Pci ? Address.GetValueOrDefault().ToString() : Uuid.GetValueOrDefault().ToString("D");

        public bool Equals(HostdevSource other) => Kind == other.Kind && Address == other.Address && Uuid == other.Uuid;
        public override bool Equals(object? obj) => obj is HostdevSource other && Equals(other);
        public override int GetHashCode() => (Kind, Address, Uuid).GetHashCode();
        public static bool operator ==(HostdevSource left, HostdevSource right) => left.Equals(right);
        public static bool operator !=(HostdevSource left, HostdevSource right) => !left.Equals(right);
    }

    /// <summary>
    /// A <c>&lt;hostdev mode='subsystem'&gt;</c> of type <c>pci</c> or <c>mdev</c> in a guest's definition: the host
    /// device it gives the guest, how, and the PCI address the guest sees it at.
    /// </summary>
    public sealed class Hostdev : HostObject
    {
        internal Hostdev(string domain, HostdevSource source, string xml)
        {
            Domain = domain;
            SourceDevice = source;
            Xml = xml;
        }

        /// <summary>The guest (libvirt domain) name.</summary>
        public string Domain { get; }

        /// <summary>The host device given to the guest: its PCI address (<c>0000:02:00.0</c>) or the mdev UUID.</summary>
        public string Source => SourceDevice.ToString();

        internal HostdevSource SourceDevice { get; }

        public HostdevKind Kind => SourceDevice.Kind;

        /// <summary>The host PCI address of a PCI hostdev (<c>0000:02:00.0</c>); null for an mdev.</summary>
        public string? Address => PciAddress?.ToString();

        internal PciAddress? PciAddress => SourceDevice.Address;

        /// <summary>The mediated device's UUID; null for a PCI hostdev.</summary>
        public Guid? Uuid => SourceDevice.Uuid;

        /// <summary><c>managed='yes'</c>: libvirt detaches the device from its host driver when the guest starts.</summary>
        public bool Managed { get; internal set; }

        /// <summary>The <c>model</c> attribute of an mdev hostdev (<c>vfio-pci</c>).</summary>
        public string? Model { get; internal set; }

        /// <summary><c>display='on'</c>: the vGPU drives the guest's VNC or SPICE console.</summary>
        public bool Display { get; internal set; }

        /// <summary>The <c>&lt;driver name&gt;</c> of a PCI hostdev (<c>vfio</c>), null when libvirt picks it.</summary>
        public string? Driver { get; internal set; }

        /// <summary>The PCI address the guest sees the device at (libvirt assigns it), <c>0000:00:09.0</c>; null until assigned.</summary>
        public string? GuestAddress => GuestPciAddress?.ToString();

        internal PciAddress? GuestPciAddress { get; set; }

        /// <summary>
        /// True for a function the guest holds through <c>&lt;interface type='hostdev'&gt;</c> (an SR-IOV network
        /// function) rather than a <c>&lt;hostdev&gt;</c> element; <see cref="Xml"/> is then the interface element.
        /// </summary>
        public bool Interface { get; internal set; }

        /// <summary>The hostdev element as libvirt wrote it (or as the module generated it).</summary>
        public string Xml { get; internal set; }

        /// <summary>
        /// Whether the host (<see cref="HostObject.Root"/>) has the device the hostdev points at now: a PCI function at
        /// <see cref="Address"/>, or the live mediated device <see cref="Uuid"/>. False: the guest refers to a device that
        /// is gone (a card removed or moved, a vGPU not created) and will not start. Null where it was not looked at
        /// (the output of Add-GpuHostdev and Remove-GpuHostdev).
        /// </summary>
        public bool? Present { get; internal set; }

        /// <summary><c>vendor:device</c> of the PCI function found at <see cref="Address"/> now; null for an mdev or when none is there.</summary>
        public string? Ids { get; internal set; }

        /// <summary>What was found there now, in words: the PCI function's vendor and device, or the vGPU's type and parent.</summary>
        public string? Description { get; internal set; }

        /// <summary>
        /// <c>vendor:device</c> of the PCI function when Add-GpuHostdev attached it, from the host's change journal; null
        /// when the journal does not know (attached by other means). Differs from <see cref="Ids"/> when another card now
        /// sits at the address.
        /// </summary>
        public string? AttachedIds { get; internal set; }

        /// <summary>True when the function at the address is not the one that was attached (<see cref="Ids"/> differs from <see cref="AttachedIds"/>).</summary>
        public bool Changed => Present == true && AttachedIds != null && Ids != null && !string.Equals(Ids, AttachedIds, StringComparison.OrdinalIgnoreCase);

        /// <summary>The host function found for the hostdev: the PCI function itself, or a vGPU's parent; null when none.</summary>
        internal PciDevice? FoundDevice { get; set; }

        /// <summary>The source (host PCI address or UUID), as a device's ToString is its address.</summary>
        public override string ToString() => Source;
    }

    /// <summary>Parses mdev UUIDs as libvirt and sysfs write them.</summary>
    internal static class MdevUuid
    {
        public const string AcceptedForm = "8-4-4-4-12 hex digits, such as 30820a6f-b1a5-4503-91ca-0c10ba58692a";

        public static bool TryParse(string? text, out Guid uuid)
        {
            uuid = Guid.Empty;
            if (text is null) return false;
            var s = text.Trim();
            return s.Length == 36 && Guid.TryParseExact(s, "D", out uuid);
        }

        public static Guid Parse(string? text)
        {
            if (TryParse(text, out var uuid)) return uuid;
            throw new GpuVirtException(ErrorIds.InvalidMdevUuid, ErrorKind.InvalidArgument,
                $"'{text}' is not a mediated device UUID. Give {AcceptedForm}.", text);
        }

        public static string Format(Guid uuid) => uuid.ToString("D", CultureInfo.InvariantCulture);
    }
}
