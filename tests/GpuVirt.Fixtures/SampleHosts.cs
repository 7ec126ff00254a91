using System.Globalization;

namespace GpuVirt.Fixtures;

/// <summary>The sample hosts of the tests, the README's run command and the benchmark.</summary>
public static class SampleHosts
{
    private const uint HostBridge = 0x060000;
    private const uint PciBridge = 0x060400;
    private const uint SubtractiveBridge = 0x060401;
    private const uint Vga = 0x030000;
    private const uint ThreeD = 0x030200;
    private const uint HdAudio = 0x040300;
    private const uint Ethernet = 0x020000;
    private const uint Sata = 0x010601;
    private const uint Nvme = 0x010802;
    private const uint IsaBridge = 0x060100;

    private static readonly (string, int, string, int) Gen3x16 = ("8.0 GT/s PCIe", 16, "8.0 GT/s PCIe", 16);
    private static readonly (string, int, string, int) Gen4x16 = ("16.0 GT/s PCIe", 16, "16.0 GT/s PCIe", 16);

    /// <summary>The Tesla P4's vGPU types as the seed's <c>virsh nodedev-dumpxml</c> lists them.</summary>
    public static readonly IReadOnlyList<(string Id, string Name, int Available, string Description)> TeslaP4Types = new[]
    {
        ("nvidia-63", "GRID P4-1Q", 8, "num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880, max_instance=8"),
        ("nvidia-64", "GRID P4-2Q", 4, "num_heads=4, frl_config=60, framebuffer=2048M, max_resolution=7680x4320, max_instance=4"),
        ("nvidia-65", "GRID P4-4Q", 2, "num_heads=4, frl_config=60, framebuffer=4096M, max_resolution=7680x4320, max_instance=2"),
        ("nvidia-66", "GRID P4-8Q", 1, "num_heads=4, frl_config=60, framebuffer=8192M, max_resolution=7680x4320, max_instance=1"),
        ("nvidia-67", "GRID P4-1A", 8, "num_heads=1, frl_config=60, framebuffer=1024M, max_resolution=1280x1024, max_instance=8"),
        ("nvidia-68", "GRID P4-2A", 4, "num_heads=1, frl_config=60, framebuffer=2048M, max_resolution=1280x1024, max_instance=4"),
        ("nvidia-69", "GRID P4-4A", 2, "num_heads=1, frl_config=60, framebuffer=4096M, max_resolution=1280x1024, max_instance=2"),
        ("nvidia-70", "GRID P4-8A", 1, "num_heads=1, frl_config=60, framebuffer=8192M, max_resolution=1280x1024, max_instance=1"),
        ("nvidia-71", "GRID P4-1B", 8, "num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880, max_instance=8"),
    };

    /// <summary>Intel GVT-g's types as i915 shows them: no name file, a multi-line description.</summary>
    public static readonly IReadOnlyList<(string Id, int Available, string Description)> IntelGvtTypes = new[]
    {
        ("i915-GVTg_V5_4", 3, "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n"),
        ("i915-GVTg_V5_8", 7, "low_gm_size: 64MB\nhigh_gm_size: 384MB\nfence: 4\nresolution: 1024x768\nweight: 2\n"),
    };

    /// <summary>Adds an Intel integrated GPU (8086:0412, i915, the boot VGA) at 0000:00:02.0 that is a GVT-g mdev parent.</summary>
    public static HostTreeBuilder AddIntelGvtG(HostTreeBuilder b)
    {
        var igd = b.Add("0000:00:02.0", 0x8086, 0x0412, Vga, d =>
        {
            d.Revision = 0x06; d.IommuGroup = 3; d.Driver = "i915"; d.BootVga = true; d.SubsystemVendor = 0x1028; d.SubsystemDevice = 0x05a4;
        });
        foreach (var (id, available, description) in IntelGvtTypes)
        {
            igd.MdevTypes.Add(new FixtureMdevType(id, available) { Description = description });
        }
        return b;
    }

