using System.Xml.Linq;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class HostdevXmlTests
{
    // The procedure's own fragments (16.16, 16.7.2.1, 16.7.2.2).
    private const string SeedPci = """
        <hostdev mode='subsystem' type='pci' managed='yes'>
         <driver name='vfio'/>
         <source>
          <address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
         </source>
        </hostdev>
        """;

    private const string SeedMdev = """
        <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'>
          <source>
            <address uuid='30820a6f-b1a5-4503-91ca-0c10ba58692a'/>
          </source>
        </hostdev>
        """;

    private const string SeedMdevDisplay = """
        <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='on'>
           <source>
              <address uuid='ba26a3e2-8e1e-4f39-9de7-b26bd210268a'/>
           </source>
        </hostdev>
        """;

    private static bool SameXml(string a, string b) =>
        XNode.DeepEquals(XElement.Parse(a, LoadOptions.None), XElement.Parse(b, LoadOptions.None));

    [Fact]
    public void The_PCI_hostdev_is_the_seeds_fragment()
    {
        var xml = HostdevXml.Pci(PciAddress.Parse("0000:02:00.0"));
        Assert.True(SameXml(SeedPci, xml), xml);
        Assert.StartsWith("<hostdev mode='subsystem' type='pci' managed='yes'>\n <driver name='vfio' />\n <source>\n  <address domain='0x0000' bus='0x02' slot='0x00' function='0x0' />",
            xml.Replace("\r\n", "\n"));
    }

    [Fact]
    public void Unmanaged_PCI_and_wide_domains_keep_every_field()
    {
        var xml = HostdevXml.Pci(PciAddress.Parse("10000:e1:1f.7"), managed: false);
        var e = XElement.Parse(xml);
        Assert.Equal("no", (string?)e.Attribute("managed"));
        var a = e.Element("source")!.Element("address")!;
        Assert.Equal(("0x10000", "0xe1", "0x1f", "0x7"), ((string?)a.Attribute("domain"), (string?)a.Attribute("bus"), (string?)a.Attribute("slot"), (string?)a.Attribute("function")));
    }

    [Fact]
    public void The_mdev_hostdevs_are_the_seeds_fragments()
    {
        Assert.True(SameXml(SeedMdev, HostdevXml.Mdev(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a"))));
        Assert.True(SameXml(SeedMdevDisplay, HostdevXml.Mdev(Guid.Parse("BA26A3E2-8E1E-4F39-9DE7-B26BD210268A"), display: true)));
    }

    [Fact]
    public void Generated_hostdevs_read_back_as_the_same_source()
    {
        var pci = DomainXml.ParseHostdev("vm1", HostdevXml.Pci(PciAddress.Parse("02:00.1")));
        Assert.Equal(HostdevKind.Pci, pci.Kind);
        Assert.Equal(PciAddress.Parse("0000:02:00.1"), pci.PciAddress);
        Assert.True(pci.Managed);
        Assert.Equal("vfio", pci.Driver);
        Assert.Null(pci.GuestAddress);

        var mdev = DomainXml.ParseHostdev("vm1", HostdevXml.Mdev(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a"), true));
        Assert.Equal(HostdevKind.Mdev, mdev.Kind);
        Assert.Equal(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a"), mdev.Uuid);
        Assert.False(mdev.Managed);
        Assert.True(mdev.Display);
        Assert.Equal("vfio-pci", mdev.Model);
        Assert.Equal("30820a6f-b1a5-4503-91ca-0c10ba58692a", mdev.Source.ToString());
    }

    [Theory]
    [InlineData("30820a6f-b1a5-4503-91ca-0c10ba58692a", true)]
    [InlineData(" 30820A6F-B1A5-4503-91CA-0C10BA58692A ", true)]
    [InlineData("30820a6fb1a5450391ca0c10ba58692a", false)]
    [InlineData("{30820a6f-b1a5-4503-91ca-0c10ba58692a}", false)]
    [InlineData("30820a6f-b1a5-4503-91ca-0c10ba58692'", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void Mdev_uuids_are_the_8_4_4_4_12_form_only(string? text, bool valid)
    {
        Assert.Equal(valid, MdevUuid.TryParse(text, out _));
        if (!valid) Assert.Equal(ErrorIds.InvalidMdevUuid, Assert.Throws<GpuVirtException>(() => MdevUuid.Parse(text)).ErrorId);
    }

    [Fact]
    public void Domain_xml_with_a_DTD_is_refused_rather_than_expanded()
    {
        const string evil = "<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><domain><name>&x;</name></domain>";
        Assert.Equal(ErrorIds.InvalidDomainXml, Assert.Throws<GpuVirtException>(() => DomainXml.Parse(evil)).ErrorId);
    }

    [Fact]
    public void Every_generated_hostdev_is_valid_in_a_whole_domain_by_virt_xml_validate()
    {
        using var dir = new TempRoot();
        var fragments = new[]
        {
            HostdevXml.Pci(PciAddress.Parse("0000:02:00.0")),
            HostdevXml.Pci(PciAddress.Parse("0000:02:00.1"), managed: false),
            HostdevXml.Pci(PciAddress.Parse("10000:e1:1f.7")),
            HostdevXml.Mdev(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a")),
            HostdevXml.Mdev(Guid.Parse("ba26a3e2-8e1e-4f39-9de7-b26bd210268a"), display: true),
        };
        var domain = XElement.Parse(LibvirtFixture.Domain("validate-me", graphics: true));
        foreach (var f in fragments) domain.Element("devices")!.Add(XElement.Parse(f));
        var path = Path.Combine(dir.Path, "domain.xml");
        File.WriteAllText(path, domain.ToString());

        var result = new ProcessRunner().Run("virt-xml-validate", new[] { path, "domain" }, check: false);
        Assert.True(result.ExitCode == 0, result.StandardError + result.StandardOutput);
        Assert.Contains(path + " validates", result.StandardError);

        // The validator is not lenient: a hostdev without its source is refused.
        domain.Element("devices")!.Add(XElement.Parse("<hostdev mode='subsystem' type='pci' managed='yes'/>"));
        File.WriteAllText(path, domain.ToString());
        Assert.NotEqual(0, new ProcessRunner().Run("virt-xml-validate", new[] { path, "domain" }, check: false).ExitCode);
    }
}
