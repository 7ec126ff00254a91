using System.Globalization;
using System.Text;

namespace GpuVirt.Fixtures;

/// <summary>
/// Writes a host tree shaped like the kernel's: devices under <c>sys/devices/pciDDDD:BB/...</c> with nested bridges,
/// relative symlinks from <c>sys/bus/pci/devices</c>, <c>iommu_group</c> links into <c>sys/kernel/iommu_groups/N</c>,
/// <c>driver</c> links into <c>sys/bus/pci/drivers</c>, a binary <c>config</c> consistent with the text attributes,
/// mdev parents and devices, and optional /proc and pci.ids files.
/// </summary>
public sealed class HostTreeBuilder
{
    private readonly List<FixtureDevice> _devices = new();
    private readonly List<FixtureMdevDevice> _mdevs = new();
    private readonly Dictionary<int, string> _groupTypes = new();
    private readonly List<(string HostPath, string Content)> _files = new();

    public HostTreeBuilder(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    public IReadOnlyList<FixtureDevice> Devices => _devices;

    public string? CpuVendor { get; set; }

    /// <summary>The <c>flags</c> line of <c>/proc/cpuinfo</c> (with <see cref="CpuVendor"/>): add <c>vmx</c> or <c>svm</c> for virtualization.</summary>
    public string CpuFlags { get; set; } = "fpu vme de pse";

    /// <summary>The physical bits of <c>/proc/cpuinfo</c>'s <c>address sizes</c> line; null writes no such line.</summary>
    public int? PhysicalAddressBits { get; set; }

    /// <summary>IOMMU units (<c>dmar0</c>, <c>ivhd0</c>) under <c>/sys/class/iommu</c>, linked into <c>/sys/devices/virtual/iommu</c>.</summary>
    public IList<string> IommuUnits { get; } = new List<string>();

    /// <summary>What the running host uses (filesystems, swap, routes, device nodes, processes), written last by <see cref="Build"/>.</summary>
    public HostUsage Usage { get; } = new();
    public string? Cmdline { get; set; }

    /// <summary>pci.ids text to place at usr/share/misc/pci.ids; null writes none.</summary>
    public string? PciIds { get; set; }

    public FixtureDevice Add(FixtureDevice device)
    {
        _devices.Add(device);
        return device;
    }

    public FixtureDevice Add(string address, ushort vendor, ushort device, uint classCode, Action<FixtureDevice>? configure = null)
    {
        var d = new FixtureDevice(address, vendor, device, classCode);
        configure?.Invoke(d);
        return Add(d);
    }

    public void AddMdev(FixtureMdevDevice mdev) => _mdevs.Add(mdev);

    private readonly List<string> _drivers = new();

    /// <summary>A loaded PCI driver that no fixture device is bound to (vfio-pci waiting for a function).</summary>
    public HostTreeBuilder AddDriver(string name)
    {
        _drivers.Add(name);
        return this;
    }

    /// <summary>Kernel modules to show as loaded, in <c>/proc/modules</c> and <c>/sys/module/NAME/initstate</c>.</summary>
    public IList<string> LoadedModules { get; } = new List<string>();

    /// <summary>Any other host file, by host path (<c>/etc/modprobe.d/nouveau.conf</c>), written as given.</summary>
    public void AddFile(string hostPath, string content) => _files.Add((hostPath, content));

    /// <summary>An mdevctl definition, <c>/etc/mdevctl.d/PARENT/UUID</c>, in mdevctl's JSON (or <paramref name="rawJson"/> as given).</summary>
    public void AddMdevDefinition(string parent, string uuid, string typeId, string start = "auto", string? rawJson = null) =>
        AddFile($"/etc/mdevctl.d/{parent}/{uuid}", rawJson ?? MdevctlJson(typeId, start));

    /// <summary>The JSON mdevctl 1.2 writes for a definition without attributes.</summary>
    public static string MdevctlJson(string typeId, string start) =>
        "{\n  \"mdev_type\": \"" + typeId + "\",\n  \"start\": \"" + start + "\",\n  \"attrs\": []\n}";

    public void SetGroupType(int group, string type) => _groupTypes[group] = type;

    /// <summary>The device's directory (its real path) under the root.</summary>
    public string DeviceDirectory(string address)
    {
        var d = _devices.FirstOrDefault(x => x.Address == address) ?? throw new ArgumentException($"No fixture device {address}.");
        if (d.Parent is not null) return Path.Combine(DeviceDirectory(d.Parent), d.Address);
        var root = d.RootBus ?? "pci" + d.Address.Substring(0, d.Address.IndexOf(':') + 3);
        return Path.Combine(Root, "sys", "devices", root, d.Address);
    }

    public string Build()
    {
        Directory.CreateDirectory(Root);
        var sys = Path.Combine(Root, "sys");
        var busDevices = Dir(sys, "bus", "pci", "devices");
        var drivers = Dir(sys, "bus", "pci", "drivers");
        Dir(sys, "bus", "mdev", "devices");
        Dir(sys, "class", "mdev_bus");
        File.WriteAllText(Path.Combine(sys, "bus", "pci", "drivers_probe"), string.Empty);
        var groups = Path.Combine(sys, "kernel", "iommu_groups");

        foreach (var name in _drivers) DriverDirectory(drivers, name);

        foreach (var d in _devices) WriteFunction(d);

        // Virtual functions: the PF's virtfnN links and counts, once every device directory exists.
        foreach (var pf in _devices.Where(x => x.SriovTotalVfs.HasValue)) WriteSriov(pf);

        foreach (var m in _mdevs)
        {
            if (m.IommuGroup is int g && !_groupTypes.ContainsKey(g)) _groupTypes[g] = "unknown";
            WriteMdevDevice(Root, DeviceDirectory(m.ParentAddress), m.Uuid, m.TypeId, m.IommuGroup,
                m.IommuGroup is int n && _groupTypes.TryGetValue(n, out var t) ? t : "unknown");
        }

        if (LoadedModules.Count > 0)
        {
            var proc = Dir(Root, "proc");
            File.WriteAllText(Path.Combine(proc, "modules"), string.Concat(LoadedModules.Select(m => $"{m} 45056 0 - Live 0x0000000000000000\n")));
            foreach (var m in LoadedModules) Text(Dir(sys, "module", m), "initstate", "live");
        }
        foreach (var (hostPath, content) in _files)
        {
            var path = Root + hostPath;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, content);
        }

        if (CpuVendor is not null)
        {
            var proc = Dir(Root, "proc");
            File.WriteAllText(Path.Combine(proc, "cpuinfo"),
                $"processor\t: 0\nvendor_id\t: {CpuVendor}\ncpu family\t: 6\nmodel name\t: Fixture CPU\nflags\t\t: {CpuFlags}\n" +
                (PhysicalAddressBits is int bits ? $"address sizes\t: {bits} bits physical, 48 bits virtual\n" : string.Empty) + "\n");
        }
        foreach (var unit in IommuUnits)
        {
            var unitDir = Dir(sys, "devices", "virtual", "iommu", unit);
            Link(Path.Combine(Dir(sys, "class", "iommu"), unit), unitDir);
        }
        if (Cmdline is not null) File.WriteAllText(Path.Combine(Dir(Root, "proc"), "cmdline"), Cmdline + "\n");
        if (PciIds is not null) File.WriteAllText(Path.Combine(Dir(Root, "usr", "share", "misc"), "pci.ids"), PciIds);
        Usage.Write(this);
        return Root;
    }

