using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class InventoryTests
{
    [Fact]
    public void Reads_the_seed_host_like_the_kernel_lays_it_out()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var inventory = new PciInventory(new HostRoot(root.Path));

        Assert.Equal(
            new[] { "0000:00:00.0", "0000:00:01.0", "0000:00:03.0", "0000:00:19.0", "0000:00:1f.0", "0000:00:1f.2", "0000:01:00.0", "0000:02:00.0", "0000:02:00.1" },
            inventory.Devices.Select(d => d.Address.ToString()));

        var quadro = inventory.Find(PciAddress.Parse("02:00.0"))!;
        Assert.Equal(0x10de, quadro.VendorId);
        Assert.Equal(0x11fa, quadro.DeviceId);
        Assert.Equal("10de:11fa", quadro.Ids);
        Assert.Equal(0x030000u, quadro.ClassCode);
        Assert.Equal("0300", quadro.ClassId);
        Assert.Equal((byte)0xa1, quadro.Revision);
        Assert.Equal("VGA compatible controller", quadro.ClassName);
        Assert.Equal("NVIDIA Corporation GK106GL [Quadro K4000]", quadro.Description);
        Assert.Equal("Quadro K4000", quadro.SubsystemName);
        Assert.Equal("pci-stub", quadro.Driver);
        Assert.Null(quadro.DriverOverride);
        Assert.Equal(13, quadro.IommuGroup);
        Assert.False(quadro.IsBridge);
        Assert.False(quadro.IsBootVga);
        Assert.Null(quadro.NumaNode);
        Assert.Equal("2.5 GT/s PCIe", quadro.CurrentLinkSpeed);
        Assert.Equal("8.0 GT/s PCIe", quadro.MaxLinkSpeed);
        Assert.Equal(16, quadro.MaxLinkWidth);
        Assert.Equal("/sys/devices/pci0000:00/0000:00:03.0/0000:02:00.0", quadro.SysfsPath);
        Assert.Equal(PciAddress.Parse("0000:00:03.0"), quadro.ParentBridgeAddress);

        var rootPort = inventory.Find(PciAddress.Parse("00:03.0"))!;
        Assert.True(rootPort.IsBridge);
        Assert.Null(rootPort.ParentBridge);
    }

    [Fact]
    public void Gpus_carry_companions_groups_and_vgpu_capability()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var gpus = new PciInventory(new HostRoot(root.Path), displayAsGpu: true).Gpus();

        Assert.Equal(new[] { "0000:01:00.0", "0000:02:00.0" }, gpus.Select(g => g.Address.ToString()));
        var p4 = gpus[0];
        Assert.Equal("3D", p4.DisplayKind);
        Assert.True(p4.SupportsMdev);
        Assert.Empty(p4.Companions);
        var quadro = gpus[1];
        Assert.Equal("VGA", quadro.DisplayKind);
        Assert.False(quadro.SupportsMdev);
        Assert.Equal("0000:02:00.1", Assert.Single(quadro.CompanionDevices).Address.ToString());
        Assert.Equal(13, quadro.IommuGroup);
    }

    [Fact]
    public void Two_socket_host_covers_domains_sriov_and_boot_vga()
    {
        using var root = new TempRoot();
        SampleHosts.TwoSocket(root.Path).Build();
        var inventory = new PciInventory(new HostRoot(root.Path), displayAsGpu: true);
        var all = inventory.Devices;

        Assert.Equal(all.Select(d => d.Address).OrderBy(a => a), all.Select(d => d.Address));
        Assert.Equal("10000:01:00.0", all[^1].Address.ToString());
        Assert.Equal("0001:00:00.0", all[^2].Address.ToString());
        Assert.Equal(1, inventory.Find(PciAddress.Parse("0000:81:00.0"))!.NumaNode);

        var nic = inventory.Find(PciAddress.Parse("0a:00.0"))!;
        Assert.Equal(64, nic.SriovTotalVfs);
        Assert.Equal(new[] { "0000:0a:02.0", "0000:0a:02.1" }, nic.VirtualFunctions.Select(a => a.ToString()));
        Assert.Equal(nic.Address, inventory.Find(PciAddress.Parse("0a:02.1"))!.PhysicalFunction);
        Assert.Null(inventory.Find(PciAddress.Parse("0a:02.1"))!.Driver);

        var gpus = inventory.Gpus();
        var ast = gpus.Single(g => g.VendorId == 0x1a03);
        Assert.True(ast.IsBootVga);
        Assert.Equal("/sys/devices/pci0000:00/0000:00:14.4/0000:09:00.0/0000:0b:00.0", ast.SysfsPath);
        var a40 = gpus.Single(g => g.PciAddress == PciAddress.Parse("01:00.0"));
        Assert.True(a40.SupportsSriovVgpu);
        Assert.Equal(4, a40.VgpuVirtualFunctions.Count);
        Assert.DoesNotContain(a40.CompanionDevices, c => c.IsDisplay);
        var amd = gpus.Single(g => g.VendorId == 0x1002);
        Assert.Equal("0000:04:00.1", Assert.Single(amd.CompanionDevices).Address.ToString());
    }

    [Fact]
    public void Iommu_groups_list_bridges_and_say_why_a_group_is_not_viable()
    {
        using var root = new TempRoot();
        SampleHosts.TwoSocket(root.Path).Build();
        var inventory = new PciInventory(new HostRoot(root.Path));
        var groups = IommuGroups.ReadAll(inventory);

        var shared = groups.Single(g => g.Number == 22);
        Assert.Equal(new[] { "0000:00:03.1", "0000:05:00.0", "0000:06:00.0", "0000:06:01.0", "0000:07:00.0", "0000:08:00.0" },
            shared.DeviceList.Select(d => d.Address.ToString()));
        Assert.Equal(new[] { "0000:07:00.0", "0000:08:00.0" }, shared.EndpointDevices.Select(d => d.Address.ToString()));
        Assert.False(shared.IsViable);
        Assert.Equal(new[] { "nvidia", "mlx5_core" }, shared.BlockerList.Select(b => b.Driver));
        Assert.Contains("mlx5_core", shared.BlockerList[1].Reason);
        Assert.Equal("DMA", shared.Type);

        Assert.True(groups.Single(g => g.Number == 42).IsViable);   // L4 on vfio-pci
        Assert.True(groups.Single(g => g.Number == 32).IsViable);   // VF with no driver
        var bridgeGroup = groups.Single(g => g.Number == 23);
        Assert.Equal(new[] { true, true, false }, bridgeGroup.DeviceList.Select(d => d.IsBridge));
    }

    [Fact]
    public void Seed_group_13_holds_the_gpu_and_its_audio_and_the_audio_blocks_it()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var group = IommuGroups.TryRead(new PciInventory(new HostRoot(root.Path)), 13)!;
        Assert.Equal(new[] { "0000:02:00.0", "0000:02:00.1" }, group.DeviceList.Select(d => d.Address.ToString()));
        var blocker = Assert.Single(group.BlockerList);
        Assert.Equal("0000:02:00.1", blocker.Address.ToString());
        Assert.Equal("snd_hda_intel", blocker.Driver);
    }

    [Fact]
    public void No_groups_means_the_iommu_is_off()
    {
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        foreach (var d in b.Devices) d.IommuGroup = null;
        b.Build();
        var inventory = new PciInventory(new HostRoot(root.Path));
        Assert.All(inventory.Devices, d => Assert.Null(d.IommuGroup));
        var e = Assert.Throws<GpuVirtException>(() => IommuGroups.ReadAll(inventory));
        Assert.Equal(ErrorIds.IommuNotEnabled, e.ErrorId);
        Assert.Contains("Enable-IommuBoot", e.Message);
    }

    [Fact]
    public void Missing_and_unreadable_attributes_never_stop_enumeration()
    {
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        b.Build();
        var dir = b.DeviceDirectory("0000:02:00.0");
        File.Delete(Path.Combine(dir, "revision"));
        File.Delete(Path.Combine(dir, "numa_node"));
        File.WriteAllText(Path.Combine(dir, "subsystem_vendor"), "garbage\n");
        Directory.CreateDirectory(Path.Combine(dir, "class.d"));
        File.Delete(Path.Combine(b.DeviceDirectory("0000:02:00.1"), "class"));
        // A dangling entry in /sys/bus/pci/devices (a device removed while listing).
        File.CreateSymbolicLink(Path.Combine(root.Path, "sys/bus/pci/devices/0000:03:00.0"), "../../../devices/pci0000:00/0000:03:00.0");

        var devices = new PciInventory(new HostRoot(root.Path)).Devices;
        Assert.Equal(9, devices.Count);
        var quadro = devices.Single(d => d.PciAddress == PciAddress.Parse("02:00.0"));
        Assert.Null(quadro.Revision);
        Assert.Null(quadro.SubsystemVendorId);
        Assert.Equal("10de:11fa", quadro.Ids);
        Assert.Equal(0u, devices.Single(d => d.PciAddress == PciAddress.Parse("02:00.1")).ClassCode);
    }

    [Fact]
    public void An_empty_root_has_no_devices()
    {
        using var root = new TempRoot();
        Assert.Empty(new PciInventory(new HostRoot(root.Path)).Devices);
        Assert.False(IommuGroups.IsEnabled(new HostRoot(root.Path)));
    }

    [Fact]
    public void The_live_sys_reads_without_error()
    {
        var devices = new PciInventory(HostRoot.Live).Devices;
        Assert.Equal(Directory.GetFileSystemEntries("/sys/bus/pci/devices").Length, devices.Count);
        Assert.All(devices, d => Assert.NotEqual(0, d.VendorId));
    }
}
