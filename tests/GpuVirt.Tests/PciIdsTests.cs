using GpuVirt.Core;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class PciIdsTests
{
    private static readonly PciIds Ids = PciIds.Parse(new StringReader(SampleHosts.PciIdsSubset));

    [Fact]
    public void Names_vendors_devices_and_subsystems()
    {
        Assert.Equal("NVIDIA Corporation", Ids.VendorName(0x10de));
        Assert.Equal("GK106GL [Quadro K4000]", Ids.DeviceName(0x10de, 0x11fa));
        Assert.Equal("Quadro K4000", Ids.SubsystemName(0x10de, 0x11fa, 0x10de, 0x097c));
        Assert.Null(Ids.DeviceName(0x10de, 0xffff));
        Assert.Null(Ids.VendorName(0x1234));
    }

    [Fact]
    public void Names_classes_by_the_most_specific_entry()
    {
        Assert.Equal("VGA compatible controller", Ids.ClassName(0x030000));
        Assert.Equal("3D controller", Ids.ClassName(0x030200));
        Assert.Equal("Display controller", Ids.BaseClassName(0x030200));
        Assert.Equal("Display controller", Ids.ClassName(0x03ff00));
        Assert.Equal("AHCI 1.0", Ids.ProgIfName(0x010601));
        Assert.Null(Ids.ClassName(0xff0000));
    }

    [Fact]
    public void A_host_without_pci_ids_has_no_names()
    {
        using var root = new TempRoot();
        var ids = PciIds.For(new HostRoot(root.Path));
        Assert.Same(PciIds.Empty, ids);
        Assert.Null(ids.VendorName(0x10de));
    }

    [Fact]
    public void Hwdata_location_wins_over_debian_location_and_is_parsed_once()
    {
        using var root = new TempRoot();
        Directory.CreateDirectory(Path.Combine(root.Path, "usr/share/hwdata"));
        Directory.CreateDirectory(Path.Combine(root.Path, "usr/share/misc"));
        File.WriteAllText(Path.Combine(root.Path, "usr/share/hwdata/pci.ids"), "10de  From hwdata\n");
        File.WriteAllText(Path.Combine(root.Path, "usr/share/misc/pci.ids"), "10de  From misc\n");
        var host = new HostRoot(root.Path);
        var first = PciIds.For(host);
        Assert.Equal("From hwdata", first.VendorName(0x10de));
        Assert.Same(first, PciIds.For(host));
    }

    [Fact]
    public void Parses_the_machines_own_database_when_it_has_one()
    {
        var path = HostPaths.PciIds.FirstOrDefault(File.Exists);
        Assert.True(path != null, "pci.ids (Debian package pci.ids or hwdata) must be installed for the tests");
        var ids = PciIds.Load(path!);
        Assert.Equal("NVIDIA Corporation", ids.VendorName(0x10de));
        Assert.Equal("GK106GL [Quadro K4000]", ids.DeviceName(0x10de, 0x11fa));
        Assert.Equal("VGA compatible controller", ids.ClassName(0x030000));
    }
}
