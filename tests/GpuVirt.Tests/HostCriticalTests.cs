using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Safety;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class HostCriticalTests
{
    private static PciAddress A(string s) => PciAddress.Parse(s);

    [Fact]
    public void Storage_behind_dm_over_a_partition_md_and_swap_is_traced_to_its_controllers()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var critical = HostCriticalDevices.Read(new HostRoot(root.Path));

        Assert.Equal(new[]
        {
            "mounted filesystem / (xfs on /dev/mapper/vg-dm0: dm-0 over sda2)",
            "mounted filesystem /boot (xfs on /dev/sda1)",
            "active swap /dev/sda3",
        }, critical.For(A("00:1f.2")).Select(d => d.Reason));
        Assert.Equal(new[] { HostDependencyKind.Filesystem, HostDependencyKind.Filesystem, HostDependencyKind.Swap }, critical.For(A("00:1f.2")).Select(d => d.Kind));
        Assert.Equal("mounted filesystem /srv (ext4 on /dev/md0: md0 over nvme0n1p1)", critical.Describe(A("00:1b.0")));
        Assert.Equal("mounted filesystem /srv (ext4 on /dev/md0: md0 over nvme1n1p1)", critical.Describe(A("00:1c.0")));
    }

    [Fact]
    public void A_mount_source_is_followed_by_name_when_its_numbers_are_not_a_block_device()
    {
        // btrfs shows an anonymous device number (0:NN) in mountinfo; the source still names the partition.
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        b.Usage.Disk("sda", "0000:00:1f.2", "ata1/host0/target0:0:0/0:0:0:0").Partition("sda1", "sda")
            .Mount("/home\\040x", "/dev/sda1", "btrfs", majorMinor: "0:33");
        b.Build();
        var critical = HostCriticalDevices.Read(new HostRoot(root.Path));
        Assert.Equal("mounted filesystem /home x (btrfs on /dev/sda1)", critical.Describe(A("00:1f.2")));
        Assert.Single(critical.All);
    }

    [Fact]
    public void Nics_with_routes_are_traced_through_bridges_bonds_and_vlans_and_link_local_routes_do_not_count()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var critical = HostCriticalDevices.Read(new HostRoot(root.Path));

        Assert.Equal("network interface br0 carries the IPv4 default route, the IPv4 route 192.168.1.0/24 (br0 over bond0 over eth0)", critical.Describe(A("00:19.0")));
        Assert.Equal("network interface br0 carries the IPv4 default route, the IPv4 route 192.168.1.0/24 (br0 over bond0 over eth1)", critical.Describe(A("00:10.0")));
        Assert.Equal("network interface eth2.100 carries the IPv6 route 2001:db8::/64 (eth2.100 over eth2)", critical.Describe(A("00:11.0")));
        Assert.False(critical.IsCritical(A("00:12.0")));
        Assert.Equal(HostDependencyKind.Network, critical.For(A("00:11.0")).Single().Kind);
    }

    [Fact]
    public void The_console_gpu_and_a_framebuffer_device_are_host_critical()
    {
        using var root = new TempRoot();
        var b = SampleHosts.TwoSocket(root.Path);
        b.Usage.Framebuffer("fb0", "0000:04:00.0");
        b.Build();
        var critical = HostCriticalDevices.Read(new HostRoot(root.Path));
        Assert.Equal("console GPU (boot_vga)", critical.Describe(A("0b:00.0")));
        Assert.Equal("framebuffer fb0 (console display)", critical.Describe(A("04:00.0")));
        Assert.Equal(2, critical.All.Count);
    }

    [Fact]
    public void The_physical_function_of_a_needed_virtual_function_is_needed()
    {
        using var root = new TempRoot();
        var b = SampleHosts.TwoSocket(root.Path);
        b.Usage.Net("ens1f0v0", "0000:0a:02.0").Route("ens1f0v0");
        b.Build();
        var critical = HostCriticalDevices.Read(new HostRoot(root.Path));
        Assert.Equal("network interface ens1f0v0 carries the IPv4 default route", critical.Describe(A("0a:02.0")));
        Assert.Equal("physical function of 0000:0a:02.0, whose network interface ens1f0v0 carries the IPv4 default route", critical.Describe(A("0a:00.0")));
    }

    [Fact]
    public void A_quiet_tree_has_no_host_critical_device()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var inventory = new PciInventory(new HostRoot(root.Path));
        Assert.Empty(inventory.HostCritical.All);
        Assert.All(inventory.Devices, d => Assert.Equal(string.Empty, d.HostCritical));
    }

    [Fact]
    public void PciDevice_and_IommuGroup_show_what_the_host_needs()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var inventory = new PciInventory(new HostRoot(root.Path));
        var sata = inventory.Find(A("00:1f.2"))!;
        Assert.True(sata.IsHostCritical);
        Assert.Equal("mounted filesystem / (xfs on /dev/mapper/vg-dm0: dm-0 over sda2); mounted filesystem /boot (xfs on /dev/sda1); active swap /dev/sda3", sata.HostCritical);
        Assert.False(inventory.Find(A("02:00.0"))!.IsHostCritical);

        var group8 = IommuGroups.TryRead(inventory, 8)!;
        Assert.Equal(new[] { "0000:00:1f.2" }, group8.HostDependencies.Select(d => d.Address.ToString()).Distinct());
        Assert.Equal(3, group8.HostCritical.Count);
        Assert.Empty(IommuGroups.TryRead(inventory, 13)!.HostCritical);
    }
}