    /// <summary>
    /// The seed's host: a Quadro K4000 (10de:11fa) at 0000:02:00.0 with its HDMI audio (10de:0e0b) at 02:00.1 in
    /// IOMMU group 13 behind root port 00:03.0, a Tesla P4 at 0000:01:00.0 offering the nine nvidia-63…71 types,
    /// a host bridge, SATA and a NIC, on an Intel CPU with the IOMMU on.
    /// </summary>
    public static HostTreeBuilder Seed(string root)
    {
        var b = new HostTreeBuilder(root)
        {
            CpuVendor = "GenuineIntel",
            Cmdline = "BOOT_IMAGE=/vmlinuz-3.10.0-1160.el7.x86_64 root=/dev/mapper/rhel-root ro rd.lvm.lv=vg_VolGroup00/LogVol01 rhgb quiet intel_iommu=on iommu=pt",
            PciIds = PciIdsSubset,
        };
        b.Add("0000:00:00.0", 0x8086, 0x0c00, HostBridge, d => { d.Revision = 0x06; d.IommuGroup = 0; d.SubsystemVendor = 0x1028; d.SubsystemDevice = 0x05a4; });
        b.Add("0000:00:01.0", 0x8086, 0x0c01, PciBridge, d => { d.Revision = 0x06; d.IommuGroup = 1; d.Driver = "pcieport"; d.Link = Gen3x16; });
        b.Add("0000:00:03.0", 0x8086, 0x0c05, PciBridge, d => { d.Revision = 0x06; d.IommuGroup = 2; d.Driver = "pcieport"; d.Link = Gen3x16; });
        b.Add("0000:00:19.0", 0x8086, 0x153a, Ethernet, d => { d.Revision = 0x04; d.IommuGroup = 5; d.Driver = "e1000e"; d.SubsystemVendor = 0x1028; d.SubsystemDevice = 0x05a4; });
        b.Add("0000:00:1f.0", 0x8086, 0x8c4e, IsaBridge, d => { d.Revision = 0x04; d.IommuGroup = 8; d.Driver = "lpc_ich"; d.SubsystemVendor = 0x1028; d.SubsystemDevice = 0x05a4; });
        b.Add("0000:00:1f.2", 0x8086, 0x8c02, Sata, d => { d.Revision = 0x04; d.IommuGroup = 8; d.Driver = "ahci"; d.SubsystemVendor = 0x1028; d.SubsystemDevice = 0x05a4; });
        var p4 = b.Add("0000:01:00.0", 0x10de, 0x1bb3, ThreeD, d =>
        {
            d.Parent = "0000:00:01.0"; d.Revision = 0xa1; d.IommuGroup = 14; d.Driver = "nvidia"; d.Link = Gen3x16;
            d.SubsystemVendor = 0x10de; d.SubsystemDevice = 0x11d8;
        });
        foreach (var (id, name, available, description) in TeslaP4Types)
        {
            p4.MdevTypes.Add(new FixtureMdevType(id, available) { Name = name, Description = description });
        }
        b.Add("0000:02:00.0", 0x10de, 0x11fa, Vga, d =>
        {
            d.Parent = "0000:00:03.0"; d.Revision = 0xa1; d.IommuGroup = 13; d.Driver = "pci-stub"; d.Link = ("2.5 GT/s PCIe", 16, "8.0 GT/s PCIe", 16);
            d.SubsystemVendor = 0x10de; d.SubsystemDevice = 0x097c;
        });
        b.Add("0000:02:00.1", 0x10de, 0x0e0b, HdAudio, d =>
        {
            d.Parent = "0000:00:03.0"; d.Revision = 0xa1; d.IommuGroup = 13; d.Driver = "snd_hda_intel"; d.Link = ("2.5 GT/s PCIe", 16, "8.0 GT/s PCIe", 16);
            d.SubsystemVendor = 0x10de; d.SubsystemDevice = 0x097c;
        });
        return b;
    }

    /// <summary>The UUID of the live vGPU on the Tesla P4 of <see cref="InUse"/>, held by guest vm2's QEMU.</summary>
    public const string InUseMdev = "6f0e3a4c-2b1d-4e5f-8a9b-0c1d2e3f4a5b";

