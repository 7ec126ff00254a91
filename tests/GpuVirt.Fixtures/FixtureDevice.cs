namespace GpuVirt.Fixtures;

/// <summary>One PCI function of a fixture host.</summary>
public sealed class FixtureDevice
{
    public FixtureDevice(string address, ushort vendor, ushort device, uint classCode)
    {
        Address = address;
        Vendor = vendor;
        Device = device;
        ClassCode = classCode;
    }

    /// <summary>Canonical address, <c>0000:02:00.0</c>.</summary>
    public string Address { get; }
    public ushort Vendor { get; }
    public ushort Device { get; }
    public uint ClassCode { get; }
    public byte Revision { get; set; }
    public ushort SubsystemVendor { get; set; }
    public ushort SubsystemDevice { get; set; }

    /// <summary>The bridge above this function; null puts it on its domain's root bus.</summary>
    public string? Parent { get; set; }

    /// <summary>The root bus directory name for a device with no parent; defaults to <c>pci&lt;domain&gt;:&lt;bus&gt;</c>.</summary>
    public string? RootBus { get; set; }

    public string? Driver { get; set; }
    public string? DriverOverride { get; set; }
    public int? IommuGroup { get; set; }
    public bool BootVga { get; set; }
    public int NumaNode { get; set; } = -1;

    /// <summary>PCIe link, e.g. ("8.0 GT/s PCIe", 16, "8.0 GT/s PCIe", 16); null for conventional PCI.</summary>
    public (string CurrentSpeed, int CurrentWidth, string MaxSpeed, int MaxWidth)? Link { get; set; }

    /// <summary>For an SR-IOV physical function: total VFs (its enabled VFs point back with <see cref="PhysicalFunction"/>).</summary>
    public int? SriovTotalVfs { get; set; }

    public string? PhysicalFunction { get; set; }

    /// <summary>NVIDIA SR-IOV vGPU: the <c>nvidia/creatable_vgpu_types</c> lines (ID, name) of a virtual function.</summary>
    public IList<(int Id, string Name)>? CreatableVgpuTypes { get; set; }

    /// <summary>NVIDIA SR-IOV vGPU: the <c>nvidia/current_vgpu_type</c> of a virtual function (0: none set).</summary>
    public int CurrentVgpuType { get; set; }

    public IList<FixtureMdevType> MdevTypes { get; } = new List<FixtureMdevType>();

    /// <summary>BARs for the <c>resource</c> file (unused BARs read as zeros, as the kernel prints them).</summary>
    public IList<FixtureBar> Bars { get; } = new List<FixtureBar>();

    /// <summary>The <c>reset_method</c> attribute (<c>flr bus</c>); null writes none (kernels before 5.15, or no method).</summary>
    public string? ResetMethod { get; set; }

    /// <summary>
    /// A PCI Express capability in 256 bytes of configuration space, with (true) or without (false) Function Level Reset
    /// in its Device Capabilities; null keeps the 64-byte header only (what a non-root reader gets).
    /// </summary>
    public bool? Flr { get; set; }

    public bool IsBridge => (ClassCode >> 8) is 0x0604 or 0x0607 or 0x0609;
}

/// <summary>A mediated-device type under <c>mdev_supported_types</c>.</summary>
public sealed class FixtureMdevType
{
    public FixtureMdevType(string id, int availableInstances)
    {
        Id = id;
        AvailableInstances = availableInstances;
    }

    public string Id { get; }
    public string? Name { get; set; }
    public string? Description { get; set; }
    public string DeviceApi { get; set; } = "vfio-pci";
    public int AvailableInstances { get; set; }
}

/// <summary>A created mediated device.</summary>
public sealed record FixtureMdevDevice(string Uuid, string ParentAddress, string TypeId, int? IommuGroup);

/// <summary>One BAR: its number, size (a power of two) and the kernel's resource flags.</summary>
public sealed record FixtureBar(int Index, ulong Size, ulong Flags)
{
    public const ulong Io = 0x100, Memory = 0x200, Prefetch = 0x2000, Memory64 = 0x100000, SizeAlign = 0x40000;

    /// <summary>A 64-bit prefetchable memory BAR (a GPU's VRAM aperture): flags 0x14220c.</summary>
    public static FixtureBar Mem64Pref(int index, ulong size) => new(index, size, Memory | Prefetch | Memory64 | SizeAlign | 0xc);

    /// <summary>A 32-bit non-prefetchable memory BAR (registers): flags 0x40200.</summary>
    public static FixtureBar Mem32(int index, ulong size) => new(index, size, Memory | SizeAlign);

    /// <summary>An I/O port BAR: flags 0x40101.</summary>
    public static FixtureBar IoPorts(int index, ulong size) => new(index, size, Io | SizeAlign | 0x1);
}
