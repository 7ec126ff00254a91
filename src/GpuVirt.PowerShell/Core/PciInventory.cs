using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>
    /// Reads the PCI functions of a host from <c>/sys/bus/pci/devices</c> under its root. An attribute that is
    /// missing or unreadable leaves its property empty and never stops the enumeration.
    /// </summary>
    public sealed class PciInventory
    {
        private const string VfioPci = "vfio-pci";
        private const string PciStub = "pci-stub";
        private readonly Lazy<IReadOnlyList<PciDevice>> _devices;
        private Dictionary<PciAddress, PciDevice>? _byAddress;

        public PciInventory(HostRoot root, bool displayAsGpu = false)
        {
            Root = root ?? throw new ArgumentNullException(nameof(root));
            _devices = new Lazy<IReadOnlyList<PciDevice>>(() => ReadAll(displayAsGpu));
        }

        public HostRoot Root { get; }

        private HostCriticalDevices? _critical;

        /// <summary>The functions the running host depends on (read once per inventory).</summary>
        public HostCriticalDevices HostCritical => _critical ??= HostCriticalDevices.Read(Root);

        /// <summary>Drivers that leave a function free for a guest.</summary>
        public static bool IsPassthroughDriver(string? driver) =>
            driver is null || driver == VfioPci || driver == PciStub;

        /// <summary>Every PCI function, sorted by address.</summary>
        public IReadOnlyList<PciDevice> Devices => _devices.Value;

        public PciDevice? Find(PciAddress address)
        {
            _byAddress ??= Devices.ToDictionary(d => d.Address);
            return _byAddress.TryGetValue(address, out var d) ? d : null;
        }

        /// <summary>The GPUs (display-class functions) with their companions and vGPU capabilities.</summary>
        public IReadOnlyList<GpuDevice> Gpus()
        {
            var gpus = Devices.OfType<GpuDevice>().ToList();
            if (gpus.Count == 0) return gpus;
            var bySlot = Devices.ToLookup(d => d.Address.Slot);
            foreach (var gpu in gpus)
            {
                gpu.Companions = bySlot[gpu.Address.Slot].Where(d => d.Address != gpu.Address && !d.IsDisplay).ToList();
                gpu.SupportsMdev = Directory.Exists(Path.Combine(gpu.Directory, "mdev_supported_types"));
                gpu.VgpuVirtualFunctions = gpu.VirtualFunctions
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

        private IReadOnlyList<PciDevice> ReadAll(bool displayAsGpu)
        {
            var ids = PciIds.For(Root);
            var busDir = Root.Resolve(HostPaths.PciDevices);
            string[] entries;
            try
            {
                entries = System.IO.Directory.GetFileSystemEntries(busDir);
            }
            catch (DirectoryNotFoundException)
            {
                return Array.Empty<PciDevice>();
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(busDir, "list", e);
            }

            var list = new List<PciDevice>(entries.Length);
            foreach (var entry in entries)
            {
                if (!PciAddress.TryParse(Path.GetFileName(entry), out var address)) continue;
                var device = ReadDevice(entry, address, ids, displayAsGpu);
                if (device != null) list.Add(device);
            }
            list.Sort((a, b) => a.Address.CompareTo(b.Address));
            var critical = HostCritical;
            foreach (var device in list)
            {
                device.HostDependencies = critical.For(device.Address);
                device.HostCritical = critical.Describe(device.Address);
            }
            return list;
        }

        private readonly List<GpuVirtException> _problems = new List<GpuVirtException>();

        /// <summary>
        /// Functions whose identity (<c>class</c>, <c>vendor</c>, <c>device</c>) could not be read, each naming the
        /// attribute and why (<see cref="ErrorIds.PciAttributeUnreadable"/>): listed, never dropped in silence.
        /// </summary>
        public IReadOnlyList<GpuVirtException> Problems => _problems;

        /// <summary>An identity attribute (hex); 0 and a line in <paramref name="unreadable"/> when it cannot be read.</summary>
        private static uint Identity(string dir, string attribute, List<string> unreadable)
        {
            var text = Sysfs.TryReadText(Path.Combine(dir, attribute), out var errno);
            var value = Sysfs.ParseHex(text);
            if (value is uint v) return v;
            unreadable.Add(text is null
                ? $"'{attribute}' could not be read ({(errno == Errno.ENOENT ? "it does not exist" : Errno.Describe(errno) + ", errno " + errno.ToString(CultureInfo.InvariantCulture))})"
                : $"'{attribute}' reads '{text}', which is no hex number");
            return 0;
        }

        private PciDevice? ReadDevice(string entry, PciAddress address, PciIds ids, bool displayAsGpu)
        {
            var realDir = Sysfs.TryResolveLink(entry) ?? entry;
            if (!System.IO.Directory.Exists(realDir)) return null;

            // Attributes are read from the real directory: no symlink to resolve on every open.
            var dir = realDir;
            var unreadable = new List<string>();
            var classCode = Identity(dir, "class", unreadable);
            var device = displayAsGpu && (classCode >> 16) == 0x03 ? new GpuDevice() : new PciDevice();
            device.Address = address;
            device.Directory = entry;
            device.SysfsPath = Root.ToHostPath(realDir);
            device.ClassCode = classCode;
            device.VendorId = (ushort)Identity(dir, "vendor", unreadable);
            device.DeviceId = (ushort)Identity(dir, "device", unreadable);
            if (unreadable.Count > 0)
            {
                _problems.Add(new GpuVirtException(ErrorIds.PciAttributeUnreadable, ErrorKind.InvalidData,
                    $"{address}: {string.Join("; ", unreadable)} (under '{device.SysfsPath}'). It is listed with 0 for what could not be read" +
                    (displayAsGpu ? ", so it cannot be told whether it is a GPU." : "."), address));
            }
            device.SubsystemVendorId = (ushort?)Sysfs.TryReadHex(Path.Combine(dir, "subsystem_vendor"));
            device.SubsystemDeviceId = (ushort?)Sysfs.TryReadHex(Path.Combine(dir, "subsystem_device"));
            device.Revision = (byte?)Sysfs.TryReadHex(Path.Combine(dir, "revision"));

            device.VendorName = ids.VendorName(device.VendorId);
            device.DeviceName = ids.DeviceName(device.VendorId, device.DeviceId);
            device.ClassName = ids.ClassName(classCode);
            if (device.SubsystemVendorId is ushort sv && device.SubsystemDeviceId is ushort sd)
            {
                device.SubsystemName = ids.SubsystemName(device.VendorId, device.DeviceId, sv, sd);
            }

            device.Driver = Sysfs.TryReadLinkName(Path.Combine(dir, "driver"));
            var overrideText = Sysfs.TryReadText(Path.Combine(dir, "driver_override"));
            device.DriverOverride = string.IsNullOrEmpty(overrideText) || overrideText == "(null)" ? null : overrideText;
            var group = Sysfs.TryReadLinkName(Path.Combine(dir, "iommu_group"));
            device.IommuGroup = group != null && int.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var g) ? g : (int?)null;

            // PCI-to-PCI (0x0604), CardBus (0x0607) and semi-transparent (0x0609) bridges; root and switch ports are 0x0604.
            var subClass = classCode >> 8;
            device.IsBridge = subClass == 0x0604 || subClass == 0x0607 || subClass == 0x0609;
            device.IsBootVga = device.IsDisplay && Sysfs.TryReadText(Path.Combine(dir, "boot_vga")) == "1";
            var numa = Sysfs.TryReadInt(Path.Combine(dir, "numa_node"));
            device.NumaNode = numa is int n && n >= 0 ? n : (int?)null;
            device.CurrentLinkSpeed = Sysfs.TryReadText(Path.Combine(dir, "current_link_speed"));
            device.MaxLinkSpeed = Sysfs.TryReadText(Path.Combine(dir, "max_link_speed"));
            device.CurrentLinkWidth = Sysfs.TryReadInt(Path.Combine(dir, "current_link_width"));
            device.MaxLinkWidth = Sysfs.TryReadInt(Path.Combine(dir, "max_link_width"));

            var parentName = Path.GetFileName(Path.GetDirectoryName(realDir) ?? string.Empty);
            device.ParentBridge = PciAddress.TryParse(parentName, out var parent) ? parent : (PciAddress?)null;

            var physfn = Sysfs.TryReadLinkName(Path.Combine(dir, "physfn"));
            device.PhysicalFunction = PciAddress.TryParse(physfn, out var pf) ? pf : (PciAddress?)null;
            device.SriovTotalVfs = Sysfs.TryReadInt(Path.Combine(dir, "sriov_totalvfs"));
            if (device.SriovTotalVfs.HasValue)
            {
                device.VirtualFunctions = ReadVirtualFunctions(dir);
            }
            return device;
        }

        private static IReadOnlyList<PciAddress> ReadVirtualFunctions(string entry)
        {
            var count = Sysfs.TryReadInt(Path.Combine(entry, "sriov_numvfs")) ?? 0;
            var vfs = new List<PciAddress>(count);
            for (var i = 0; i < count; i++)
            {
                var name = Sysfs.TryReadLinkName(Path.Combine(entry, "virtfn" + i.ToString(CultureInfo.InvariantCulture)));
                if (PciAddress.TryParse(name, out var vf)) vfs.Add(vf);
            }
            return vfs;
        }
    }
}
