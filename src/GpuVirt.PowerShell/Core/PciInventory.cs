using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using GpuVirt.Core.Safety;

namespace GpuVirt.Core
{
    /// <summary>
    /// Reads the PCI functions of a host from <c>/sys/bus/pci/devices</c> under its root. An attribute that is
    /// missing or unreadable leaves its property empty and never stops the enumeration.
    /// </summary>
    internal sealed class PciInventory
    {

        /// <summary>Below this many functions one thread reads them all; above it, one thread per processor.</summary>
        private const int ParallelThreshold = 64;

        private readonly bool _displayAsGpu;
        private readonly Lazy<IReadOnlyList<PciDevice>> _devices;
        private readonly object _gate = new object();
        private readonly Dictionary<PciAddress, PciDevice?> _read = new Dictionary<PciAddress, PciDevice?>();
        private List<(PciAddress Address, string Entry)>? _entries;
        private Dictionary<PciAddress, PciDevice>? _byAddress;
        private PciIds? _ids;

        public PciInventory(HostRoot root, bool displayAsGpu = false)
        {
            Root = root ?? throw new ArgumentNullException(nameof(root));
            _displayAsGpu = displayAsGpu;
            _devices = new Lazy<IReadOnlyList<PciDevice>>(ReadAll);
        }

        public HostRoot Root { get; }

        private HostCriticalDevices? _critical;

        /// <summary>The functions the running host depends on (read once per inventory).</summary>
        public HostCriticalDevices HostCritical
        {
            get
            {
                lock (_gate) return _critical ??= HostCriticalDevices.Read(Root);
            }
        }

        /// <summary>Drivers that leave a function free for a guest.</summary>
        public static bool IsPassthroughDriver(string? driver) =>
            driver is null || driver == HostDriverBinding.VfioPci || driver == HostDriverBinding.PciStub;

        /// <summary>Every PCI function, sorted by address.</summary>
        public IReadOnlyList<PciDevice> Devices => _devices.Value;

        /// <summary>One function, read on its own unless the whole bus has been read already; null when there is none.</summary>
        public PciDevice? Find(PciAddress address)
        {
            if (_devices.IsValueCreated)
            {
                var all = Devices;
                Dictionary<PciAddress, PciDevice> byAddress;
                lock (_gate) byAddress = _byAddress ??= all.ToDictionary(d => d.PciAddress);
                return byAddress.TryGetValue(address, out var found) ? found : null;
            }
            return ReadOne(address, DeviceDirectory(address));
        }

        /// <summary>The GPUs (display-class functions) with their companions and vGPU capabilities.</summary>
        /// <remarks>
        /// Unless the whole bus has been read already, only the class of every function is read, and the display
        /// functions and the other functions of their slots fully: a host of thousands of functions has a few GPUs.
        /// </remarks>
        public IReadOnlyList<GpuDevice> Gpus()
        {
            IReadOnlyList<PciDevice> candidates;
            if (_devices.IsValueCreated)
            {
                candidates = Devices;
            }
            else
            {
                var entries = Entries();
                var slots = new HashSet<PciAddress>();
                var unknown = new HashSet<PciAddress>();
                foreach (var (address, entry) in entries)
                {
                    // A class that cannot be read may be a GPU's: that function is read fully, which reports why.
                    var classCode = Sysfs.TryReadHex(entry + "/class");
                    if (classCode is null) unknown.Add(address);
                    else if ((classCode.Value >> 16) == 0x03) slots.Add(address.Slot);
                }
                candidates = ReadMany(entries.Where(e => slots.Contains(e.Address.Slot) || unknown.Contains(e.Address)).ToList(), includesEveryDisplay: true);
            }
            var gpus = candidates.OfType<GpuDevice>().ToList();
            if (gpus.Count == 0) return gpus;
            var bySlot = candidates.ToLookup(d => d.PciAddress.Slot);
            foreach (var gpu in gpus)
            {
                gpu.CompanionDevices = bySlot[gpu.PciAddress.Slot].Where(d => d.PciAddress != gpu.PciAddress && !d.IsDisplay).ToList();
                gpu.SupportsMdev = System.IO.Directory.Exists(Path.Combine(gpu.Directory, "mdev_supported_types"));
                gpu.VgpuVirtualFunctionAddresses = gpu.VirtualFunctionAddresses
                    .Where(vf => File.Exists(Path.Combine(DeviceDirectory(vf), "nvidia", "creatable_vgpu_types")))
                    .ToList();
            }
            return gpus;
        }

