using GpuVirt.Core;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>
/// Issue 29: what a guest's hostdevs point at now against what was attached (item 5), and the Xorg Device sections of a
/// guest's display functions (item 8), on the core.
/// </summary>
public class FieldPipelineTests
{
    private static readonly PciAddress Quadro = PciAddress.Parse("0000:02:00.0");
    private static readonly PciAddress Audio = PciAddress.Parse("0000:02:00.1");

    private static ChangeRecord Attach(int id, string domain, PciAddress address, string? ids, string? connect = null)
    {
        var record = new HostdevRequest(domain, HostdevSource.Pci(address)) { Ids = ids }.Journaled(domain, DeviceChangeScope.Persistent, attach: true, null);
        record.Id = id;
        record.Connect = connect;
        return record;
    }

    private static ChangeRecord Detach(int id, string domain, PciAddress address, string? connect = null)
    {
        var record = new HostdevRequest(domain, HostdevSource.Pci(address)).Journaled(domain, DeviceChangeScope.Persistent, attach: false, null);
        record.Id = id;
        record.Connect = connect;
        return record;
    }

    [Fact]
    public void Item5_An_attach_journals_the_vendor_device_it_attached_and_the_journal_keeps_it()
    {
        var record = Attach(1, "vm1", Quadro, "10de:11fa");
        Assert.Equal("10de:11fa", Assert.Single(record.Inverse).Ids);
        Assert.Null(Assert.Single(Detach(2, "vm1", Quadro).Inverse).Ids);
        var back = Assert.Single(ChangeJournal.Parse(ChangeJournal.Format(new[] { record })));
        Assert.Equal("10de:11fa", Assert.Single(back.Inverse).Ids);
        Assert.Equal("0000:02:00.0", back.Inverse[0].Address);
    }

    [Fact]
    public void Item5_What_was_attached_is_the_last_standing_attach_of_that_guest_address_and_connection()
    {
        var records = new List<ChangeRecord>
        {
            Attach(1, "vm1", Quadro, "10de:11fa"),
            Attach(2, "vm2", Quadro, "10de:1eb8"),
            Attach(3, "vm1", Audio, "10de:0e0b", connect: "qemu:///session"),
        };
        Assert.Equal("10de:11fa", HostdevPresence.AttachedIds(records, "vm1", null, Quadro));
        Assert.Equal("10de:1eb8", HostdevPresence.AttachedIds(records, "vm2", null, Quadro));
        Assert.Equal("10de:0e0b", HostdevPresence.AttachedIds(records, "vm1", "qemu:///session", Audio));
        Assert.Null(HostdevPresence.AttachedIds(records, "vm1", null, Audio));
        Assert.Null(HostdevPresence.AttachedIds(records, "vm3", null, Quadro));

        // Detached since, or the attach taken back: the journal no longer says what the guest has there.
        records.Add(Detach(4, "vm1", Quadro));
        Assert.Null(HostdevPresence.AttachedIds(records, "vm1", null, Quadro));
        records.Add(Attach(5, "vm1", Quadro, "10de:11fa"));
        Assert.Equal("10de:11fa", HostdevPresence.AttachedIds(records, "vm1", null, Quadro));
        records[4].UndoneBy = 6;
        Assert.Null(HostdevPresence.AttachedIds(records, "vm1", null, Quadro));
    }

