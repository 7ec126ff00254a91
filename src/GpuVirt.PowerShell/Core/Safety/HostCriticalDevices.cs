using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Safety
{
    /// <summary>What the running host uses a PCI function for.</summary>
    internal enum HostDependencyKind
    {
        /// <summary>A mounted filesystem lies on a disk behind it.</summary>
        Filesystem,

        /// <summary>Active swap lies on a disk behind it.</summary>
        Swap,

        /// <summary>A network interface on it carries a route.</summary>
        Network,

        /// <summary>It is the console GPU (<c>boot_vga</c>) or drives a framebuffer console.</summary>
        Console,
    }

    /// <summary>One PCI function the running host depends on, and why.</summary>
    internal sealed class HostDependency
    {
        public HostDependency(PciAddress address, HostDependencyKind kind, string reason)
        {
            Address = address;
            Kind = kind;
            Reason = reason;
        }

        public PciAddress Address { get; }
        public HostDependencyKind Kind { get; }

        /// <summary>What depends on it, in words: <c>filesystem / (xfs on /dev/mapper/vg-root: dm-0 over sda2)</c>.</summary>
        public string Reason { get; }

        /// <summary>The kind in one short word, as the tables show it: <c>disk</c>, <c>swap</c>, <c>net</c>, <c>console</c>.</summary>
        public string ShortKind => Kind switch
        {
            HostDependencyKind.Filesystem => "disk",
            HostDependencyKind.Swap => "swap",
            HostDependencyKind.Network => "net",
            _ => "console",
        };

        public override string ToString() => Address + ": " + Reason;
    }

    /// <summary>
    /// Finds the PCI functions the running host depends on, all read under the host root: the controllers behind every
    /// mounted filesystem and active swap (<c>/proc/self/mountinfo</c>, <c>/proc/swaps</c> → <c>/sys/dev/block</c> or
    /// <c>/sys/class/block</c> → through dm/md <c>slaves/</c> and partitions → the nearest PCI function in the device
    /// path), the NICs that carry an IPv4 or a (not link-local) IPv6 route (<c>/proc/net/route</c>,
    /// <c>/proc/net/ipv6_route</c> → <c>/sys/class/net/X</c> → through bonds, bridges and VLANs), and the console GPU
    /// (<c>boot_vga</c> = 1, or the device of a framebuffer in <c>/sys/class/graphics</c>). The physical function of
    /// an SR-IOV virtual function the host needs is needed too: its driver owns the virtual function.
    /// </summary>
    internal sealed class HostCriticalDevices
    {
        public const string MountInfo = "/proc/self/mountinfo";
        public const string Swaps = "/proc/swaps";
        public const string Routes = "/proc/net/route";
        public const string Routes6 = "/proc/net/ipv6_route";
        public const string ClassBlock = "/sys/class/block";
        public const string DevBlock = "/sys/dev/block";
        public const string ClassNet = "/sys/class/net";
        public const string ClassGraphics = "/sys/class/graphics";

        private const int MaxNamesPerReason = 3;
        private readonly HostRoot _root;
        private readonly List<HostDependency> _all = new List<HostDependency>();
        private readonly Dictionary<PciAddress, List<HostDependency>> _by = new Dictionary<PciAddress, List<HostDependency>>();

        private HostCriticalDevices(HostRoot root)
        {
            _root = root;
        }

        /// <summary>Every dependency, in the order filesystems, swap, network, console.</summary>
        public IReadOnlyList<HostDependency> All => _all;

        /// <summary>Reads what the host under <paramref name="root"/> depends on; a tree with no /proc and no boot VGA has none.</summary>
        /// <param name="root">The host.</param>
        /// <param name="bootVga">
        /// The functions whose <c>boot_vga</c> is 1, when the caller has just read every function (the inventory);
        /// null to look at every function here.
        /// </param>
        public static HostCriticalDevices Read(HostRoot root, IEnumerable<PciAddress>? bootVga = null)
        {
            var found = new HostCriticalDevices(root);
            found.ReadFilesystems();
            found.ReadSwaps();
            found.ReadRoutes();
            found.ReadConsole(bootVga);
            found.AddPhysicalFunctions();
            return found;
        }

        /// <summary>What the host needs <paramref name="address"/> for; empty when nothing.</summary>
        public IReadOnlyList<HostDependency> For(PciAddress address) =>
            _by.TryGetValue(address, out var list) ? list : (IReadOnlyList<HostDependency>)Array.Empty<HostDependency>();

        public bool IsCritical(PciAddress address) => _by.ContainsKey(address);

        /// <summary>The reasons joined with <c>; </c>, empty when the host does not need the function.</summary>
        public string Describe(PciAddress address) => string.Join("; ", For(address).Select(d => d.Reason));

        private void Add(PciAddress address, HostDependencyKind kind, string reason)
        {
            if (!_by.TryGetValue(address, out var list)) _by[address] = list = new List<HostDependency>();
            if (list.Any(d => d.Reason == reason)) return;
            var dependency = new HostDependency(address, kind, reason);
            list.Add(dependency);
            _all.Add(dependency);
        }

        // --- storage -----------------------------------------------------------------------------------------------

        private void ReadFilesystems()
        {
            var text = Sysfs.TryReadText(_root.Resolve(MountInfo));
            if (text is null) return;
            // One reason per block device, naming up to three of its mount points (bind mounts repeat a device).
            var byDevice = new Dictionary<string, (string Source, string FsType, List<string> MountPoints)>(StringComparer.Ordinal);
            var order = new List<string>();
            foreach (var line in text.Split('\n'))
            {
                var mount = MountInfoLine.Parse(line);
                if (mount is null) continue;
                var dir = BlockDirectory(mount.Value.MajorMinor, mount.Value.Source);
                if (dir is null) continue;
                if (!byDevice.TryGetValue(dir, out var entry))
                {
                    byDevice[dir] = entry = (mount.Value.Source, mount.Value.FsType, new List<string>());
                    order.Add(dir);
                }
                if (!entry.MountPoints.Contains(mount.Value.MountPoint)) entry.MountPoints.Add(mount.Value.MountPoint);
            }
            foreach (var dir in order)
            {
                var (source, fsType, points) = byDevice[dir];
                var shown = string.Join(", ", points.Take(MaxNamesPerReason)) +
                    (points.Count > MaxNamesPerReason ? $" and {points.Count - MaxNamesPerReason} more" : string.Empty);
                foreach (var (address, path) in BlockToPci(dir))
                {
                    Add(address, HostDependencyKind.Filesystem,
                        $"mounted filesystem {shown} ({fsType} on {source}{Via(path)})");
                }
            }
        }

        private void ReadSwaps()
        {
            var text = Sysfs.TryReadText(_root.Resolve(Swaps));
            if (text is null) return;
            foreach (var line in text.Split('\n').Skip(1))
            {
                var fields = line.Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 2) continue;
                // A swap file lies on a mounted filesystem, which is counted already.
                if (fields[1] != "partition") continue;
                var name = Unescape(fields[0]);
                var dir = BlockDirectory(null, name);
                if (dir is null) continue;
                foreach (var (address, path) in BlockToPci(dir))
                {
                    Add(address, HostDependencyKind.Swap, $"active swap {name}{Via(path)}");
                }
            }
        }

        /// <summary>The block device's directory under /sys/devices: by its numbers, else by the mount source's name.</summary>
        private string? BlockDirectory(string? majorMinor, string source)
        {
            if (majorMinor != null)
            {
                var byNumber = Resolve(_root.Resolve(DevBlock + "/" + majorMinor));
                if (byNumber != null && Directory.Exists(byNumber)) return byNumber;
            }
            if (!source.StartsWith("/dev/", StringComparison.Ordinal)) return null;
            // /dev/mapper/vg-root -> ../dm-0; /dev/disk/by-uuid/... -> ../../sda2: the node's name is the block device's.
            var node = _root.ResolveEntry(source);
            var name = Path.GetFileName(source);
            for (var i = 0; i < 8; i++)
            {
                var target = Sysfs.TryReadLink(node);
                if (target is null) break;
                node = target.StartsWith("/", StringComparison.Ordinal) ? _root.ResolveEntry(target) : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(node) ?? "/", target));
                name = Path.GetFileName(node);
            }
            var dir = Resolve(_root.Resolve(ClassBlock + "/" + name));
            return dir != null && Directory.Exists(dir) ? dir : null;
        }

        /// <summary>
        /// The PCI functions a block device lies on, each with the chain of block devices that leads to it
        /// (<c>dm-0 over sda2</c>): the nearest PCI function in its device path, or, for a virtual device (dm, md,
        /// loop) or a partition of one, the functions of its <c>slaves/</c>.
        /// </summary>
        private IEnumerable<(PciAddress Address, List<string> Path)> BlockToPci(string dir)
        {
            var results = new List<(PciAddress, List<string>)>();
            Walk(dir, new List<string>(), results, new HashSet<string>(StringComparer.Ordinal));
            return results;
        }

        private void Walk(string dir, List<string> path, List<(PciAddress, List<string>)> results, HashSet<string> seen)
        {
            if (!seen.Add(dir) || seen.Count > 64) return;
            var chain = new List<string>(path) { Path.GetFileName(dir) };
            if (NearestPciFunction(dir) is PciAddress address)
            {
                results.Add((address, chain));
                return;
            }
            var slaves = Path.Combine(dir, "slaves");
            if (!Directory.Exists(slaves))
            {
                // A partition of a virtual device (md0p1) lies on what its disk lies on.
                var parent = Path.GetDirectoryName(dir);
                if (parent != null && Directory.Exists(Path.Combine(parent, "slaves"))) slaves = Path.Combine(parent, "slaves");
                else return;
            }
            foreach (var entry in Sysfs.TryListEntries(slaves).OrderBy(e => e, StringComparer.Ordinal))
            {
                var target = Resolve(entry);
                if (target != null) Walk(target, chain, results, seen);
            }
        }

        private static string Via(List<string> path) =>
            path.Count <= 1 ? string.Empty : ": " + string.Join(" over ", path);

        // --- network -----------------------------------------------------------------------------------------------

        private void ReadRoutes()
        {
            var routed = new List<(string Iface, string What)>();
            var v4 = Sysfs.TryReadText(_root.Resolve(Routes));
            if (v4 != null)
            {
                foreach (var line in v4.Split('\n').Skip(1))
                {
                    var f = line.Split(new[] { '\t', ' ' }, StringSplitOptions.RemoveEmptyEntries);
                    if (f.Length < 8 || f[0] == "lo") continue;
                    var flags = Sysfs.ParseHex(f[3]) ?? 0;
                    if ((flags & RtfUp) == 0 || (flags & RtfReject) != 0) continue;
                    var destination = Sysfs.ParseHex(f[1]) ?? 0;
                    var mask = Sysfs.ParseHex(f[7]) ?? 0;
                    routed.Add((f[0], destination == 0 && mask == 0 ? "the IPv4 default route" : "the IPv4 route " + Ipv4(destination) + "/" + Bits(mask).ToString(CultureInfo.InvariantCulture)));
                }
            }
            var v6 = Sysfs.TryReadText(_root.Resolve(Routes6));
            if (v6 != null)
            {
                foreach (var line in v6.Split('\n'))
                {
                    var f = line.Split(new[] { '\t', ' ' }, StringSplitOptions.RemoveEmptyEntries);
                    if (f.Length < 10 || f[9] == "lo" || f[0].Length != 32) continue;
                    var flags = Sysfs.ParseHex(f[8]) ?? 0;
                    if ((flags & RtfUp) == 0 || (flags & RtfReject) != 0) continue;
                    // Every interface that is up has fe80::/64 and multicast routes: those carry no traffic the host needs.
                    var head = Convert.ToInt32(f[0].Substring(0, 4), 16);
                    if ((head & 0xffc0) == 0xfe80 || (head & 0xff00) == 0xff00) continue;
                    var prefix = Convert.ToInt32(f[1], 16);
                    routed.Add((f[9], prefix == 0 ? "the IPv6 default route" : "the IPv6 route " + Ipv6(f[0]) + "/" + prefix.ToString(CultureInfo.InvariantCulture)));
                }
            }
            foreach (var group in routed.GroupBy(r => r.Iface, StringComparer.Ordinal))
            {
                var whats = group.Select(r => r.What).Distinct(StringComparer.Ordinal).ToList();
                var what = string.Join(", ", whats.Take(MaxNamesPerReason)) +
                    (whats.Count > MaxNamesPerReason ? $" and {whats.Count - MaxNamesPerReason} more" : string.Empty);
                foreach (var (address, path) in NetToPci(group.Key))
                {
                    var via = path.Count <= 1 ? string.Empty : " (" + string.Join(" over ", path) + ")";
                    Add(address, HostDependencyKind.Network, $"network interface {group.Key} carries {what}{via}");
                }
            }
        }

        private const uint RtfUp = 0x1;
        private const uint RtfReject = 0x200;

        /// <summary>The PCI functions under an interface: its own, or those of its lower devices (bond, VLAN) and bridge ports.</summary>
        private List<(PciAddress, List<string>)> NetToPci(string iface)
        {
            var results = new List<(PciAddress, List<string>)>();
            WalkNet(iface, new List<string>(), results, new HashSet<string>(StringComparer.Ordinal));
            return results;
        }

        private void WalkNet(string iface, List<string> path, List<(PciAddress, List<string>)> results, HashSet<string> seen)
        {
            if (!seen.Add(iface) || seen.Count > 64 || iface.IndexOf('/') >= 0) return;
            var chain = new List<string>(path) { iface };
            var link = _root.Resolve(ClassNet + "/" + iface);
            var dir = Resolve(link) ?? link;
            if (!Directory.Exists(dir)) return;
            var device = Resolve(Path.Combine(dir, "device"));
            var address = (device != null ? NearestPciFunction(device) : null) ?? NearestPciFunction(dir);
            if (address is PciAddress a)
            {
                results.Add((a, chain));
                return;
            }
            var lower = Sysfs.TryListEntries(dir).Select(Path.GetFileName).Where(n => n != null && n.StartsWith("lower_", StringComparison.Ordinal)).Select(n => n!.Substring(6));
            var ports = Sysfs.TryListEntries(Path.Combine(dir, "brif")).Select(Path.GetFileName).Where(n => n != null).Select(n => n!);
            foreach (var name in lower.Concat(ports).Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal))
            {
                WalkNet(name, chain, results, seen);
            }
        }

        // --- console -----------------------------------------------------------------------------------------------

        private void ReadConsole(IEnumerable<PciAddress>? bootVga)
        {
            foreach (var address in bootVga ?? BootVgaFunctions())
            {
                Add(address, HostDependencyKind.Console, "console GPU (boot_vga)");
            }
            foreach (var fb in Sysfs.TryListEntries(_root.Resolve(ClassGraphics)).OrderBy(e => e, StringComparer.Ordinal))
            {
                var name = Path.GetFileName(fb);
                if (!name.StartsWith("fb", StringComparison.Ordinal)) continue;
                var dir = Resolve(fb) ?? fb;
                var device = Resolve(Path.Combine(dir, "device"));
                if (device != null && NearestPciFunction(device) is PciAddress a)
                    Add(a, HostDependencyKind.Console, $"framebuffer {name} (console display)");
            }
        }

        private IEnumerable<PciAddress> BootVgaFunctions()
        {
            var bus = _root.Resolve(HostPaths.PciDevices);
            // Names only (a stat of each link would double the cost on a host of thousands of functions).
            foreach (var name in Sysfs.TryListNames(bus) ?? new List<string>())
            {
                if (!PciAddress.TryParse(name, out var address)) continue;
                if (Sysfs.TryReadText(bus + "/" + name + "/boot_vga") == "1") yield return address;
            }
        }

        private void AddPhysicalFunctions()
        {
            foreach (var dependency in _all.ToList())
            {
                var physfn = Sysfs.TryReadLinkName(Path.Combine(_root.Resolve(HostPaths.PciDevices), dependency.Address.ToString(), "physfn"));
                if (PciAddress.TryParse(physfn, out var pf))
                    Add(pf, dependency.Kind, $"physical function of {dependency.Address}, whose {dependency.Reason}");
            }
        }

        // --- helpers -----------------------------------------------------------------------------------------------

        /// <summary>The last path element that is a PCI address: the function nearest a device in the device tree.</summary>
        internal static PciAddress? NearestPciFunction(string path)
        {
            var parts = path.Split('/');
            for (var i = parts.Length - 1; i >= 0; i--)
            {
                if (parts[i].Length >= 12 && PciAddress.TryParse(parts[i], out var address) && parts[i].IndexOf(':') > 0 && parts[i].Split(':').Length == 3)
                    return address;
            }
            return null;
        }

        private static string? Resolve(string path)
        {
            var target = Sysfs.TryResolveLink(path);
            if (target != null) return target;
            return Directory.Exists(path) || File.Exists(path) ? path : null;
        }


        /// <summary>mountinfo and swaps write a space, tab, newline or backslash in a path as an octal escape (<c>\040</c>).</summary>
        internal static string Unescape(string text)
        {
            if (text.IndexOf('\\') < 0) return text;
            var sb = new System.Text.StringBuilder(text.Length);
            for (var i = 0; i < text.Length; i++)
            {
                if (text[i] == '\\' && IsOctal(text, i + 1))
                {
                    sb.Append((char)Convert.ToInt32(text.Substring(i + 1, 3), 8));
                    i += 3;
                }
                else sb.Append(text[i]);
            }
            return sb.ToString();
        }

        private static bool IsOctal(string s, int at) =>
            at + 3 <= s.Length && s.Substring(at, 3).All(c => c >= '0' && c <= '7');

        private static string Ipv4(uint littleEndian) =>
            string.Join(".", new[] { littleEndian & 0xff, (littleEndian >> 8) & 0xff, (littleEndian >> 16) & 0xff, littleEndian >> 24 }.Select(b => b.ToString(CultureInfo.InvariantCulture)));

        private static int Bits(uint mask)
        {
            var n = 0;
            for (; mask != 0; mask >>= 1) n += (int)(mask & 1);
            return n;
        }

        private static string Ipv6(string hex)
        {
            var bytes = new byte[16];
            for (var i = 0; i < 16; i++) bytes[i] = Convert.ToByte(hex.Substring(i * 2, 2), 16);
            return new System.Net.IPAddress(bytes).ToString();
        }

        /// <summary>One line of <c>/proc/self/mountinfo</c>: <c>ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS</c>.</summary>
        private struct MountInfoLine
        {
            public string MajorMinor;
            public string MountPoint;
            public string FsType;
            public string Source;

            public static MountInfoLine? Parse(string line)
            {
                var f = line.Split(' ');
                var dash = Array.IndexOf(f, "-", 6);
                if (f.Length < 10 || dash < 0 || dash + 2 >= f.Length) return null;
                return new MountInfoLine { MajorMinor = f[2], MountPoint = Unescape(f[4]), FsType = f[dash + 1], Source = Unescape(f[dash + 2]) };
            }
        }
    }
}
