using System;
using System.IO;

namespace GpuVirt.Core
{
    /// <summary>
    /// The host as a root directory. Every absolute host path the core touches (<c>/sys</c>, <c>/proc</c>, <c>/etc</c>,
    /// <c>/boot</c>, <c>/usr/share</c>) is resolved under it: <c>/</c> for the live host, a mounted image, or a test tree.
    /// </summary>
    internal sealed class HostRoot
    {
        public static readonly HostRoot Live = new HostRoot("/");

        public HostRoot(string directory)
        {
            if (string.IsNullOrEmpty(directory)) throw new ArgumentException("A root directory is required.", nameof(directory));
            var full = Path.GetFullPath(directory);
            Directory = full.Length > 1 ? full.TrimEnd('/') : full;
        }

        /// <summary>The absolute directory that stands for the host's <c>/</c>.</summary>
        public string Directory { get; }

        public bool IsLive => Directory == "/";

        /// <summary>Checks that the root exists; a clear error otherwise.</summary>
        public HostRoot EnsureExists()
        {
            if (!System.IO.Directory.Exists(Directory))
            {
                throw new GpuVirtException(ErrorIds.HostRootNotFound, ErrorKind.ObjectNotFound,
                    $"The host root directory '{Directory}' does not exist.", Directory);
            }
            return this;
        }

        /// <summary>
        /// Resolves an absolute host path (<c>/sys/bus/pci</c>) under the root. Under a root other than <c>/</c>, every
        /// symbolic link on the way, the last component's too, is followed inside the root (<see cref="ResolveLinks"/>):
        /// an image whose <c>/var/lib/gpuvirt</c>, <c>/etc/modprobe.d</c> or <c>/run</c> is an absolute link to
        /// <c>/somewhere</c> means <c>ROOT/somewhere</c>, never the running host's <c>/somewhere</c>, and <c>..</c> stops
        /// at the root. Code that deals with a link itself (reads it, replaces it) uses <see cref="ResolveEntry"/>.
        /// </summary>
        public string Resolve(string hostPath)
        {
            CheckAbsolute(hostPath);
            return IsLive ? hostPath : Directory + ResolveLinks(hostPath);
        }

        /// <summary>
        /// Like <see cref="Resolve"/>, but the last component is not followed (as lstat(2) and O_NOFOLLOW see it): the
        /// path of a link itself, its directories resolved inside the root.
        /// </summary>
        public string ResolveEntry(string hostPath)
        {
            CheckAbsolute(hostPath);
            if (IsLive) return hostPath;
            var trimmed = hostPath.Length > 1 ? hostPath.TrimEnd('/') : hostPath;
            var slash = trimmed.LastIndexOf('/');
            var name = trimmed.Substring(slash + 1);
            if (name == "." || name == "..") return Directory + ResolveLinks(trimmed);
            if (slash <= 0) return Directory + trimmed;
            var parent = ResolveLinks(trimmed.Substring(0, slash));
            return Directory + (parent == "/" ? string.Empty : parent) + "/" + name;
        }

        private static void CheckAbsolute(string hostPath)
        {
            if (string.IsNullOrEmpty(hostPath) || hostPath[0] != '/')
                throw new ArgumentException($"'{hostPath}' is not an absolute host path.", nameof(hostPath));
        }

        private const int MaxLinks = 40;

        /// <summary>
        /// Follows every symbolic link of a host path inside the root, the last component too, and returns the host
        /// path of the real file: an absolute link target is taken under the root, a relative one from the link's own
        /// directory, and <c>..</c> never climbs above the root. On the live root too: the boot files keep their links
        /// and have their targets edited.
        /// </summary>
        public string ResolveLinks(string hostPath)
        {
            CheckAbsolute(hostPath);
            var prefix = IsLive ? string.Empty : Directory;
            var pending = hostPath;
            var hops = 0;
            restart:
            var parts = pending.Split(new[] { '/' }, StringSplitOptions.RemoveEmptyEntries);
            var current = new System.Collections.Generic.List<string>();
            for (var i = 0; i < parts.Length; i++)
            {
                var part = parts[i];
                if (part == ".") continue;
                if (part == "..")
                {
                    if (current.Count > 0) current.RemoveAt(current.Count - 1);
                    continue;
                }
                current.Add(part);
                var target = Sysfs.TryReadLink(prefix + "/" + string.Join("/", current));
                if (target is null) continue;
                if (++hops > MaxLinks)
                {
                    throw new GpuVirtException(ErrorIds.BootFileUnreadable, ErrorKind.InvalidData,
                        $"Too many symbolic links while resolving '{hostPath}' under '{Directory}'.", hostPath);
                }
                current.RemoveAt(current.Count - 1);
                var rest = string.Join("/", parts, i + 1, parts.Length - i - 1);
                var baseDir = target.StartsWith("/", StringComparison.Ordinal) ? string.Empty : "/" + string.Join("/", current);
                pending = baseDir + "/" + target + (rest.Length > 0 ? "/" + rest : string.Empty);
                goto restart;
            }
            return "/" + string.Join("/", current);
        }

        /// <summary>Turns a path under the root back into the host path it stands for.</summary>
        public string ToHostPath(string path)
        {
            if (IsLive) return path;
            return path.Length > Directory.Length && path[Directory.Length] == '/' && path.StartsWith(Directory, StringComparison.Ordinal)
                ? path.Substring(Directory.Length)
                : path;
        }

        public override string ToString() => Directory;
    }

    /// <summary>Host paths the module knows, as constants.</summary>
    internal static class HostPaths
    {
        public const string PciDevices = "/sys/bus/pci/devices";
        public const string PciDrivers = "/sys/bus/pci/drivers";
        public const string PciDriversProbe = "/sys/bus/pci/drivers_probe";
        public const string IommuGroups = "/sys/kernel/iommu_groups";
        public const string MdevBusClass = "/sys/class/mdev_bus";
        public const string MdevDevices = "/sys/bus/mdev/devices";
        public const string EfiFirmware = "/sys/firmware/efi";
        public const string ProcCmdline = "/proc/cmdline";
        public const string ProcCpuinfo = "/proc/cpuinfo";
        public const string ProcModules = "/proc/modules";
        public const string SysModule = "/sys/module";
        public static readonly string[] PciIds = { "/usr/share/hwdata/pci.ids", "/usr/share/misc/pci.ids" };
    }
}