    /// <summary>Writes one function: its directory, attributes, bus/driver/group links, mdev types and NVIDIA VF files.</summary>
    private void WriteFunction(FixtureDevice d)
    {
        var sys = Path.Combine(Root, "sys");
        var busDevices = Path.Combine(sys, "bus", "pci", "devices");
        var drivers = Path.Combine(sys, "bus", "pci", "drivers");
        var groups = Path.Combine(sys, "kernel", "iommu_groups");
        var dir = DeviceDirectory(d.Address);
        Directory.CreateDirectory(dir);
        WriteDevice(d, dir);
        Link(Path.Combine(busDevices, d.Address), dir);
        if (d.Driver is not null)
        {
            var driverDir = DriverDirectory(drivers, d.Driver);
            Link(Path.Combine(driverDir, d.Address), dir);
            Link(Path.Combine(dir, "driver"), driverDir);
        }
        if (d.IommuGroup is int g)
        {
            var groupDir = Dir(groups, g.ToString(CultureInfo.InvariantCulture));
            Dir(groupDir, "devices");
            WriteGroupType(groupDir, g);
            Link(Path.Combine(groupDir, "devices", d.Address), dir);
            Link(Path.Combine(dir, "iommu_group"), groupDir);
        }
        if (d.PhysicalFunction is not null)
        {
            var pfDir = DeviceDirectory(d.PhysicalFunction);
            Link(Path.Combine(dir, "physfn"), pfDir);
        }
        if (d.MdevTypes.Count > 0)
        {
            Link(Path.Combine(sys, "class", "mdev_bus", d.Address), dir);
            foreach (var t in d.MdevTypes)
            {
                var typeDir = Dir(dir, "mdev_supported_types", t.Id);
                Dir(typeDir, "devices");
                if (t.Name is not null) Text(typeDir, "name", t.Name);
                if (t.Description is not null) Text(typeDir, "description", t.Description);
                Text(typeDir, "device_api", t.DeviceApi);
                Text(typeDir, "available_instances", t.AvailableInstances.ToString(CultureInfo.InvariantCulture));
                File.WriteAllText(Path.Combine(typeDir, "create"), string.Empty);
            }
        }
        if (d.CreatableVgpuTypes is not null)
        {
            var nv = Dir(dir, "nvidia");
            var sb = new StringBuilder("ID    : vGPU Name\n");
            foreach (var (id, name) in d.CreatableVgpuTypes) sb.Append(CultureInfo.InvariantCulture, $"{id,-5} : {name}\n");
            File.WriteAllText(Path.Combine(nv, "creatable_vgpu_types"), sb.ToString());
            Text(nv, "current_vgpu_type", d.CurrentVgpuType.ToString(CultureInfo.InvariantCulture));
        }
    }

