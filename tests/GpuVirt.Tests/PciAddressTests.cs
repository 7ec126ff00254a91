using GpuVirt.Core;

namespace GpuVirt.Tests;

public class PciAddressTests
{
    [Theory]
    [InlineData("0000:02:00.0", 0u, 2, 0, 0)]
    [InlineData("02:00.1", 0u, 2, 0, 1)]
    [InlineData("pci_0000_02_00_0", 0u, 2, 0, 0)]
    [InlineData("10000:01:00.0", 0x10000u, 1, 0, 0)]
    [InlineData("ffffffff:ff:1f.7", 0xffffffffu, 0xff, 0x1f, 7)]
    [InlineData("0000:00:0A.0", 0u, 0, 10, 0)]
    [InlineData("  0000:81:00.0 ", 0u, 0x81, 0, 0)]
    public void Parses_every_accepted_form(string text, uint domain, int bus, int device, int function)
    {
        var a = PciAddress.Parse(text);
        Assert.Equal(domain, a.Domain);
        Assert.Equal(bus, a.Bus);
        Assert.Equal(device, a.Device);
        Assert.Equal(function, a.Function);
    }

    [Theory]
    [InlineData("")]
    [InlineData("02:00")]
    [InlineData("000:02:00.0")]
    [InlineData("123456789:02:00.0")]
    [InlineData("0000:02:20.0")]
    [InlineData("0000:02:00.8")]
    [InlineData("0000:2:00.0")]
    [InlineData("pci_0000_02_00")]
    [InlineData("0000:02:00.0; rm -rf /")]
    [InlineData("gg:00.0")]
    public void Rejects_anything_else_with_the_accepted_forms(string text)
    {
        var e = Assert.Throws<GpuVirtException>(() => PciAddress.Parse(text));
        Assert.Equal(ErrorIds.InvalidPciAddress, e.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("pci_0000_02_00_0", e.Message);
        Assert.Contains("02:00.0", e.Message);
    }

    [Fact]
    public void Renders_kernel_libvirt_and_xorg_forms()
    {
        var a = PciAddress.Parse("0000:00:0a.0");
        Assert.Equal("0000:00:0a.0", a.ToString());
        Assert.Equal("pci_0000_00_0a_0", a.NodeDeviceName);
        Assert.Equal("PCI:0:10:0", a.XorgBusId);
        Assert.Equal(("0x0000", "0x00", "0x0a", "0x0"), (a.LibvirtDomain, a.LibvirtBus, a.LibvirtSlot, a.LibvirtFunction));

        var vmd = PciAddress.Parse("10000:e1:1f.7");
        Assert.Equal("10000:e1:1f.7", vmd.ToString());
        Assert.Equal("pci_10000_e1_1f_7", vmd.NodeDeviceName);
        Assert.Equal("PCI:225@65536:31:7", vmd.XorgBusId);
        Assert.Equal(vmd, PciAddress.Parse(vmd.NodeDeviceName));
    }

    [Fact]
    public void Seed_guest_address_becomes_the_seed_bus_id()
    {
        Assert.Equal("PCI:0:9:0", PciAddress.Parse("00:09.0").XorgBusId);
    }

    [Fact]
    public void Sorts_numerically_not_as_text()
    {
        var list = new[] { "10000:00:00.0", "0000:0a:00.0", "0000:02:00.1", "0001:00:00.0", "0000:02:00.0", "0000:00:1f.2" }
            .Select(PciAddress.Parse).OrderBy(a => a).Select(a => a.ToString()).ToList();
        Assert.Equal(new[] { "0000:00:1f.2", "0000:02:00.0", "0000:02:00.1", "0000:0a:00.0", "0001:00:00.0", "10000:00:00.0" }, list);
        Assert.True(PciAddress.Parse("02:00.0") == PciAddress.Parse("pci_0000_02_00_0"));
        Assert.True(PciAddress.Parse("02:00.0") < PciAddress.Parse("02:00.1"));
    }
}
