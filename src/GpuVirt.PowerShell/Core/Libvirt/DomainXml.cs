using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Xml;
using System.Xml.Linq;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>What the module reads from a guest's definition: its name, UUID and PCI and mdev hostdevs (<c>&lt;interface type='hostdev'&gt;</c> among them).</summary>
    internal sealed class DomainDefinition
    {
        public DomainDefinition(string name, Guid? uuid, IReadOnlyList<Hostdev> hostdevs, string xml)
        {
            Name = name;
            Uuid = uuid;
            Hostdevs = hostdevs;
            Xml = xml;
        }

        public string Name { get; }
        public Guid? Uuid { get; }
        public IReadOnlyList<Hostdev> Hostdevs { get; }

        /// <summary>The whole document as virsh printed it.</summary>
        public string Xml { get; }
    }

    /// <summary>Reads libvirt domain XML (<c>virsh dumpxml</c>) and hostdev elements. No DTDs, no external entities.</summary>
    internal static class DomainXml
    {
        public static XDocument Load(string xml, string what)
        {
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreComments = true };
            try
            {
                using var reader = XmlReader.Create(new StringReader(xml), settings);
                return XDocument.Load(reader, LoadOptions.None);
            }
            catch (XmlException e)
            {
                throw new GpuVirtException(ErrorIds.InvalidDomainXml, ErrorKind.InvalidData,
                    $"The XML of {what} cannot be read: {e.Message}", what, e);
            }
        }

        /// <summary>Parses a whole <c>&lt;domain&gt;</c> document.</summary>
        public static DomainDefinition Parse(string xml)
        {
            var doc = Load(xml, "a domain");
            var root = doc.Root;
            if (root is null || root.Name.LocalName != "domain")
            {
                throw new GpuVirtException(ErrorIds.InvalidDomainXml, ErrorKind.InvalidData,
                    "The document is not a libvirt <domain> definition.", null);
            }
            var name = (string?)root.Element("name") ?? string.Empty;
            Guid? uuid = Guid.TryParse((string?)root.Element("uuid"), out var u) ? u : (Guid?)null;
            var hostdevs = new List<Hostdev>();
            var devices = root.Element("devices");
            if (devices != null)
            {
                // Both forms that give a guest a host PCI function: <hostdev>, and <interface type='hostdev'> (libvirt's
                // form for SR-IOV network functions), in document order.
                foreach (var element in devices.Elements())
                {
                    var hostdev = element.Name.LocalName == "interface" ? TryReadHostdevInterface(name, element) : TryReadHostdev(name, element);
                    if (hostdev != null) hostdevs.Add(hostdev);
                }
            }
            return new DomainDefinition(name, uuid, hostdevs, xml);
        }

        /// <summary>Reads one hostdev element, or an <c>&lt;interface type='hostdev'&gt;</c> (standalone XML, as a device file holds it).</summary>
        public static Hostdev ParseHostdev(string domain, string xml)
        {
            var root = Load(xml, "a hostdev").Root;
            var hostdev = root is null ? null : TryReadHostdev(domain, root) ?? TryReadHostdevInterface(domain, root);
            return hostdev ?? throw new GpuVirtException(ErrorIds.InvalidDomainXml, ErrorKind.InvalidData,
                "The XML is not a PCI or mdev <hostdev> (or an <interface type='hostdev'>) with a source address.", xml);
        }

        /// <summary>A subsystem hostdev of type pci or mdev with a readable source; null for anything else (USB, SCSI, caps).</summary>
        public static Hostdev? TryReadHostdev(string domain, XElement element)
        {
            if (element.Name.LocalName != "hostdev") return null;
            var mode = (string?)element.Attribute("mode") ?? "subsystem";
            if (mode != "subsystem") return null;
            var type = (string?)element.Attribute("type");
            var sourceAddress = element.Element("source")?.Element("address");
            if (sourceAddress is null) return null;

            HostdevSource source;
            if (type == "pci")
            {
                var address = TryReadPciAddress(sourceAddress);
                if (address is null) return null;
                source = HostdevSource.Pci(address.Value);
            }
            else if (type == "mdev")
            {
                if (!MdevUuid.TryParse((string?)sourceAddress.Attribute("uuid"), out var uuid)) return null;
                source = HostdevSource.Mdev(uuid);
            }
            else
            {
                return null;
            }

            var guest = element.Elements("address").FirstOrDefault(a => ((string?)a.Attribute("type") ?? "pci") == "pci");
            return new Hostdev(domain, source, element.ToString(SaveOptions.None))
            {
                Managed = (string?)element.Attribute("managed") == "yes",
                Model = (string?)element.Attribute("model"),
                Display = (string?)element.Attribute("display") == "on",
                Driver = (string?)element.Element("driver")?.Attribute("name"),
                GuestPciAddress = guest is null ? null : TryReadPciAddress(guest),
            };
        }

        /// <summary>
        /// An <c>&lt;interface type='hostdev'&gt;</c> with a PCI source: the guest holds that host function as it would
        /// through a PCI hostdev (libvirt keeps it among the domain's hostdevs). Its <see cref="Hostdev.Xml"/> is the
        /// interface element, which is what detaches it again. Null for any other interface.
        /// </summary>
        public static Hostdev? TryReadHostdevInterface(string domain, XElement element)
        {
            if (element.Name.LocalName != "interface" || (string?)element.Attribute("type") != "hostdev") return null;
            var sourceAddress = element.Element("source")?.Element("address");
            if (sourceAddress is null || ((string?)sourceAddress.Attribute("type") ?? "pci") != "pci") return null;
            var address = TryReadPciAddress(sourceAddress);
            if (address is null) return null;
            var guest = element.Elements("address").FirstOrDefault(a => ((string?)a.Attribute("type") ?? "pci") == "pci");
            return new Hostdev(domain, HostdevSource.Pci(address.Value), element.ToString(SaveOptions.None))
            {
                Managed = (string?)element.Attribute("managed") == "yes",
                Driver = (string?)element.Element("driver")?.Attribute("name"),
                GuestPciAddress = guest is null ? null : TryReadPciAddress(guest),
                Interface = true,
            };
        }

        /// <summary>Reads libvirt's <c>&lt;address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/&gt;</c>.</summary>
        public static PciAddress? TryReadPciAddress(XElement address)
        {
            var domain = ParseNumber((string?)address.Attribute("domain") ?? "0");
            var bus = ParseNumber((string?)address.Attribute("bus"));
            var slot = ParseNumber((string?)address.Attribute("slot"));
            var function = ParseNumber((string?)address.Attribute("function") ?? "0");
            if (domain is null || bus is null || slot is null || function is null) return null;
            if (bus > 0xff || slot > 0x1f || function > 7) return null;
            return new PciAddress(domain.Value, (byte)bus.Value, (byte)slot.Value, (byte)function.Value);
        }

        /// <summary>libvirt writes these fields as <c>0x..</c> hex but accepts decimal too.</summary>
        private static uint? ParseNumber(string? text)
        {
            if (string.IsNullOrEmpty(text)) return null;
            var s = text!.Trim();
            if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                return uint.TryParse(s.Substring(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h) ? h : (uint?)null;
            }
            return uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d : (uint?)null;
        }
    }
}