        /// <summary>The <see cref="ErrorIds.PciDeviceNotFound"/> error for a well-formed address with no device.</summary>
        public static GpuVirtException NotFound(PciAddress address, object? target = null) =>
            new GpuVirtException(ErrorIds.PciDeviceNotFound, ErrorKind.ObjectNotFound,
                $"No PCI device at {address} was found under '{HostPaths.PciDevices}'.", target ?? address);

        /// <summary>The directory of a function as the module reads it: <c>&lt;root&gt;/sys/bus/pci/devices/&lt;address&gt;</c>.</summary>
        public string DeviceDirectory(PciAddress address) => Path.Combine(Root.Resolve(HostPaths.PciDevices), address.ToString());

        /// <summary>The functions listed in <c>/sys/bus/pci/devices</c> (names that are addresses), read once.</summary>
        private List<(PciAddress Address, string Entry)> Entries()
        {
            lock (_gate)
            {
                if (_entries != null) return _entries;
                var busDir = Root.Resolve(HostPaths.PciDevices);
                var names = Sysfs.TryListNames(busDir);
                if (names is null)
                {
                    if (System.IO.Directory.Exists(busDir))
                    {
                        throw Sysfs.RootRequired(busDir, "list", new UnauthorizedAccessException(busDir));
                    }
                    names = new List<string>();
                }
                var entries = new List<(PciAddress, string)>(names.Count);
                foreach (var name in names)
                {
                    if (PciAddress.TryParse(name, out var address)) entries.Add((address, busDir + "/" + name));
                }
                return _entries = entries;
            }
        }

        private PciIds Ids
        {
            get
            {
                lock (_gate) return _ids ??= PciIds.For(Root);
            }
        }

        private IReadOnlyList<PciDevice> ReadAll() => ReadMany(Entries(), includesEveryDisplay: true);

        /// <summary>Reads the given functions (those read before are kept), in parallel on a large host; sorted by address.</summary>
        /// <param name="entries">The functions to read.</param>
        /// <param name="includesEveryDisplay">
        /// They include every display function of the host: <c>boot_vga</c> (which only VGA functions have) is then
        /// known for all of them, and the console need not be looked up on every function again.
        /// </param>
        private IReadOnlyList<PciDevice> ReadMany(List<(PciAddress Address, string Entry)> entries, bool includesEveryDisplay = false)
        {
            var ids = Ids;
            var devices = new PciDevice?[entries.Count];
            void ReadAt(int i)
            {
                var (address, entry) = entries[i];
                lock (_gate)
                {
                    if (_read.TryGetValue(address, out var known))
                    {
                        devices[i] = known;
                        return;
                    }
                }
                devices[i] = ReadDevice(entry, address, ids);
            }
            if (entries.Count < ParallelThreshold || Environment.ProcessorCount < 2)
            {
                for (var i = 0; i < entries.Count; i++) ReadAt(i);
            }
            else
            {
                System.Threading.Tasks.Parallel.For(0, entries.Count,
                    new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, ReadAt);
            }
            var list = new List<PciDevice>(entries.Count);
            foreach (var device in devices) if (device != null) list.Add(device);
            list.Sort((a, b) => a.PciAddress.CompareTo(b.PciAddress));
            if (includesEveryDisplay)
            {
                lock (_gate) _critical ??= HostCriticalDevices.Read(Root, list.Where(d => d.IsBootVga).Select(d => d.PciAddress).ToList());
            }
            var critical = HostCritical;
            lock (_gate)
            {
                foreach (var device in list)
                {
                    if (_read.ContainsKey(device.PciAddress)) continue;
                    device.Dependencies = critical.For(device.PciAddress);
                    device.HostCritical = critical.Describe(device.PciAddress);
                    _read[device.PciAddress] = device;
                }
            }
            return list;
        }