    /// <summary>
    /// The seed's host as it runs: <c>/</c> on dm-0 (LVM) over <c>sda2</c> of the SATA controller 00:1f.2, <c>/boot</c>
    /// on <c>sda1</c>, swap on <c>sda3</c>, <c>/srv</c> on md0 (RAID 1 over the partitions of two NVMe drives
    /// 00:1b.0 and 00:1c.0); the default route on bridge br0 over bond0 (eth0 at 00:19.0 and eth1 at 00:10.0), an IPv6
    /// route on VLAN eth2.100 over eth2 (00:11.0), eth3 (00:12.0) with only its link-local route; QEMU of guest vm1
    /// (pid 4242) holding IOMMU group 13 (the Quadro and its audio), QEMU of vm2 (pid 4343) holding the P4's live vGPU,
    /// nvidia-persistenced (pid 901) holding /dev/nvidia0 and Xorg (pid 1500) the P4's /dev/dri/card0.
    /// </summary>
    public static HostTreeBuilder InUse(string root)
    {
        var b = Seed(root);
        b.Add("0000:00:1b.0", 0x144d, 0xa808, Nvme, d => { d.IommuGroup = 20; d.Driver = "nvme"; });
        b.Add("0000:00:1c.0", 0x144d, 0xa808, Nvme, d => { d.IommuGroup = 21; d.Driver = "nvme"; });
        b.Add("0000:00:10.0", 0x8086, 0x1533, Ethernet, d => { d.IommuGroup = 22; d.Driver = "igb"; });
        b.Add("0000:00:11.0", 0x8086, 0x1533, Ethernet, d => { d.IommuGroup = 23; d.Driver = "igb"; });
        b.Add("0000:00:12.0", 0x8086, 0x1533, Ethernet, d => { d.IommuGroup = 24; d.Driver = "igb"; });
        b.AddMdev(new FixtureMdevDevice(InUseMdev, "0000:01:00.0", "nvidia-63", 100));
        b.Usage
            .Disk("sda", "0000:00:1f.2", "ata1/host0/target0:0:0/0:0:0:0")
            .Partition("sda1", "sda").Partition("sda2", "sda").Partition("sda3", "sda")
            .Virtual("dm-0", 253, "sda2")
            .Disk("nvme0n1", "0000:00:1b.0", "nvme/nvme0", major: 259).Partition("nvme0n1p1", "nvme0n1", major: 259)
            .Disk("nvme1n1", "0000:00:1c.0", "nvme/nvme1", major: 259).Partition("nvme1n1p1", "nvme1n1", major: 259)
            .Virtual("md0", 9, "nvme0n1p1", "nvme1n1p1")
            .Mount("/", "/dev/mapper/vg-dm0", "xfs", block: "dm-0")
            .Mount("/boot", "/dev/sda1", "xfs", block: "sda1")
            .Mount("/srv", "/dev/md0", "ext4", block: "md0")
            .Mount("/proc", "proc", "proc")
            .Mount("/run", "tmpfs", "tmpfs")
            .Swap("/dev/sda3")
            .Net("eth0", "0000:00:19.0").Net("eth1", "0000:00:10.0").Net("eth2", "0000:00:11.0").Net("eth3", "0000:00:12.0").Net("lo")
            .Net("bond0", lower: new[] { "eth0", "eth1" })
            .Net("br0", bridgePorts: new[] { "bond0" })
            .Net("eth2.100", lower: new[] { "eth2" })
            .Route("br0")
            .Route("br0", destination: "0001A8C0", mask: "00FFFFFF", gateway: "00000000", flags: 0x1)
            .Route6("eth2.100", "20010db8000000000000000000000000", 64)
            .Route6("eth3", "fe800000000000000000000000000000", 64)
            .Route6("lo", "00000000000000000000000000000001", 128)
            .NvidiaGpu("0000:01:00.0", 0)
            .DeviceNode("0000:01:00.0", "drm/card0").DeviceNode("0000:01:00.0", "drm/renderD128")
            .DeviceNode(InUseMdev, "vfio-dev/vfio0")
            .Process(1, "systemd", new[] { "/sbin/init" }, "/dev/console")
            .Process(901, "nvidia-persiste", new[] { "/usr/bin/nvidia-persistenced", "--user", "nvidia-persistenced" }, "/dev/nvidiactl", "/dev/nvidia0")
            .Process(1500, "Xorg", new[] { "/usr/lib/xorg/Xorg", ":0", "-seat", "seat0" }, "/dev/dri/card0", "/dev/tty7")
            .Process(4242, "qemu-system-x86", new[] { "/usr/bin/qemu-system-x86_64", "-name", "guest=vm1,debug-threads=on", "-S", "-machine", "pc-q35-7.2" }, "/dev/vfio/vfio", "/dev/vfio/13", "/dev/kvm")
            .Process(4343, "qemu-system-x86", new[] { "/usr/bin/qemu-system-x86_64", "-name", "guest=vm,,two,debug-threads=on", "-S" }, "/dev/vfio/vfio", "/dev/vfio/100");
        return b;
    }