    private void WriteSriov(FixtureDevice pf)
    {
        var dir = DeviceDirectory(pf.Address);
        var vfs = _devices.Where(x => x.PhysicalFunction == pf.Address).ToList();
        Text(dir, "sriov_totalvfs", pf.SriovTotalVfs!.Value.ToString(CultureInfo.InvariantCulture));
        Text(dir, "sriov_numvfs", vfs.Count.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < vfs.Count; i++) Link(Path.Combine(dir, "virtfn" + i.ToString(CultureInfo.InvariantCulture)), DeviceDirectory(vfs[i].Address));
    }

    /// <summary>
    /// Enables virtual functions on a built tree, as the PF's driver does when <c>sriov_numvfs</c> is written: adds
    /// the functions and writes them, their links and the PF's counts.
    /// </summary>
    public IReadOnlyList<FixtureDevice> AddVirtualFunctions(string pfAddress, IEnumerable<FixtureDevice> vfs)
    {
        var pf = _devices.First(x => x.Address == pfAddress);
        var added = vfs.ToList();
        foreach (var vf in added)
        {
            vf.PhysicalFunction = pfAddress;
            _devices.Add(vf);
            WriteFunction(vf);
        }
        WriteSriov(pf);
        return added;
    }

    /// <summary>
    /// Disables the virtual functions of a PF on a built tree, as the kernel does when 0 is written to
    /// <c>sriov_numvfs</c>: each function's directory, its bus, driver and IOMMU group links (and the group it was alone
    /// in) go, then the PF's <c>virtfn</c> links (last: a command that waits for them to go finds the rest gone too).
    /// The count is left as written (0). Returns the functions removed.
    /// </summary>
    public IReadOnlyList<FixtureDevice> RemoveVirtualFunctions(string pfAddress)
    {
        var vfs = _devices.Where(x => x.PhysicalFunction == pfAddress).ToList();
        var sys = Path.Combine(Root, "sys");
        var pfDir = DeviceDirectory(pfAddress);
        foreach (var vf in vfs)
        {
            var dir = DeviceDirectory(vf.Address);
            File.Delete(Path.Combine(sys, "bus", "pci", "devices", vf.Address));
            if (vf.Driver is not null) File.Delete(Path.Combine(sys, "bus", "pci", "drivers", vf.Driver, vf.Address));
            if (vf.IommuGroup is int g)
            {
                var groupDir = Path.Combine(sys, "kernel", "iommu_groups", g.ToString(CultureInfo.InvariantCulture));
                File.Delete(Path.Combine(groupDir, "devices", vf.Address));
                if (!Directory.EnumerateFileSystemEntries(Path.Combine(groupDir, "devices")).Any()) Directory.Delete(groupDir, recursive: true);
            }
            Directory.Delete(dir, recursive: true);
            _devices.Remove(vf);
        }
        for (var i = 0; i < vfs.Count; i++) File.Delete(Path.Combine(pfDir, "virtfn" + i.ToString(CultureInfo.InvariantCulture)));
        return vfs;
    }