        private PciDevice? ReadOne(PciAddress address, string entry)
        {
            lock (_gate)
            {
                if (_read.TryGetValue(address, out var known)) return known;
            }
            var device = ReadDevice(entry, address, Ids);
            if (device != null)
            {
                device.Dependencies = HostCritical.For(address);
                device.HostCritical = HostCritical.Describe(address);
            }
            lock (_gate)
            {
                if (_read.TryGetValue(address, out var raced)) return raced;
                _read[address] = device;
            }
            return device;
        }

        private readonly List<GpuVirtException> _problems = new List<GpuVirtException>();

        /// <summary>
        /// Functions whose identity (<c>class</c>, <c>vendor</c>, <c>device</c>) could not be read, each naming the
        /// attribute and why (<see cref="ErrorIds.PciAttributeUnreadable"/>): listed, never dropped in silence.
        /// </summary>
        public IReadOnlyList<GpuVirtException> Problems
        {
            get
            {
                lock (_gate) return _problems.OrderBy(p => p.Target is PciAddress a ? a : default).ToList();
            }
        }

        /// <summary>An identity attribute (hex); 0 and a line in <paramref name="unreadable"/> when it cannot be read.</summary>
        private static uint Identity(SysfsDirectory dir, byte[] file, string attribute, List<string> unreadable)
        {
            if (dir.Hex(file) is uint value) return value;
            var text = dir.Text(file, out var errno);
            if (Sysfs.ParseHex(text) is uint again) return again;
            unreadable.Add(text is null
                ? $"'{attribute}' could not be read ({(errno == Errno.ENOENT ? "it does not exist" : Errno.Describe(errno) + ", errno " + errno.ToString(CultureInfo.InvariantCulture))})"
                : $"'{attribute}' reads '{text}', which is no hex number");
            return 0;
        }

        private static readonly byte[] ClassFile = SysfsDirectory.Name("class");
        private static readonly byte[] VendorFile = SysfsDirectory.Name("vendor");
        private static readonly byte[] DeviceFile = SysfsDirectory.Name("device");
        private static readonly byte[] SubsystemVendorFile = SysfsDirectory.Name("subsystem_vendor");
        private static readonly byte[] SubsystemDeviceFile = SysfsDirectory.Name("subsystem_device");
        private static readonly byte[] RevisionFile = SysfsDirectory.Name("revision");
        private static readonly byte[] DriverLink = SysfsDirectory.Name("driver");
        private static readonly byte[] DriverOverrideFile = SysfsDirectory.Name("driver_override");
        private static readonly byte[] IommuGroupLink = SysfsDirectory.Name("iommu_group");
        private static readonly byte[] BootVgaFile = SysfsDirectory.Name("boot_vga");
        private static readonly byte[] NumaNodeFile = SysfsDirectory.Name("numa_node");
        private static readonly byte[] CurrentLinkSpeedFile = SysfsDirectory.Name("current_link_speed");
        private static readonly byte[] MaxLinkSpeedFile = SysfsDirectory.Name("max_link_speed");
        private static readonly byte[] CurrentLinkWidthFile = SysfsDirectory.Name("current_link_width");
        private static readonly byte[] MaxLinkWidthFile = SysfsDirectory.Name("max_link_width");
        private static readonly byte[] PhysfnLink = SysfsDirectory.Name("physfn");
        private static readonly byte[] SriovTotalVfsFile = SysfsDirectory.Name("sriov_totalvfs");
        private static readonly byte[] SriovNumVfsFile = SysfsDirectory.Name("sriov_numvfs");