    /// <summary>
    /// A two-socket host: several GPUs, a group shared by a GPU and a NIC behind a switch without ACS, a PCIe-to-PCI
    /// bridge with a VGA, devices in domains 0001 and 10000 (Intel VMD), an SR-IOV NIC and an NVIDIA SR-IOV vGPU card.
    /// </summary>
    public static HostTreeBuilder TwoSocket(string root)
    {
        var b = new HostTreeBuilder(root) { CpuVendor = "AuthenticAMD", Cmdline = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro iommu=pt", PciIds = PciIdsSubset };
        b.Add("0000:00:00.0", 0x1022, 0x1480, HostBridge, d => { d.IommuGroup = 0; });
        b.Add("0000:00:01.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 1; d.Driver = "pcieport"; d.Link = Gen4x16; });
        b.Add("0000:00:02.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 2; d.Driver = "pcieport"; d.Link = Gen4x16; });
        b.Add("0000:00:03.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 22; d.Driver = "pcieport"; d.Link = Gen3x16; });
        b.Add("0000:00:07.1", 0x1022, 0x1484, PciBridge, d => { d.IommuGroup = 4; d.Driver = "pcieport"; });
        b.Add("0000:00:14.4", 0x1022, 0x43a6, SubtractiveBridge, d => { d.IommuGroup = 23; });

        // NVIDIA A40 with SR-IOV vGPU (vGPU 17+): the PF and four VFs offering creatable types.
        b.Add("0000:01:00.0", 0x10de, 0x2235, ThreeD, d =>
        {
            d.Parent = "0000:00:01.1"; d.Revision = 0xa1; d.IommuGroup = 10; d.Driver = "nvidia"; d.Link = Gen4x16; d.SriovTotalVfs = 32;
            d.SubsystemVendor = 0x10de; d.SubsystemDevice = 0x145a;
        });
        for (var f = 4; f < 8; f++)
        {
            var vf = "0000:01:00." + f.ToString(CultureInfo.InvariantCulture);
            b.Add(vf, 0x10de, 0x2235, ThreeD, d =>
            {
                d.Parent = "0000:00:01.1"; d.Revision = 0xa1; d.IommuGroup = 60 + f; d.Driver = "nvidia"; d.PhysicalFunction = "0000:01:00.0";
                d.CreatableVgpuTypes = new List<(int, string)> { (557, "NVIDIA A40-1Q"), (558, "NVIDIA A40-2Q"), (563, "NVIDIA A40-48Q") };
            });
        }

        // Behind a switch: an AMD GPU and its audio function in one group.
        b.Add("0000:02:00.0", 0x1002, 0x1478, PciBridge, d => { d.Parent = "0000:00:02.1"; d.IommuGroup = 11; d.Driver = "pcieport"; d.Link = Gen4x16; });
        b.Add("0000:03:00.0", 0x1002, 0x1479, PciBridge, d => { d.Parent = "0000:02:00.0"; d.IommuGroup = 12; d.Driver = "pcieport"; d.Link = Gen4x16; });
        b.Add("0000:04:00.0", 0x1002, 0x73a3, Vga, d => { d.Parent = "0000:03:00.0"; d.IommuGroup = 20; d.Driver = "amdgpu"; d.Link = Gen4x16; d.SubsystemVendor = 0x1002; d.SubsystemDevice = 0x0e3b; });
        b.Add("0000:04:00.1", 0x1002, 0xab28, HdAudio, d => { d.Parent = "0000:03:00.0"; d.IommuGroup = 20; d.Driver = "snd_hda_intel"; d.Link = Gen4x16; });

        // A switch without ACS: a T4 and a Mellanox NIC share group 22 with the ports.
        b.Add("0000:05:00.0", 0x111d, 0x8090, PciBridge, d => { d.Parent = "0000:00:03.1"; d.IommuGroup = 22; d.Driver = "pcieport"; });
        b.Add("0000:06:00.0", 0x111d, 0x8090, PciBridge, d => { d.Parent = "0000:05:00.0"; d.IommuGroup = 22; d.Driver = "pcieport"; });
        b.Add("0000:06:01.0", 0x111d, 0x8090, PciBridge, d => { d.Parent = "0000:05:00.0"; d.IommuGroup = 22; d.Driver = "pcieport"; });
        b.Add("0000:07:00.0", 0x10de, 0x1eb8, ThreeD, d => { d.Parent = "0000:06:00.0"; d.Revision = 0xa1; d.IommuGroup = 22; d.Driver = "nvidia"; d.Link = Gen3x16; });
        b.Add("0000:08:00.0", 0x15b3, 0x1017, Ethernet, d => { d.Parent = "0000:06:01.0"; d.IommuGroup = 22; d.Driver = "mlx5_core"; d.Link = ("8.0 GT/s PCIe", 8, "8.0 GT/s PCIe", 16); });

        // An SR-IOV NIC with two enabled virtual functions.
        b.Add("0000:0a:00.0", 0x8086, 0x1572, Ethernet, d => { d.Parent = "0000:00:07.1"; d.Revision = 0x02; d.IommuGroup = 30; d.Driver = "i40e"; d.SriovTotalVfs = 64; });
        b.Add("0000:0a:02.0", 0x8086, 0x154c, Ethernet, d => { d.Parent = "0000:00:07.1"; d.Revision = 0x02; d.IommuGroup = 31; d.Driver = "iavf"; d.PhysicalFunction = "0000:0a:00.0"; });
        b.Add("0000:0a:02.1", 0x8086, 0x154c, Ethernet, d => { d.Parent = "0000:00:07.1"; d.Revision = 0x02; d.IommuGroup = 32; d.PhysicalFunction = "0000:0a:00.0"; });

        // A PCIe-to-PCI bridge with the BMC's VGA, the console GPU: bridge and VGA share a group.
        b.Add("0000:09:00.0", 0x1a03, 0x1150, PciBridge, d => { d.Parent = "0000:00:14.4"; d.Revision = 0x04; d.IommuGroup = 23; });
        b.Add("0000:0b:00.0", 0x1a03, 0x2000, Vga, d => { d.Parent = "0000:09:00.0"; d.Revision = 0x41; d.IommuGroup = 23; d.Driver = "ast"; d.BootVga = true; d.SubsystemVendor = 0x1a03; d.SubsystemDevice = 0x2000; });

        // Second socket: its own root bus, an L4 already on vfio-pci.
        b.Add("0000:80:00.0", 0x1022, 0x1480, HostBridge, d => { d.IommuGroup = 40; d.NumaNode = 1; });
        b.Add("0000:80:01.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 41; d.Driver = "pcieport"; d.NumaNode = 1; d.Link = Gen4x16; });
        b.Add("0000:81:00.0", 0x10de, 0x27b8, ThreeD, d => { d.Parent = "0000:80:01.1"; d.Revision = 0xa1; d.IommuGroup = 42; d.Driver = "vfio-pci"; d.NumaNode = 1; d.Link = Gen4x16; });

        // Other PCI domains: a second segment and an Intel VMD domain (five hex digits).
        b.Add("0001:00:00.0", 0x144d, 0xa808, Nvme, d => { d.IommuGroup = 50; d.Driver = "nvme"; d.NumaNode = 1; });
        b.Add("10000:01:00.0", 0x144d, 0xa80a, Nvme, d => { d.RootBus = "pci10000:00"; d.IommuGroup = 51; d.Driver = "nvme"; });
        return b;
    }

    /// <summary>
    /// A host with current NVIDIA vGPU (vGPU 17+, SR-IOV): an L40S at 0000:41:00.0 with four virtual functions
    /// (41:00.4-41:00.7, each in its own IOMMU group, bound to nvidia, every profile creatable), an H100 PCIe at
    /// 0000:c1:00.0 whose virtual functions are enabled only with <paramref name="h100VfsEnabled"/> (four, c1:00.4-c1:00.7),
    /// and beside them the seed's Tesla P4 at 0000:01:00.0, a mediated-device parent with the nvidia-63...71 types.
    /// </summary>
    public static HostTreeBuilder SriovVgpu(string root, bool h100VfsEnabled = false)
    {
        var b = new HostTreeBuilder(root)
        {
            CpuVendor = "AuthenticAMD",
            Cmdline = "BOOT_IMAGE=/vmlinuz-6.8.0-45-generic root=/dev/nvme0n1p2 ro amd_iommu=on iommu=pt",
            PciIds = PciIdsSubset,
        };
        b.LoadedModules.Add("nvidia");
        b.LoadedModules.Add("nvidia_vgpu_vfio");
        b.Add("0000:00:00.0", 0x1022, 0x1480, HostBridge, d => { d.IommuGroup = 0; });
        b.Add("0000:00:01.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 1; d.Driver = "pcieport"; d.Link = Gen3x16; });
        b.Add("0000:00:03.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 2; d.Driver = "pcieport"; d.Link = Gen4x16; });
        b.Add("0000:00:07.1", 0x1022, 0x1483, PciBridge, d => { d.IommuGroup = 3; d.Driver = "pcieport"; d.Link = Gen4x16; });
        b.Add("0000:00:19.0", 0x8086, 0x153a, Ethernet, d => { d.Revision = 0x04; d.IommuGroup = 5; d.Driver = "e1000e"; });
        var p4 = b.Add("0000:01:00.0", 0x10de, 0x1bb3, ThreeD, d =>
        {
            d.Parent = "0000:00:01.1"; d.Revision = 0xa1; d.IommuGroup = 14; d.Driver = "nvidia"; d.Link = Gen3x16;
            d.SubsystemVendor = 0x10de; d.SubsystemDevice = 0x11d8;
        });
        foreach (var (id, name, available, description) in TeslaP4Types)
        {
            p4.MdevTypes.Add(new FixtureMdevType(id, available) { Name = name, Description = description });
        }
        AddSriovGpu(b, FixtureSriovBoard.L40S, "0000:41:00.0", "0000:00:03.1", 20, vfs: 4);
        AddSriovGpu(b, FixtureSriovBoard.H100, "0000:c1:00.0", "0000:00:07.1", 40, vfs: h100VfsEnabled ? 4 : 0);
        return b;
    }

    /// <summary>An NVIDIA SR-IOV vGPU board's physical function and <paramref name="vfs"/> enabled virtual functions.</summary>
    public static FixtureDevice AddSriovGpu(HostTreeBuilder b, FixtureSriovBoard board, string address, string bridge, int group, int vfs)
    {
        var pf = b.Add(address, 0x10de, board.Device, ThreeD, d =>
        {
            d.Parent = bridge; d.Revision = 0xa1; d.IommuGroup = group; d.Driver = "nvidia"; d.Link = Gen4x16; d.SriovTotalVfs = board.TotalVfs;
            d.SubsystemVendor = 0x10de; d.SubsystemDevice = board.SubsystemDevice;
        });
        for (var i = 0; i < vfs; i++) b.Add(VirtualFunction(board, pf, i));
        return pf;
    }

    /// <summary>
    /// Virtual function <paramref name="index"/> of an NVIDIA PF, as the driver makes it: routing offset 4, stride 1, bound to
    /// nvidia, its own IOMMU group (the PF's number plus 1 + index), every profile of the idle GPU creatable.
    /// </summary>
    public static FixtureDevice VirtualFunction(FixtureSriovBoard board, FixtureDevice pf, int index)
    {
        var pa = pf.Address;
        var bus = pa[..pa.LastIndexOf(':')];
        var devfn = 4 + index;
        var address = string.Format(CultureInfo.InvariantCulture, "{0}:{1:x2}.{2:x}", bus, devfn / 8, devfn % 8);
        var vf = new FixtureDevice(address, 0x10de, board.Device, ThreeD)
        {
            Parent = pf.Parent, Revision = 0xa1, IommuGroup = pf.IommuGroup + 1 + index, Driver = "nvidia", PhysicalFunction = pa,
            SubsystemVendor = 0x10de, SubsystemDevice = board.SubsystemDevice, CreatableVgpuTypes = board.AllCreatable(),
        };
        return vf;
    }

    /// <summary>
    /// A synthetic host for the benchmark: <paramref name="gpus"/> GPUs (each with an audio companion and
    /// <paramref name="typesPerGpu"/> mdev types) behind nested switches, padded with SR-IOV NIC functions to
    /// <paramref name="functions"/> PCI functions in all, spread over many IOMMU groups.
    /// </summary>
    public static HostTreeBuilder Synthetic(string root, int functions, int gpus, int typesPerGpu = 16)
    {
        var b = new HostTreeBuilder(root) { CpuVendor = "GenuineIntel", PciIds = PciIdsSubset };
        var group = 0;
        var bus = 1;
        b.Add("0000:00:00.0", 0x8086, 0x09a2, HostBridge, d => d.IommuGroup = group++);
        for (var g = 0; g < gpus; g++)
        {
            // root port -> switch upstream -> switch downstream -> GPU + audio
            var slot = (g % 31) + 1;
            var domain = g / 31;
            var rootPort = Addr(domain, 0, slot, 0);
            if (b.Devices.All(d => d.Address != Addr(domain, 0, 0, 0)) && domain > 0)
                b.Add(Addr(domain, 0, 0, 0), 0x8086, 0x09a2, HostBridge, d => d.IommuGroup = group++);
            b.Add(rootPort, 0x8086, 0x347a, PciBridge, d => { d.IommuGroup = group++; d.Driver = "pcieport"; });
            var up = Addr(domain, bus, 0, 0);
            b.Add(up, 0x10b5, 0x8747, PciBridge, d => { d.Parent = rootPort; d.IommuGroup = group++; d.Driver = "pcieport"; });
            var down = Addr(domain, bus + 1, 8, 0);
            b.Add(down, 0x10b5, 0x8747, PciBridge, d => { d.Parent = up; d.IommuGroup = group++; d.Driver = "pcieport"; });
            var gpuGroup = group++;
            var gpu = b.Add(Addr(domain, bus + 2, 0, 0), 0x10de, 0x1bb3, ThreeD, d => { d.Parent = down; d.Revision = 0xa1; d.IommuGroup = gpuGroup; d.Driver = "nvidia"; });
            b.Add(Addr(domain, bus + 2, 0, 1), 0x10de, 0x0e0b, HdAudio, d => { d.Parent = down; d.Revision = 0xa1; d.IommuGroup = gpuGroup; d.Driver = "snd_hda_intel"; });
            for (var t = 0; t < typesPerGpu; t++)
            {
                var (id, name, available, description) = TeslaP4Types[t % TeslaP4Types.Count];
                gpu.MdevTypes.Add(new FixtureMdevType(t < TeslaP4Types.Count ? id : "nvidia-" + (100 + t).ToString(CultureInfo.InvariantCulture), available)
                {
                    Name = t < TeslaP4Types.Count ? name : name + "-" + t.ToString(CultureInfo.InvariantCulture),
                    Description = description,
                });
            }
            bus += 3;
        }

        // Pad with SR-IOV NICs: a PF and up to 127 VFs per bus behind their own root ports.
        var nicSlot = 0;
        while (b.Devices.Count < functions)
        {
            var domain = 0x20 + nicSlot / 31;
            var rootPort = Addr(domain, 0, (nicSlot % 31) + 1, 0);
            if (b.Devices.All(d => d.Address != Addr(domain, 0, 0, 0)))
                b.Add(Addr(domain, 0, 0, 0), 0x8086, 0x09a2, HostBridge, d => d.IommuGroup = group++);
            b.Add(rootPort, 0x8086, 0x347a, PciBridge, d => { d.IommuGroup = group++; d.Driver = "pcieport"; });
            var nicBus = 1 + nicSlot % 31;
            var pf = Addr(domain, nicBus, 0, 0);
            b.Add(pf, 0x15b3, 0x101d, Ethernet, d => { d.Parent = rootPort; d.IommuGroup = group++; d.Driver = "mlx5_core"; d.SriovTotalVfs = 127; });
            for (var vf = 1; vf < 128 && b.Devices.Count < functions; vf++)
            {
                var address = Addr(domain, nicBus, vf / 8, vf % 8);
                b.Add(address, 0x15b3, 0x101e, Ethernet, d => { d.Parent = rootPort; d.IommuGroup = group++; d.Driver = "mlx5_core"; d.PhysicalFunction = pf; });
            }
            nicSlot++;
        }
        return b;
    }

    private static string Addr(int domain, int bus, int device, int function) =>
        string.Format(CultureInfo.InvariantCulture, "{0:x4}:{1:x2}:{2:x2}.{3:x}", domain, bus, device, function);

    /// <summary>The pci.ids entries the sample hosts use (names as in the public pci.ids database).</summary>
    public const string PciIdsSubset = """
        # A subset of the PCI ID database for the sample hosts.
        1002  Advanced Micro Devices, Inc. [AMD/ATI]
        	1478  Navi 10 XL Upstream Port of PCI Express Switch
        	1479  Navi 10 XL Downstream Port of PCI Express Switch
        	73a3  Navi 21 GL-XL [Radeon PRO W6800]
        	ab28  Navi 21/23 HDMI/DP Audio Controller
        1022  Advanced Micro Devices, Inc. [AMD]
        	1480  Starship/Matisse Root Complex
        	1483  Starship/Matisse GPP Bridge
        	1484  Starship/Matisse Internal PCIe GPP Bridge 0 to bus[E:B]
        	43a6  FCH PCI Bridge
        10b5  PLX Technology, Inc.
        	8747  PEX 8747 48-Lane, 5-Port PCI Express Gen 3 (8.0 GT/s) Switch
        10de  NVIDIA Corporation
        	0e0b  GK106 HDMI Audio Controller
        	11fa  GK106GL [Quadro K4000]
        		10de 097c  Quadro K4000
        	1bb3  GP104GL [Tesla P4]
        		10de 11d8  Tesla P4
        	1eb8  TU104GL [Tesla T4]
        	2235  GA102GL [A40]
        		10de 145a  A40
        	2331  GH100 [H100 PCIe]
        	26b9  AD102GL [L40S]
        	27b8  AD104GL [L4]
        111d  Integrated Device Technology, Inc. [IDT]
        	8090  PES32NT8AG2 PCI Express Switch
        144d  Samsung Electronics Co Ltd
        	a808  NVMe SSD Controller SM981/PM981/PM983
        	a80a  NVMe SSD Controller PM9A1/PM9A3/980PRO
        15b3  Mellanox Technologies
        	1017  MT27800 Family [ConnectX-5]
        	101d  MT2892 Family [ConnectX-6 Dx]
        	101e  ConnectX Family mlx5Gen Virtual Function
        1a03  ASPEED Technology, Inc.
        	1150  AST1150 PCI-to-PCI Bridge
        	2000  ASPEED Graphics Family
        		1a03 2000  ASPEED Graphics Family
        8086  Intel Corporation
        	09a2  Ice Lake Memory Map/VT-d
        	0412  Xeon E3-1200 v3/4th Gen Core Processor Integrated Graphics Controller
        	0c00  4th Gen Core Processor DRAM Controller
        	0c01  Xeon E3-1200 v3/4th Gen Core Processor PCI Express x16 Controller
        	0c05  Xeon E3-1200 v3/4th Gen Core Processor PCI Express x8 Controller
        	153a  Ethernet Connection I217-LM
        	154c  Ethernet Virtual Function 700 Series
        	1572  Ethernet Controller X710 for 10GbE SFP+
        	347a  Ice Lake-SP PCI Express Root Port A
        	8c02  8 Series/C220 Series Chipset Family 6-port SATA Controller 1 [AHCI mode]
        	8c4e  Q87 Express LPC Controller
        C 01  Mass storage controller
        	06  SATA controller
        		01  AHCI 1.0
        	08  Non-Volatile memory controller
        		02  NVM Express
        C 02  Network controller
        	00  Ethernet controller
        C 03  Display controller
        	00  VGA compatible controller
        		00  VGA controller
        	02  3D controller
        	80  Display controller
        C 04  Multimedia controller
        	03  Audio device
        C 06  Bridge
        	00  Host bridge
        	01  ISA bridge
        	04  PCI bridge
        		00  Normal decode
        		01  Subtractive decode
        """;
}