    [Fact]
    public void Item5_Hostdevs_are_present_missing_or_changed_against_the_host_and_the_journal()
    {
        using var temp = new TempRoot();
        SampleHosts.Seed(temp.Path).Build();
        var inventory = new PciInventory(new HostRoot(temp.Path));
        var here = new Hostdev("vm1", HostdevSource.Pci(Quadro), string.Empty);
        var moved = new Hostdev("vm1", HostdevSource.Pci(Audio), string.Empty);
        var gone = new Hostdev("vm1", HostdevSource.Pci(PciAddress.Parse("0000:05:00.0")), string.Empty);
        var vgpu = new Hostdev("vm2", HostdevSource.Mdev(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a")), string.Empty);
        var journal = new[]
        {
            Attach(1, "vm1", Quadro, "10de:11fa"),
            Attach(2, "vm1", Audio, "8086:153a"),
            Attach(3, "vm1", PciAddress.Parse("0000:05:00.0"), "10de:1eb8"),
        };
        HostdevPresence.Fill(new[] { here, moved, gone, vgpu }, inventory, journal);

        Assert.True(here.Present);
        Assert.Equal(("10de:11fa", "10de:11fa", false), (here.Ids, here.AttachedIds, here.Changed));
        Assert.StartsWith("NVIDIA Corporation ", here.Description);
        Assert.Equal(Quadro, here.FoundDevice!.PciAddress);

        Assert.True(moved.Present);
        Assert.Equal(("10de:0e0b", "8086:153a", true), (moved.Ids, moved.AttachedIds, moved.Changed));

        Assert.False(gone.Present);
        Assert.Equal(((string?)null, "10de:1eb8", false), (gone.Ids, gone.AttachedIds, gone.Changed));
        Assert.Null(gone.FoundDevice);

        Assert.False(vgpu.Present);
        Assert.Null(vgpu.FoundDevice);
    }

    [Fact]
    public void Item5_A_live_vgpu_is_present_with_its_type_and_its_parent_found()
    {
        using var temp = new TempRoot();
        const string uuid = "30820a6f-b1a5-4503-91ca-0c10ba58692a";
        var b = SampleHosts.Seed(temp.Path);
        b.AddMdev(new FixtureMdevDevice(uuid, "0000:01:00.0", "nvidia-63", 20));
        b.Build();
        var vgpu = new Hostdev("vm2", HostdevSource.Mdev(Guid.Parse(uuid)), string.Empty);
        HostdevPresence.Fill(new[] { vgpu }, new PciInventory(new HostRoot(temp.Path)), null);
        Assert.True(vgpu.Present);
        Assert.Equal("vGPU GRID P4-1Q on 0000:01:00.0", vgpu.Description);
        Assert.Equal("0000:01:00.0", vgpu.FoundDevice!.Address);
        Assert.True(vgpu.FoundDevice.IsDisplay);
    }

    [Theory]
    [InlineData((ushort)0x10de, "nvidia")]
    [InlineData((ushort)0x1002, "amdgpu")]
    [InlineData((ushort)0x8086, "modesetting")]
    [InlineData((ushort)0x1af4, "modesetting")]
    [InlineData((ushort)0x1234, "modesetting")]
    public void Item8_The_Xorg_driver_is_the_one_for_the_vendor(ushort vendor, string driver) =>
        Assert.Equal(driver, XorgConfig.DriverFor(vendor));

    [Theory]
    [InlineData("Device0", 0, "Device0")]
    [InlineData("Device0", 1, "Device1")]
    [InlineData("Device0", 12, "Device12")]
    [InlineData("GPU1", 1, "GPU2")]
    [InlineData("Card", 0, "Card")]
    [InlineData("Card", 2, "Card2")]
    [InlineData("7", 1, "8")]
    public void Item8_Sections_are_numbered_from_the_first_identifier(string first, int index, string expected) =>
        Assert.Equal(expected, XorgConfig.Identifier(first, index));

    [Fact]
    public void Item8_The_vendor_name_comes_from_pci_ids_else_the_known_vendors_else_no_line()
    {
        Assert.Equal("NVIDIA Corporation", XorgConfig.VendorNameFor(new PciDevice { VendorId = 0x10de }));
        Assert.Equal("Advanced Micro Devices, Inc. [AMD/ATI]", XorgConfig.VendorNameFor(new PciDevice { VendorId = 0x1002 }));
        Assert.Equal("Intel Corporation", XorgConfig.VendorNameFor(new PciDevice { VendorId = 0x8086 }));
        Assert.Equal("Red Hat, Inc.", XorgConfig.VendorNameFor(new PciDevice { VendorId = 0x1af4, VendorName = "Red Hat, Inc." }));
        Assert.Null(XorgConfig.VendorNameFor(new PciDevice { VendorId = 0x1234 }));
        var section = XorgConfig.DeviceSection(PciAddress.Parse("00:0a.0"), "Device1", "modesetting", null);
        Assert.Equal("Section \"Device\"\n    Identifier     \"Device1\"\n    Driver         \"modesetting\"\n    BusID          \"PCI:0:10:0\"\nEndSection", section);
    }
}
