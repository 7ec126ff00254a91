using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>
    /// Reads vGPU types and devices under a host root: mediated-device parents (<c>/sys/class/mdev_bus</c>), live
    /// mediated devices (<c>/sys/bus/mdev/devices</c>), mdevctl definitions (<c>/etc/mdevctl.d</c>) and NVIDIA SR-IOV
    /// virtual functions (<c>nvidia/creatable_vgpu_types</c>, <c>nvidia/current_vgpu_type</c>).
    /// </summary>
    internal sealed class VgpuInventory
    {
        public const string SupportedTypes = "mdev_supported_types";
        public const string CreatableVgpuTypes = "nvidia/creatable_vgpu_types";
        public const string CurrentVgpuType = "nvidia/current_vgpu_type";

        public VgpuInventory(HostRoot root, PciInventory? pci = null)
        {
            Root = root ?? throw new ArgumentNullException(nameof(root));
            Pci = pci ?? new PciInventory(root);
            Definitions = new MdevDefinitions(root);
            Profiles = new SriovVgpuProfiles(root);
        }

        public HostRoot Root { get; }
        public PciInventory Pci { get; }
        public MdevDefinitions Definitions { get; }

        /// <summary>The SR-IOV vGPUs recorded to come back at boot (<c>/etc/gpuvirt/vgpu-profiles.conf</c>).</summary>
        public SriovVgpuProfiles Profiles { get; }

        /// <summary>A parent as the kernel names it: PCI addresses in any accepted form become <c>0000:01:00.0</c>; other names stay.</summary>
        public static string NormalizeParent(string text)
        {
            var s = (text ?? string.Empty).Trim();
            return PciAddress.TryParse(s, out var a) ? a.ToString() : s;
        }

        /// <summary>The names under <c>/sys/class/mdev_bus</c>, sorted.</summary>
        public IReadOnlyList<string> MdevParents()
        {
            var dir = Root.Resolve(HostPaths.MdevBusClass);
            if (!Directory.Exists(dir)) return Array.Empty<string>();
            return Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Where(n => n != null).Select(n => n!)
                .OrderBy(ParentSortKey, StringComparer.Ordinal).ToList();
        }

        /// <summary>PCI functions whose virtual functions offer NVIDIA SR-IOV vGPU types.</summary>
        public IReadOnlyList<PciDevice> SriovParents() =>
            Pci.Devices.Where(d => d.VirtualFunctionAddresses.Any(IsSriovVgpuFunction)).ToList();

        public bool IsMdevParent(string parent) => Directory.Exists(TypesDirectory(parent));

        public bool IsSriovVgpuFunction(PciAddress address) =>
            File.Exists(Path.Combine(Pci.DeviceDirectory(address), CreatableVgpuTypes));

        /// <summary>Every type of every parent: mdev parents first, then SR-IOV physical functions.</summary>
        public IReadOnlyList<VgpuType> AllTypes() =>
            MdevParents().SelectMany(MdevTypes).Concat(SriovParents().SelectMany(p => SriovTypes(p.PciAddress, p.VirtualFunctionAddresses))).ToList();

        /// <summary>
        /// The types a parent offers: an mdev parent's types; for an SR-IOV physical function the types of its virtual
        /// functions, one entry per type counting the free functions; for one virtual function, its own. Null when the
        /// parent offers no vGPU types at all.
        /// </summary>
        public IReadOnlyList<VgpuType>? Types(string parent)
        {
            var name = NormalizeParent(parent);
            if (IsMdevParent(name)) return MdevTypes(name);
            if (!PciAddress.TryParse(name, out var address)) return null;
            if (IsSriovVgpuFunction(address)) return SriovTypes(address, new[] { address });
            var device = Pci.Find(address);
            if (device is null) return null;
            var vfs = device.VirtualFunctionAddresses.Where(IsSriovVgpuFunction).ToList();
            return vfs.Count > 0 ? SriovTypes(address, vfs) : null;
        }

        /// <summary>A parent's type directory: <c>/sys/class/mdev_bus/&lt;parent&gt;/mdev_supported_types</c> under the root.</summary>
        public string TypesDirectory(string parent) => Path.Combine(Root.Resolve(HostPaths.MdevBusClass), parent, SupportedTypes);

        public IReadOnlyList<VgpuType> MdevTypes(string parent)
        {
            var dir = TypesDirectory(parent);
            if (!Directory.Exists(dir)) return Array.Empty<VgpuType>();
            var types = new List<VgpuType>();
            foreach (var typeDir in Directory.EnumerateDirectories(dir))
            {
                types.Add(ReadMdevType(parent, typeDir));
            }
            types.Sort((a, b) => CompareIds(a.Id, b.Id));
            return types.On(Root);
        }

        private static VgpuType ReadMdevType(string parent, string typeDir)
        {
            var description = ReadRaw(Path.Combine(typeDir, "description"));
            var name = Sysfs.TryReadText(Path.Combine(typeDir, "name"));
            return new VgpuType
            {
                Parent = parent,
                ParentPciAddress = PciAddress.TryParse(parent, out var a) ? a : (PciAddress?)null,
                Id = Path.GetFileName(typeDir),
                Name = string.IsNullOrEmpty(name) ? null : name,
                DeviceApi = Sysfs.TryReadText(Path.Combine(typeDir, "device_api")),
                AvailableInstances = Sysfs.TryReadInt(Path.Combine(typeDir, "available_instances")) ?? 0,
                Description = description,
                Properties = VgpuType.ParseDescription(description),
                Series = VgpuType.ParseSeries(name),
                Kind = VgpuKind.Mdev,
                Directory = typeDir,
            };
        }

        /// <summary>A description without its final newline, its inner lines kept.</summary>
        private static string? ReadRaw(string path)
        {
            var text = Sysfs.TryReadUntrimmed(path)?.TrimEnd('\n', '\r', ' ', '\0');
            return string.IsNullOrEmpty(text) ? null : text;
        }

        /// <summary>The <c>ID : name</c> lines of a virtual function's <c>nvidia/creatable_vgpu_types</c>, header skipped.</summary>
        public IReadOnlyList<KeyValuePair<string, string>> CreatableTypes(PciAddress vf)
        {
            var text = ReadRaw(Path.Combine(Pci.DeviceDirectory(vf), CreatableVgpuTypes));
            return ParseCreatableTypes(text);
        }

        public static IReadOnlyList<KeyValuePair<string, string>> ParseCreatableTypes(string? text)
        {
            var list = new List<KeyValuePair<string, string>>();
            if (text is null) return list;
            foreach (var raw in text.Split('\n'))
            {
                var colon = raw.IndexOf(':');
                if (colon <= 0) continue;
                var id = raw.Substring(0, colon).Trim();
                if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out _)) continue; // the "ID : vGPU Name" header
                list.Add(new KeyValuePair<string, string>(id, raw.Substring(colon + 1).Trim()));
            }
            return list;
        }

        /// <summary>
        /// The name of an SR-IOV type id, from the first of <paramref name="vfs"/> that lists it as creatable, else from
        /// any other NVIDIA virtual function of the host; null when none lists it now (a full GPU lists nothing).
        /// </summary>
        public string? TypeNameOf(IReadOnlyList<PciAddress> vfs, string id)
        {
            var name = vfs.SelectMany(CreatableTypes).FirstOrDefault(t => t.Key == id).Value;
            if (name != null) return name;
            return Pci.Devices.Where(d => d.PhysicalFunctionAddress.HasValue && IsSriovVgpuFunction(d.PciAddress))
                .SelectMany(d => CreatableTypes(d.PciAddress)).FirstOrDefault(t => t.Key == id).Value;
        }

        /// <summary>
        /// The vGPU type set on an NVIDIA SR-IOV vGPU function bound to <c>nvidia</c> (NVIDIA's vendor-specific VFIO, where a
        /// guest takes the vGPU): its id, 0 when none is set; null for any other function.
        /// </summary>
        internal static int? SriovVgpuTypeOf(PciInventory pci, PciDevice device)
        {
            if (device.Driver != "nvidia" || !device.PhysicalFunctionAddress.HasValue) return null;
            var dir = pci.DeviceDirectory(device.PciAddress);
            if (!File.Exists(Path.Combine(dir, CreatableVgpuTypes))) return null;
            return Sysfs.TryReadInt(Path.Combine(dir, CurrentVgpuType)) ?? 0;
        }

        /// <summary>The vGPU type id set on a virtual function; 0 when none.</summary>
        public int CurrentType(PciAddress vf) => Sysfs.TryReadInt(Path.Combine(Pci.DeviceDirectory(vf), CurrentVgpuType)) ?? 0;

        private IReadOnlyList<VgpuType> SriovTypes(PciAddress parent, IEnumerable<PciAddress> vfs)
        {
            var byId = new Dictionary<string, (string Name, List<PciAddress> Free)>(StringComparer.Ordinal);
            foreach (var vf in vfs)
            {
                var free = CurrentType(vf) == 0;
                foreach (var entry in CreatableTypes(vf))
                {
                    if (!byId.TryGetValue(entry.Key, out var t)) byId[entry.Key] = t = (entry.Value, new List<PciAddress>());
                    if (free) t.Free.Add(vf);
                }
            }
            return byId.OrderBy(kv => int.Parse(kv.Key, CultureInfo.InvariantCulture)).Select(kv => new VgpuType
            {
                Root = Root.Directory,
                Parent = parent.ToString(),
                ParentPciAddress = parent,
                Id = kv.Key,
                Name = kv.Value.Name,
                DeviceApi = "vfio-pci",
                AvailableInstances = kv.Value.Free.Count,
                Series = VgpuType.ParseSeries(kv.Value.Name),
                Kind = VgpuKind.SriovVf,
                VirtualFunctionAddresses = kv.Value.Free,
            }).ToList();
        }

        /// <summary>Every vGPU: live mediated devices, SR-IOV functions with a type set, and defined but stopped devices.</summary>
        public IReadOnlyList<VgpuDevice> Devices()
        {
            var devices = new List<VgpuDevice>();
            var definitions = Definitions.All;
            var liveDir = Root.Resolve(HostPaths.MdevDevices);
            if (Directory.Exists(liveDir))
            {
                foreach (var entry in Directory.EnumerateFileSystemEntries(liveDir))
                {
                    var device = ReadLive(entry);
                    if (device != null) devices.Add(device);
                }
            }
            foreach (var d in definitions)
            {
                var live = devices.FirstOrDefault(x => x.Uuid == d.Uuid && x.Parent == d.Parent);
                if (live != null)
                {
                    ApplyDefinition(live, d);
                    continue;
                }
                var stopped = new VgpuDevice
                {
                    Root = Root.Directory,
                    Uuid = d.Uuid,
                    Parent = d.Parent,
                    ParentPciAddress = PciAddress.TryParse(d.Parent, out var pa) ? pa : (PciAddress?)null,
                    TypeId = d.TypeId,
                    TypeName = TypeName(d.Parent, d.TypeId),
                    Kind = VgpuKind.Mdev,
                };
                ApplyDefinition(stopped, d);
                devices.Add(stopped);
            }
            var profiles = Profiles.Read();
            foreach (var pf in SriovParents())
            {
                foreach (var vf in pf.VirtualFunctionAddresses.Where(IsSriovVgpuFunction))
                {
                    var current = CurrentType(vf);
                    if (current == 0) continue;
                    devices.Add(ReadSriov(pf.PciAddress, vf, current, profiles));
                }
            }
            // Recorded for boot but not set now (the VF is free, or its GPU's functions are not enabled yet).
            foreach (var p in profiles.Where(p => !devices.Any(d => d.PciAddress == p.VirtualFunction)))
            {
                devices.Add(new VgpuDevice
                {
                    Root = Root.Directory,
                    PciAddress = p.VirtualFunction,
                    Parent = p.PhysicalFunction.ToString(),
                    ParentPciAddress = p.PhysicalFunction,
                    TypeId = p.TypeId,
                    TypeName = p.TypeName,
                    Kind = VgpuKind.SriovVf,
                    Persistent = true,
                    StartMode = MdevDefinitions.StartAuto,
                    DefinitionPath = SriovVgpuProfiles.ProfileFile,
                });
            }
            devices.Sort(CompareDevices);
            return devices;
        }

        /// <summary>A live mediated device by UUID, or null.</summary>
        public VgpuDevice? FindLive(string uuid)
        {
            var entry = Path.Combine(Root.Resolve(HostPaths.MdevDevices), uuid);
            if (!Directory.Exists(entry)) return null;
            var device = ReadLive(entry);
            if (device is null) return null;
            var definition = Definitions.Find(device.Uuid!).FirstOrDefault(d => d.Parent == device.Parent);
            if (definition != null) ApplyDefinition(device, definition);
            return device;
        }

        /// <summary>An SR-IOV vGPU by its virtual function, or null when the function has no vGPU type set.</summary>
        public VgpuDevice? FindSriov(PciAddress vf)
        {
            if (!IsSriovVgpuFunction(vf)) return null;
            var current = CurrentType(vf);
            if (current == 0) return null;
            var pf = Pci.Find(vf)?.PhysicalFunctionAddress ?? vf;
            return ReadSriov(pf, vf, current, Profiles.Read());
        }

        private VgpuDevice ReadSriov(PciAddress pf, PciAddress vf, int current, IReadOnlyList<SriovVgpuProfile> profiles)
        {
            var id = current.ToString(CultureInfo.InvariantCulture);
            var siblings = Pci.Find(pf)?.VirtualFunctionAddresses ?? (IReadOnlyList<PciAddress>)new[] { vf };
            var profile = profiles.FirstOrDefault(p => p.VirtualFunction == vf && p.TypeId == id);
            var name = TypeNameOf(new[] { vf }.Concat(siblings).ToList(), id) ?? profile?.TypeName;
            return new VgpuDevice
            {
                Root = Root.Directory,
                Persistent = profile != null,
                StartMode = profile != null ? MdevDefinitions.StartAuto : null,
                DefinitionPath = profile != null ? SriovVgpuProfiles.ProfileFile : null,
                PciAddress = vf,
                Parent = pf.ToString(),
                ParentPciAddress = pf,
                TypeId = id,
                TypeName = name,
                IommuGroup = Pci.Find(vf)?.IommuGroup,
                Active = true,
                Kind = VgpuKind.SriovVf,
                SysfsPath = Pci.Find(vf)?.SysfsPath,
            };
        }

        private VgpuDevice? ReadLive(string entry)
        {
            var uuid = Path.GetFileName(entry);
            if (!Guid.TryParseExact(uuid, "D", out _)) return null;
            var real = Sysfs.TryResolveLink(entry) ?? entry;
            var parent = Path.GetFileName(Path.GetDirectoryName(real) ?? string.Empty);
            // Links inside the device resolve from its real directory (a lexical '..' from the bus link would go astray).
            var typeDir = Sysfs.TryResolveLink(Path.Combine(real, "mdev_type"));
            var typeId = typeDir is null ? Sysfs.TryReadLinkName(Path.Combine(real, "mdev_type")) : Path.GetFileName(typeDir);
            string? typeName = typeDir is null ? null : Sysfs.TryReadText(Path.Combine(typeDir, "name"));
            var group = Sysfs.TryReadLinkName(Path.Combine(real, "iommu_group"));
            return new VgpuDevice
            {
                Root = Root.Directory,
                Uuid = uuid.ToLowerInvariant(),
                Parent = parent,
                ParentPciAddress = PciAddress.TryParse(parent, out var pa) ? pa : (PciAddress?)null,
                TypeId = typeId ?? string.Empty,
                TypeName = string.IsNullOrEmpty(typeName) ? null : typeName,
                IommuGroup = int.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out var g) ? g : (int?)null,
                Active = true,
                Kind = VgpuKind.Mdev,
                SysfsPath = Root.ToHostPath(real),
            };
        }

        private static void ApplyDefinition(VgpuDevice device, MdevDefinition definition)
        {
            device.StartMode = definition.StartMode;
            device.Persistent = definition.StartMode == MdevDefinitions.StartAuto;
            device.DefinitionPath = definition.Path;
            device.Attributes = definition.Attributes.Select(a => a.Key + "=" + a.Value).ToList();
        }

        private string? TypeName(string parent, string typeId)
        {
            var name = Sysfs.TryReadText(Path.Combine(TypesDirectory(parent), typeId, "name"));
            return string.IsNullOrEmpty(name) ? null : name;
        }

        private static string ParentSortKey(string parent) =>
            PciAddress.TryParse(parent, out var a) ? "0" + a.Domain.ToString("x8", CultureInfo.InvariantCulture) + a.ToString() : "1" + parent;

        private static int CompareDevices(VgpuDevice a, VgpuDevice b)
        {
            var c = string.CompareOrdinal(ParentSortKey(a.Parent), ParentSortKey(b.Parent));
            if (c != 0) return c;
            c = Nullable.Compare(a.PciAddress, b.PciAddress);
            return c != 0 ? c : string.CompareOrdinal(a.Uuid, b.Uuid);
        }

        /// <summary>Orders <c>nvidia-63</c> before <c>nvidia-100</c>: by the text before the trailing number, then the number.</summary>
        internal static int CompareIds(string a, string b)
        {
            static (string, long) Split(string s)
            {
                var i = s.Length;
                while (i > 0 && char.IsDigit(s[i - 1])) i--;
                var digits = s.Substring(i);
                return (s.Substring(0, i), digits.Length > 0 && digits.Length < 18 ? long.Parse(digits, CultureInfo.InvariantCulture) : -1);
            }
            var (pa, na) = Split(a);
            var (pb, nb) = Split(b);
            var c = string.CompareOrdinal(pa, pb);
            return c != 0 ? c : na != nb ? na.CompareTo(nb) : string.CompareOrdinal(a, b);
        }
    }
}
