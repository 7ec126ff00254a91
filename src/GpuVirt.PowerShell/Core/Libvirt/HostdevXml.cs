using System.IO;
using System.Text;
using System.Xml;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// Writes hostdev elements with an XML writer, in the shape the procedure shows (16.16 and 16.7.2.1):
    /// <code>
    /// &lt;hostdev mode='subsystem' type='pci' managed='yes'&gt;
    ///  &lt;driver name='vfio'/&gt;
    ///  &lt;source&gt;
    ///   &lt;address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/&gt;
    ///  &lt;/source&gt;
    /// &lt;/hostdev&gt;
    ///
    /// &lt;hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='on'&gt;
    ///  &lt;source&gt;
    ///   &lt;address uuid='30820a6f-b1a5-4503-91ca-0c10ba58692a'/&gt;
    ///  &lt;/source&gt;
    /// &lt;/hostdev&gt;
    /// </code>
    /// </summary>
    internal static class HostdevXml
    {
        /// <summary>A PCI hostdev with the vfio driver; <paramref name="managed"/> lets libvirt detach the host driver itself.</summary>
        public static string Pci(PciAddress address, bool managed = true) => Write(w =>
        {
            w.WriteStartElement("hostdev");
            w.WriteAttributeString("mode", "subsystem");
            w.WriteAttributeString("type", "pci");
            w.WriteAttributeString("managed", managed ? "yes" : "no");
            w.WriteStartElement("driver");
            w.WriteAttributeString("name", "vfio");
            w.WriteEndElement();
            w.WriteStartElement("source");
            w.WriteStartElement("address");
            w.WriteAttributeString("domain", address.LibvirtDomain);
            w.WriteAttributeString("bus", address.LibvirtBus);
            w.WriteAttributeString("slot", address.LibvirtSlot);
            w.WriteAttributeString("function", address.LibvirtFunction);
            w.WriteEndElement();
            w.WriteEndElement();
            w.WriteEndElement();
        });

        /// <summary>A mediated-device hostdev (vGPU); <paramref name="display"/> writes <c>display='on'</c>.</summary>
        public static string Mdev(System.Guid uuid, bool display = false) => Write(w =>
        {
            w.WriteStartElement("hostdev");
            w.WriteAttributeString("mode", "subsystem");
            w.WriteAttributeString("type", "mdev");
            w.WriteAttributeString("managed", "no");
            w.WriteAttributeString("model", "vfio-pci");
            if (display) w.WriteAttributeString("display", "on");
            w.WriteStartElement("source");
            w.WriteStartElement("address");
            w.WriteAttributeString("uuid", MdevUuid.Format(uuid));
            w.WriteEndElement();
            w.WriteEndElement();
            w.WriteEndElement();
        });

        /// <summary>The hostdev for a source: PCI (managed as given) or mdev (display as given).</summary>
        public static string For(HostdevSource source, bool managed = true, bool display = false) =>
            source.Kind == HostdevKind.Pci ? Pci(source.Address.GetValueOrDefault(), managed) : Mdev(source.Uuid.GetValueOrDefault(), display);

        private static string Write(System.Action<XmlWriter> body)
        {
            var sb = new StringBuilder();
            using (var text = new StringWriter(sb, System.Globalization.CultureInfo.InvariantCulture))
            using (var writer = new XmlTextWriter(text) { Formatting = Formatting.Indented, Indentation = 1, IndentChar = ' ', QuoteChar = '\'' })
            {
                body(writer);
                writer.Flush();
            }
            return sb.Append('\n').ToString();
        }
    }
}
