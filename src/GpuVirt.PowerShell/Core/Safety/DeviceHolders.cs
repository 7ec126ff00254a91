using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Safety
{
    /// <summary>A process that has a device node open.</summary>
    internal sealed class DeviceHolder
    {
        public DeviceHolder(int pid, string command, string? guest, string devicePath)
        {
            Pid = pid;
            Command = command;
            Guest = guest;
            DevicePath = devicePath;
        }

        public int Pid { get; }

        /// <summary>The process's name (<c>/proc/PID/comm</c>, else the first word of its command line).</summary>
        public string Command { get; }

        /// <summary>The libvirt guest of a QEMU process (<c>-name guest=NAME</c>); null for other processes.</summary>
        public string? Guest { get; }

        /// <summary>The node it holds: <c>/dev/vfio/13</c>, <c>/dev/vfio/devices/vfio0</c>, <c>/dev/nvidia0</c>, <c>/dev/dri/card0</c>.</summary>
        public string DevicePath { get; }

        /// <summary><c>pid 4242 (qemu-system-x86, guest 'vm1') holds /dev/vfio/13</c>.</summary>
        public override string ToString() =>
            $"pid {Pid.ToString(CultureInfo.InvariantCulture)} ({Command}{(Guest is null ? string.Empty : ", guest '" + Guest + "'")}) holds {DevicePath}";

        /// <summary>Several holders in one phrase, one per process: <c>pid 4242 (qemu-system-x86, guest 'vm1') holds /dev/vfio/13</c>.</summary>
        public static string Describe(IEnumerable<DeviceHolder> holders) =>
            string.Join("; ", holders.GroupBy(h => h.Pid).Select(g =>
            {
                var first = g.First();
                var paths = string.Join(", ", g.Select(h => h.DevicePath).Distinct(StringComparer.Ordinal));
                return $"pid {first.Pid.ToString(CultureInfo.InvariantCulture)} ({first.Command}{(first.Guest is null ? string.Empty : ", guest '" + first.Guest + "'")}) holds {paths}";
            }));
    }

    /// <summary>
    /// Finds the processes that hold a device open, from <c>/proc/PID/fd/*</c> under the host root: for a PCI function
    /// its VFIO group (<c>/dev/vfio/GROUP</c>) and VFIO device nodes (<c>/dev/vfio/devices/vfioN</c>, from its
    /// <c>vfio-dev/</c>), and — for the host driver's users — its DRM nodes (<c>/dev/dri/*</c>, from its <c>drm/</c>)
    /// and the NVIDIA driver's nodes (<c>/dev/nvidiaN</c> of its minor, <c>/dev/nvidiactl</c>, <c>/dev/nvidia-uvm</c>...);
    /// for a mediated device its group and VFIO device nodes. A QEMU process is named by its libvirt guest. Processes
    /// whose descriptors cannot be read (another user's, without root) are passed over.
    /// </summary>
    internal static class DeviceHolders
    {
        public const string Proc = "/proc";
        public const string NvidiaGpus = "/proc/driver/nvidia/gpus";

        /// <summary>The device nodes through which a guest or a host program uses a PCI function.</summary>
        public static IReadOnlyList<string> NodesOf(HostRoot root, PciAddress address, bool hostDriverNodes)
        {
            var dir = Path.Combine(root.Resolve(HostPaths.PciDevices), address.ToString());
            var nodes = new List<string>();
            AddVfioNodes(dir, nodes);
            if (!hostDriverNodes) return nodes;
            foreach (var entry in Sysfs.TryListEntries(Path.Combine(dir, "drm")))
            {
                var name = Path.GetFileName(entry);
                if (name.StartsWith("card", StringComparison.Ordinal) || name.StartsWith("renderD", StringComparison.Ordinal) || name.StartsWith("controlD", StringComparison.Ordinal))
                    nodes.Add("/dev/dri/" + name);
            }
            if (Sysfs.TryReadLinkName(Path.Combine(dir, "driver")) == "nvidia")
            {
                var info = Sysfs.TryReadText(Path.Combine(root.Resolve(NvidiaGpus), address.ToString(), "information"));
                var minor = info?.Split('\n').Select(l => l.Split(new[] { ':' }, 2)).Where(p => p.Length == 2 && p[0].Trim() == "Device Minor")
                    .Select(p => p[1].Trim()).FirstOrDefault();
                nodes.Add(minor != null ? "/dev/nvidia" + minor : "/dev/nvidia[0-9]*");
                nodes.AddRange(new[] { "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset", "/dev/nvidia-vgpu*", "/dev/nvidia-caps/*" });
            }
            return nodes;
        }

        /// <summary>The device nodes of a mediated device: its group and VFIO device nodes.</summary>
        public static IReadOnlyList<string> NodesOfMdev(HostRoot root, string uuid)
        {
            var dir = Path.Combine(root.Resolve(HostPaths.MdevDevices), uuid);
            var nodes = new List<string>();
            AddVfioNodes(dir, nodes);
            return nodes;
        }

        private static void AddVfioNodes(string dir, List<string> nodes)
        {
            var group = Sysfs.TryReadLinkName(Path.Combine(dir, "iommu_group"));
            if (group != null) nodes.Add("/dev/vfio/" + group);
            foreach (var entry in Sysfs.TryListEntries(Path.Combine(dir, "vfio-dev")))
            {
                var name = Path.GetFileName(entry);
                if (name.StartsWith("vfio", StringComparison.Ordinal)) nodes.Add("/dev/vfio/devices/" + name);
            }
        }

        /// <summary>The processes holding a PCI function (with <paramref name="hostDriverNodes"/>, its DRM and NVIDIA nodes too).</summary>
        public static IReadOnlyList<DeviceHolder> OfPci(HostRoot root, PciAddress address, bool hostDriverNodes) =>
            Holding(root, NodesOf(root, address, hostDriverNodes));

        public static IReadOnlyList<DeviceHolder> OfMdev(HostRoot root, string uuid) => Holding(root, NodesOfMdev(root, uuid));

        /// <summary>The processes that have any of <paramref name="nodes"/> open (a trailing <c>*</c> or <c>[0-9]*</c> matches a family).</summary>
        public static IReadOnlyList<DeviceHolder> Holding(HostRoot root, IReadOnlyCollection<string> nodes)
        {
            var holders = new List<DeviceHolder>();
            if (nodes.Count == 0) return holders;
            var proc = root.Resolve(Proc);
            // Names only: every descriptor is a link, and a stat of each (as .NET's listing does) would follow it.
            foreach (var name in Sysfs.TryListNames(proc) ?? new List<string>())
            {
                if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
                var entry = proc + "/" + name;
                var held = new List<string>();
                var fdDir = entry + "/fd/";
                foreach (var fd in Sysfs.TryListNames(fdDir) ?? new List<string>())
                {
                    var target = Sysfs.TryReadLink(fdDir + fd);
                    if (target is null || !target.StartsWith("/dev/", StringComparison.Ordinal)) continue;
                    if (nodes.Any(n => Matches(n, target)) && !held.Contains(target)) held.Add(target);
                }
                if (held.Count == 0) continue;
                var (command, guest) = Describe(entry);
                foreach (var path in held) holders.Add(new DeviceHolder(pid, command, guest, path));
            }
            holders.Sort((a, b) => a.Pid != b.Pid ? a.Pid.CompareTo(b.Pid) : string.CompareOrdinal(a.DevicePath, b.DevicePath));
            return holders;
        }

        private static bool Matches(string pattern, string path)
        {
            if (pattern.EndsWith("[0-9]*", StringComparison.Ordinal))
            {
                var stem = pattern.Substring(0, pattern.Length - 6);
                return path.Length > stem.Length && path.StartsWith(stem, StringComparison.Ordinal) && path.Substring(stem.Length).All(char.IsDigit);
            }
            if (pattern.EndsWith("*", StringComparison.Ordinal))
                return path.StartsWith(pattern.Substring(0, pattern.Length - 1), StringComparison.Ordinal);
            return string.Equals(pattern, path, StringComparison.Ordinal);
        }

        /// <summary>A process's name and, for QEMU started by libvirt, its guest.</summary>
        private static (string Command, string? Guest) Describe(string procDir)
        {
            var args = ReadCmdline(Path.Combine(procDir, "cmdline"));
            var comm = Sysfs.TryReadText(Path.Combine(procDir, "comm"));
            var command = !string.IsNullOrEmpty(comm) ? comm! : args.Count > 0 ? Path.GetFileName(args[0]) : "?";
            return (command, GuestName(args));
        }

        /// <summary>
        /// The guest of a QEMU command line: <c>-name guest=vm1,debug-threads=on</c> (libvirt doubles a comma in the
        /// name), or the plain <c>-name vm1</c> of older QEMU; null when there is no <c>-name</c>.
        /// </summary>
        public static string? GuestName(IReadOnlyList<string> args)
        {
            for (var i = 0; i + 1 < args.Count; i++)
            {
                if (args[i] != "-name" && args[i] != "--name") continue;
                var options = SplitOptions(args[i + 1]);
                if (options.Count == 0) return null;
                foreach (var o in options)
                {
                    if (o.StartsWith("guest=", StringComparison.Ordinal)) return o.Substring(6);
                }
                return options[0].IndexOf('=') < 0 ? options[0] : null;
            }
            return null;
        }

        /// <summary>QEMU's option syntax: fields split at single commas, <c>,,</c> stands for a comma.</summary>
        private static List<string> SplitOptions(string text)
        {
            var fields = new List<string>();
            var current = new StringBuilder();
            for (var i = 0; i < text.Length; i++)
            {
                if (text[i] == ',')
                {
                    if (i + 1 < text.Length && text[i + 1] == ',')
                    {
                        current.Append(',');
                        i++;
                        continue;
                    }
                    fields.Add(current.ToString());
                    current.Clear();
                    continue;
                }
                current.Append(text[i]);
            }
            fields.Add(current.ToString());
            return fields;
        }

        private static List<string> ReadCmdline(string path)
        {
            string? text;
            try
            {
                text = Sysfs.TryReadUntrimmed(path);
            }
            catch (GpuVirtException)
            {
                // Not readable: a process of another user behind hidepid, or no regular file: no command line to go by.
                text = null;
            }
            return text is null ? new List<string>() : text.Split('\0').Where(a => a.Length > 0).ToList();
        }

    }
}