    private static string DriverDirectory(string drivers, string name)
    {
        var driverDir = Dir(drivers, name);
        foreach (var f in new[] { "bind", "unbind", "new_id", "remove_id" })
        {
            var p = Path.Combine(driverDir, f);
            if (!File.Exists(p)) File.WriteAllText(p, string.Empty);
        }
        return driverDir;
    }

    /// <summary>
    /// Writes a created mediated device the way the kernel shows it: <c>PARENT/UUID</c> with <c>mdev_type</c>,
    /// <c>remove</c> and <c>iommu_group</c>, linked from the type's <c>devices</c> and from <c>/sys/bus/mdev/devices</c>.
    /// </summary>
    public static string WriteMdevDevice(string root, string parentDir, string uuid, string typeId, int? iommuGroup, string groupType = "unknown")
    {
        var sys = Path.Combine(root, "sys");
        var dir = Dir(parentDir, uuid);
        Link(Path.Combine(dir, "mdev_type"), Path.Combine(parentDir, "mdev_supported_types", typeId));
        Link(Path.Combine(Dir(parentDir, "mdev_supported_types", typeId, "devices"), uuid), dir);
        File.WriteAllText(Path.Combine(dir, "remove"), string.Empty);
        Link(Path.Combine(Dir(sys, "bus", "mdev", "devices"), uuid), dir);
        if (iommuGroup is int g)
        {
            var groupDir = Dir(sys, "kernel", "iommu_groups", g.ToString(CultureInfo.InvariantCulture));
            Dir(groupDir, "devices");
            File.WriteAllText(Path.Combine(groupDir, "type"), groupType + "\n");
            Link(Path.Combine(groupDir, "devices", uuid), dir);
            Link(Path.Combine(dir, "iommu_group"), groupDir);
        }
        return dir;
    }

    private void WriteGroupType(string groupDir, int group) =>
        File.WriteAllText(Path.Combine(groupDir, "type"), (_groupTypes.TryGetValue(group, out var t) ? t : "DMA") + "\n");

    private void WriteDevice(FixtureDevice d, string dir)
    {
        Hex(dir, "vendor", d.Vendor, 4);
        Hex(dir, "device", d.Device, 4);
        Hex(dir, "subsystem_vendor", d.SubsystemVendor, 4);
        Hex(dir, "subsystem_device", d.SubsystemDevice, 4);
        Hex(dir, "class", d.ClassCode, 6);
        Hex(dir, "revision", d.Revision, 2);
        Text(dir, "driver_override", d.DriverOverride ?? "(null)");
        Text(dir, "numa_node", d.NumaNode.ToString(CultureInfo.InvariantCulture));
        Text(dir, "enable", d.Driver is null ? "0" : "1");
        if ((d.ClassCode >> 8) == 0x0300) Text(dir, "boot_vga", d.BootVga ? "1" : "0");
        if (d.Link is { } link)
        {
            Text(dir, "current_link_speed", link.CurrentSpeed);
            Text(dir, "current_link_width", link.CurrentWidth.ToString(CultureInfo.InvariantCulture));
            Text(dir, "max_link_speed", link.MaxSpeed);
            Text(dir, "max_link_width", link.MaxWidth.ToString(CultureInfo.InvariantCulture));
        }
        File.WriteAllBytes(Path.Combine(dir, "config"), Config(d));
        File.WriteAllText(Path.Combine(dir, "remove"), string.Empty);
        File.WriteAllText(Path.Combine(dir, "resource"), Resource(d));
        if (d.ResetMethod is not null) Text(dir, "reset_method", d.ResetMethod);
    }

    private ulong _next64 = 0x38000000000UL;
    private ulong _next32 = 0xe0000000UL;