        private PciDevice? ReadDevice(string entry, PciAddress address, PciIds ids)
        {
            var realDir = Sysfs.TryResolveLink(entry) ?? entry;
            // Attributes are read relative to the real directory, held open: one path walk for all of them.
            using var dir = SysfsDirectory.TryOpen(realDir);
            if (dir is null) return null;

            var unreadable = new List<string>();
            var classCode = Identity(dir, ClassFile, "class", unreadable);
            var device = _displayAsGpu && (classCode >> 16) == 0x03 ? new GpuDevice() : new PciDevice();
            device.PciAddress = address;
            device.Directory = entry;
            device.Root = Root.Directory;
            device.SysfsPath = Root.ToHostPath(realDir);
            device.ClassCode = classCode;
            device.VendorId = (ushort)Identity(dir, VendorFile, "vendor", unreadable);
            device.DeviceId = (ushort)Identity(dir, DeviceFile, "device", unreadable);
            if (unreadable.Count > 0)
            {
                var problem = new GpuVirtException(ErrorIds.PciAttributeUnreadable, ErrorKind.InvalidData,
                    $"{address}: {string.Join("; ", unreadable)} (under '{device.SysfsPath}'). It is listed with 0 for what could not be read" +
                    (_displayAsGpu ? ", so it cannot be told whether it is a GPU." : "."), address);
                lock (_gate) _problems.Add(problem);
            }
            device.SubsystemVendorId = (ushort?)dir.Hex(SubsystemVendorFile);
            device.SubsystemDeviceId = (ushort?)dir.Hex(SubsystemDeviceFile);
            device.Revision = (byte?)dir.Hex(RevisionFile);

            device.VendorName = ids.VendorName(device.VendorId);
            device.DeviceName = ids.DeviceName(device.VendorId, device.DeviceId);
            device.ClassName = ids.ClassName(classCode);
            if (device.SubsystemVendorId is ushort sv && device.SubsystemDeviceId is ushort sd)
            {
                device.SubsystemName = ids.SubsystemName(device.VendorId, device.DeviceId, sv, sd);
            }

            device.Driver = dir.LinkName(DriverLink);
            var overrideText = dir.Text(DriverOverrideFile);
            device.DriverOverride = string.IsNullOrEmpty(overrideText) || overrideText == "(null)" ? null : overrideText;
            var group = dir.LinkName(IommuGroupLink);
            device.IommuGroup = group != null && int.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var g) ? g : (int?)null;

            // PCI-to-PCI (0x0604), CardBus (0x0607) and semi-transparent (0x0609) bridges; root and switch ports are 0x0604.
            var subClass = classCode >> 8;
            device.IsBridge = subClass == 0x0604 || subClass == 0x0607 || subClass == 0x0609;
            device.IsBootVga = device.IsDisplay && dir.Text(BootVgaFile) == "1";
            var numa = dir.Int(NumaNodeFile);
            device.NumaNode = numa is int n && n >= 0 ? n : (int?)null;
            device.CurrentLinkSpeed = dir.Text(CurrentLinkSpeedFile);
            device.MaxLinkSpeed = dir.Text(MaxLinkSpeedFile);
            device.CurrentLinkWidth = dir.Int(CurrentLinkWidthFile);
            device.MaxLinkWidth = dir.Int(MaxLinkWidthFile);

            var parentName = Path.GetFileName(Path.GetDirectoryName(realDir) ?? string.Empty);
            device.ParentBridgeAddress = PciAddress.TryParse(parentName, out var parent) ? parent : (PciAddress?)null;

            var physfn = dir.LinkName(PhysfnLink);
            device.PhysicalFunctionAddress = PciAddress.TryParse(physfn, out var pf) ? pf : (PciAddress?)null;
            device.SriovTotalVfs = dir.Int(SriovTotalVfsFile);
            if (device.SriovTotalVfs.HasValue)
            {
                device.VirtualFunctionAddresses = ReadVirtualFunctions(dir);
            }
            return device;
        }

        private static IReadOnlyList<PciAddress> ReadVirtualFunctions(SysfsDirectory dir)
        {
            var count = dir.Int(SriovNumVfsFile) ?? 0;
            var vfs = new List<PciAddress>(count);
            for (var i = 0; i < count; i++)
            {
                var name = dir.LinkName(SysfsDirectory.Name("virtfn" + i.ToString(CultureInfo.InvariantCulture)));
                if (PciAddress.TryParse(name, out var vf)) vfs.Add(vf);
            }
            return vfs;
        }
    }
}
