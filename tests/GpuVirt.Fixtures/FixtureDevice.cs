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