    /// <summary>
    /// The <c>resource</c> file as the kernel prints it: <c>0x%016llx 0x%016llx 0x%016llx</c> per line, six BARs, the
    /// ROM and six SR-IOV BARs for an endpoint; each BAR at a host address aligned to its size.
    /// </summary>
    private string Resource(FixtureDevice d)
    {
        var sb = new StringBuilder();
        var lines = d.IsBridge ? 17 : 13;
        for (var i = 0; i < lines; i++)
        {
            var bar = d.Bars.FirstOrDefault(b => b.Index == i);
            ulong start = 0, end = 0, flags = 0;
            if (bar is not null)
            {
                if ((bar.Flags & FixtureBar.Io) != 0)
                {
                    start = 0xe000;
                }
                else if ((bar.Flags & FixtureBar.Memory64) != 0)
                {
                    start = (_next64 + bar.Size - 1) & ~(bar.Size - 1);
                    _next64 = start + bar.Size;
                }
                else
                {
                    start = (_next32 + bar.Size - 1) & ~(bar.Size - 1);
                    _next32 = start + bar.Size;
                }
                end = start + bar.Size - 1;
                flags = bar.Flags;
            }
            sb.Append(CultureInfo.InvariantCulture, $"0x{start:x16} 0x{end:x16} 0x{flags:x16}\n");
        }
        return sb.ToString();
    }

    /// <summary>The first 64 bytes of configuration space, consistent with the text attributes.</summary>
    public byte[] Config(FixtureDevice d)
    {
        var c = new byte[d.Flr is null ? 64 : 256];
        Put16(c, 0x00, d.Vendor);
        Put16(c, 0x02, d.Device);
        Put16(c, 0x04, (ushort)(d.Driver is null ? 0x0000 : 0x0007));
        Put16(c, 0x06, 0x0010); // capabilities list
        c[0x08] = d.Revision;
        c[0x09] = (byte)d.ClassCode;
        c[0x0a] = (byte)(d.ClassCode >> 8);
        c[0x0b] = (byte)(d.ClassCode >> 16);
        var multifunction = _devices.Any(x => x != d && SameSlot(x.Address, d.Address));
        c[0x0e] = (byte)((d.IsBridge ? 0x01 : 0x00) | (multifunction ? 0x80 : 0x00));
        if (d.IsBridge)
        {
            // primary, secondary and subordinate bus numbers of a bridge
            c[0x18] = Bus(d.Address);
            var below = _devices.Where(x => IsBelow(x, d)).Select(x => Bus(x.Address)).DefaultIfEmpty((byte)(Bus(d.Address) + 1)).ToList();
            c[0x19] = below.Min();
            c[0x1a] = below.Max();
        }
        else
        {
            Put16(c, 0x2c, d.SubsystemVendor);
            Put16(c, 0x2e, d.SubsystemDevice);
        }
        c[0x34] = 0x00;
        if (d.Flr is bool flr)
        {
            // PCI Express capability (id 0x10) at 0x40; Device Capabilities at +4, Function Level Reset is bit 28.
            c[0x34] = 0x40;
            c[0x40] = 0x10;
            c[0x41] = 0x00;
            Put16(c, 0x42, 0x0002);
            var devcap = flr ? 1u << 28 : 0u;
            c[0x44] = (byte)devcap;
            c[0x45] = (byte)(devcap >> 8);
            c[0x46] = (byte)(devcap >> 16);
            c[0x47] = (byte)(devcap >> 24);
        }
        return c;
    }

    private bool IsBelow(FixtureDevice x, FixtureDevice bridge)
    {
        var p = x.Parent;
        while (p is not null)
        {
            if (p == bridge.Address) return true;
            p = _devices.First(y => y.Address == p).Parent;
        }
        return false;
    }

    private static bool SameSlot(string a, string b) => a.Length == b.Length && a[..^1] == b[..^1];

    private static byte Bus(string address)
    {
        var parts = address.Split(':');
        return byte.Parse(parts[^2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }

    private static void Put16(byte[] c, int offset, ushort value)
    {
        c[offset] = (byte)value;
        c[offset + 1] = (byte)(value >> 8);
    }

    private static string Dir(string basePath, params string[] parts)
    {
        var p = Path.Combine(new[] { basePath }.Concat(parts).ToArray());
        Directory.CreateDirectory(p);
        return p;
    }

    private static void Text(string dir, string name, string value) => File.WriteAllText(Path.Combine(dir, name), value + "\n");

    private static void Hex(string dir, string name, uint value, int digits) =>
        Text(dir, name, "0x" + value.ToString("x" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    /// <summary>A relative symbolic link, as sysfs makes them.</summary>
    private static void Link(string linkPath, string targetPath)
    {
        if (File.Exists(linkPath) || Directory.Exists(linkPath) || new FileInfo(linkPath).LinkTarget is not null) File.Delete(linkPath);
        var relative = Path.GetRelativePath(Path.GetDirectoryName(linkPath)!, targetPath);
        File.CreateSymbolicLink(linkPath, relative);
    }
}