public class DeviceHolderTests
{
    private static PciAddress A(string s) => PciAddress.Parse(s);

    [Fact]
    public void Qemu_holding_a_vfio_group_is_named_by_pid_command_and_guest()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var host = new HostRoot(root.Path);
        var holders = DeviceHolders.OfPci(host, A("02:00.1"), hostDriverNodes: true);
        var h = Assert.Single(holders);
        Assert.Equal(4242, h.Pid);
        Assert.Equal("qemu-system-x86", h.Command);
        Assert.Equal("vm1", h.Guest);
        Assert.Equal("/dev/vfio/13", h.DevicePath);
        Assert.Equal("pid 4242 (qemu-system-x86, guest 'vm1') holds /dev/vfio/13", h.ToString());
    }

    [Fact]
    public void The_host_driver_users_of_an_nvidia_gpu_are_found_through_its_minor_and_drm_nodes()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var host = new HostRoot(root.Path);
        Assert.Equal(new[] { "/dev/vfio/14", "/dev/dri/card0", "/dev/dri/renderD128", "/dev/nvidia0" },
            DeviceHolders.NodesOf(host, A("01:00.0"), hostDriverNodes: true).Take(4));
        var holders = DeviceHolders.OfPci(host, A("01:00.0"), hostDriverNodes: true);
        Assert.Equal(new[] { "901 /dev/nvidia0", "901 /dev/nvidiactl", "1500 /dev/dri/card0" }, holders.Select(x => $"{x.Pid} {x.DevicePath}"));
        Assert.Equal("pid 901 (nvidia-persiste) holds /dev/nvidia0, /dev/nvidiactl; pid 1500 (Xorg) holds /dev/dri/card0", DeviceHolder.Describe(holders));
        Assert.Empty(DeviceHolders.OfPci(host, A("01:00.0"), hostDriverNodes: false));
    }

    [Fact]
    public void An_mdev_is_held_through_its_group_and_its_vfio_device_node_and_libvirt_commas_are_undone()
    {
        using var root = new TempRoot();
        var b = SampleHosts.InUse(root.Path);
        b.Usage.Process(5151, "qemu-kvm", new[] { "/usr/libexec/qemu-kvm", "-name", "vm3" }, "/dev/vfio/devices/vfio0", "/dev/iommu");
        b.Build();
        var host = new HostRoot(root.Path);
        Assert.Equal(new[] { "/dev/vfio/100", "/dev/vfio/devices/vfio0" }, DeviceHolders.NodesOfMdev(host, SampleHosts.InUseMdev));
        var holders = DeviceHolders.OfMdev(host, SampleHosts.InUseMdev);
        Assert.Equal(new[] { "4343 vm,two /dev/vfio/100", "5151 vm3 /dev/vfio/devices/vfio0" }, holders.Select(x => $"{x.Pid} {x.Guest} {x.DevicePath}"));
    }

    [Fact]
    public void A_process_whose_descriptors_cannot_be_read_is_passed_over()
    {
        using var root = new TempRoot();
        var b = SampleHosts.InUse(root.Path);
        b.Build();
        // A /proc entry without fd/ (a kernel thread, or a process gone) and a name that is not a pid.
        Directory.CreateDirectory(Path.Combine(root.Path, "proc", "2"));
        Directory.CreateDirectory(Path.Combine(root.Path, "proc", "sys"));
        Assert.Single(DeviceHolders.OfPci(new HostRoot(root.Path), A("02:00.0"), hostDriverNodes: true));
    }

    [Theory]
    [InlineData(new[] { "qemu", "-name", "guest=vm1,debug-threads=on" }, "vm1")]
    [InlineData(new[] { "qemu", "-name", "guest=a,,b,debug-threads=on" }, "a,b")]
    [InlineData(new[] { "qemu", "-name", "plain" }, "plain")]
    [InlineData(new[] { "qemu", "-machine", "q35" }, null)]
    [InlineData(new[] { "qemu", "-name", "process=x" }, null)]
    public void Guest_name_from_a_qemu_command_line(string[] args, string? expected) =>
        Assert.Equal(expected, DeviceHolders.GuestName(args));
}

