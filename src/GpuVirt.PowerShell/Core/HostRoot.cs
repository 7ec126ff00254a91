using System;
using System.IO;

namespace GpuVirt.Core
{
    /// <summary>
    /// The host as a root directory. Every absolute host path the core touches (<c>/sys</c>, <c>/proc</c>, <c>/etc</c>,
    /// <c>/boot</c>, <c>/usr/share</c>) is resolved under it: <c>/</c> for the live host, a mounted image, or a test tree.
    /// </summary>
    public sealed class HostRoot
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

        /// <summary>Resolves an absolute host path (<c>/sys/bus/pci</c>) under the root.</summary>
        public string Resolve(string hostPath)
        {
            if (string.IsNullOrEmpty(hostPath) || hostPath[0] != '/')
                throw new ArgumentException($"'{hostPath}' is not an absolute host path.", nameof(hostPath));
            return IsLive ? hostPath : Directory + hostPath;
        }

        /// <summary>Turns a path under the root back into the host path it stands for.</summary>
        public string ToHostPath(string path)
        {
            if (IsLive) return path;
            return path.StartsWith(Directory + "/", StringComparison.Ordinal) ? path.Substring(Directory.Length) : path;
        }

        public override string ToString() => Directory;
    }

    /// <summary>Host paths the module knows, as constants.</summary>
    public static class HostPaths
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
