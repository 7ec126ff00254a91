using System.Globalization;
using System.Text;

namespace GpuVirt.Fixtures;

/// <summary>
/// What a running host uses, written the way the kernel shows it under a fixture root: block devices in the device
/// tree (disks, partitions, dm and md devices with <c>slaves/</c>) reached from <c>/sys/class/block</c> and
/// <c>/sys/dev/block</c>, <c>/proc/self/mountinfo</c> and <c>/proc/swaps</c>, network interfaces in
/// <c>/sys/class/net</c> (bonds, bridges and VLANs through <c>lower_*</c> and <c>brif/</c>), <c>/proc/net/route</c>
/// and <c>/proc/net/ipv6_route</c>, framebuffers, DRM and VFIO character-device nodes of PCI functions, and processes
/// (<c>/proc/PID/comm</c>, <c>cmdline</c>, <c>fd/N</c> links to the device nodes they hold open).
/// </summary>
public sealed class HostUsage
{
    private readonly List<(string Name, string? Controller, string? Path, string[] Slaves, string MajorMinor, string? PartitionOf)> _blocks = new();
    private readonly List<string> _mounts = new();
    private readonly List<string> _swaps = new();
    private readonly List<(string Name, string? Device, string[] Lower, string[] BridgePorts)> _nets = new();
    private readonly List<string> _routes = new();
    private readonly List<string> _routes6 = new();
    private readonly List<(string Name, string Device)> _framebuffers = new();
    private readonly List<(string Device, string Node)> _nodes = new();
    private readonly List<(int Pid, string Comm, string[] Args, string[] Fds)> _processes = new();
    private readonly List<(string HostPath, string Content)> _files = new();
    private int _nextMinor = 0;
    private int _mountId = 20;

    /// <summary>A disk behind a PCI controller: <paramref name="path"/> is what lies between the function and <c>block/</c> (<c>ata1/host0/target0:0:0/0:0:0:0</c>).</summary>
    public HostUsage Disk(string name, string controller, string path, int major = 8)
    {
        _blocks.Add((name, controller, path, Array.Empty<string>(), Number(major), null));
        return this;
    }

    /// <summary>A partition of a disk added before.</summary>
    public HostUsage Partition(string name, string disk, int major = 8)
    {
        _blocks.Add((name, null, null, Array.Empty<string>(), Number(major), disk));
        return this;
    }

    /// <summary>A virtual block device (dm-N, mdN) over other block devices, as <c>/sys/devices/virtual/block/NAME/slaves</c>.</summary>
    public HostUsage Virtual(string name, int major, params string[] slaves)
    {
        _blocks.Add((name, null, null, slaves, Number(major), null));
        return this;
    }

    public string MajorMinorOf(string name) => _blocks.First(b => b.Name == name).MajorMinor;

    /// <summary>A mount: its line in <c>/proc/self/mountinfo</c>, with the block device's numbers (or <paramref name="majorMinor"/>).</summary>
    public HostUsage Mount(string mountPoint, string source, string fsType, string? block = null, string? majorMinor = null)
    {
        var numbers = majorMinor ?? (block is null ? "0:" + (40 + _mounts.Count).ToString(CultureInfo.InvariantCulture) : MajorMinorOf(block));
        var id = _mountId++;
        _mounts.Add(string.Create(CultureInfo.InvariantCulture, $"{id} 1 {numbers} / {mountPoint} rw,relatime shared:{id} - {fsType} {source} rw"));
        return this;
    }

    public HostUsage Swap(string fileName, string type = "partition")
    {
        _swaps.Add($"{fileName,-40}{type,-10}8388604\t0\t-2");
        return this;
    }

    /// <summary>A network interface: <paramref name="device"/> is its PCI function; a virtual one gives lower devices or bridge ports.</summary>
    public HostUsage Net(string name, string? device = null, string[]? lower = null, string[]? bridgePorts = null)
    {
        _nets.Add((name, device, lower ?? Array.Empty<string>(), bridgePorts ?? Array.Empty<string>()));
        return this;
    }

    /// <summary>An IPv4 route as <c>/proc/net/route</c> shows it (destination and mask in the kernel's little-endian hex).</summary>
    public HostUsage Route(string iface, string destination = "00000000", string mask = "00000000", string gateway = "0101A8C0", int flags = 0x3)
    {
        _routes.Add(string.Create(CultureInfo.InvariantCulture, $"{iface}\t{destination}\t{gateway}\t{flags:X4}\t0\t0\t100\t{mask}\t0\t0\t0"));
        return this;
    }

    /// <summary>An IPv6 route as <c>/proc/net/ipv6_route</c> shows it.</summary>
    public HostUsage Route6(string iface, string destination, int prefixLength, int flags = 0x1)
    {
        _routes6.Add(string.Create(CultureInfo.InvariantCulture,
            $"{destination} {prefixLength:x2} 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 {flags:x8} {iface,8}"));
        return this;
    }

    /// <summary>A framebuffer (<c>/sys/class/graphics/fbN</c>) whose device is a PCI function.</summary>
    public HostUsage Framebuffer(string name, string device)
    {
        _framebuffers.Add((name, device));
        return this;
    }

    /// <summary>A character-device node of a PCI function or mdev: <c>drm/card0</c>, <c>drm/renderD128</c>, <c>vfio-dev/vfio0</c>.</summary>
    public HostUsage DeviceNode(string device, string node)
    {
        _nodes.Add((device, node));
        return this;
    }

    /// <summary>A process with its command line and the paths its file descriptors link to.</summary>
    public HostUsage Process(int pid, string comm, string[] args, params string[] fds)
    {
        _processes.Add((pid, comm, args, fds));
        return this;
    }

    /// <summary>The NVIDIA driver's <c>/proc/driver/nvidia/gpus/ADDRESS/information</c>, which gives the function's <c>/dev/nvidiaN</c> minor.</summary>
    public HostUsage NvidiaGpu(string address, int minor)
    {
        _files.Add(($"/proc/driver/nvidia/gpus/{address}/information",
            string.Create(CultureInfo.InvariantCulture, $"Model: \t\t Tesla P4\nIRQ:   \t\t 64\nGPU UUID: \t GPU-5a3c0000-0000-0000-0000-000000000000\nVideo BIOS: \t 86.04.55.00.01\nBus Type: \t PCIe\nDMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\nBus Location: \t {address}\nDevice Minor: \t {minor}\nGPU Excluded:\t No\n")));
        return this;
    }

    private string Number(int major) => major.ToString(CultureInfo.InvariantCulture) + ":" + (_nextMinor++).ToString(CultureInfo.InvariantCulture);

    /// <summary>Writes everything under the builder's root; the PCI functions must exist (call after <see cref="HostTreeBuilder.Build"/>).</summary>
    public void Write(HostTreeBuilder tree)
    {
        if (_blocks.Count + _mounts.Count + _swaps.Count + _nets.Count + _routes.Count + _routes6.Count + _framebuffers.Count + _nodes.Count + _processes.Count + _files.Count == 0) return;
        foreach (var (hostPath, content) in _files)
        {
            var path = tree.Root + hostPath;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, content);
        }
        var root = tree.Root;
        var sys = Path.Combine(root, "sys");
        var classBlock = Dir(sys, "class", "block");
        var devBlock = Dir(sys, "dev", "block");
        var devDir = Dir(root, "dev");
        var where = new Dictionary<string, string>();
        foreach (var b in _blocks)
        {
            string dir;
            if (b.Controller is not null) dir = Dir(tree.DeviceDirectory(b.Controller), b.Path!.Split('/').Append("block").Append(b.Name).ToArray());
            else if (b.PartitionOf is not null) dir = Dir(where[b.PartitionOf], b.Name);
            else dir = Dir(sys, "devices", "virtual", "block", b.Name);
            where[b.Name] = dir;
            File.WriteAllText(Path.Combine(dir, "dev"), b.MajorMinor + "\n");
            if (b.PartitionOf is not null) File.WriteAllText(Path.Combine(dir, "partition"), "1\n");
            if (b.Slaves.Length > 0)
            {
                var slaves = Dir(dir, "slaves");
                foreach (var s in b.Slaves)
                {
                    Link(Path.Combine(slaves, s), where[s]);
                    Link(Path.Combine(Dir(where[s], "holders"), b.Name), dir);
                }
            }
            Link(Path.Combine(classBlock, b.Name), dir);
            Link(Path.Combine(devBlock, b.MajorMinor), dir);
            File.WriteAllText(Path.Combine(devDir, b.Name), string.Empty);
        }
        if (_blocks.Any(b => b.Name.StartsWith("dm-", StringComparison.Ordinal)))
        {
            var mapper = Dir(devDir, "mapper");
            foreach (var b in _blocks.Where(b => b.Name.StartsWith("dm-", StringComparison.Ordinal)))
                File.CreateSymbolicLink(Path.Combine(mapper, "vg-" + b.Name.Replace("-", string.Empty, StringComparison.Ordinal)), "../" + b.Name);
        }

        var proc = Dir(root, "proc");
        if (_mounts.Count > 0) File.WriteAllText(Path.Combine(Dir(proc, "self"), "mountinfo"), string.Concat(_mounts.Select(m => m + "\n")));
        if (_swaps.Count > 0 || _mounts.Count > 0)
        {
            File.WriteAllText(Path.Combine(proc, "swaps"), "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" + string.Concat(_swaps.Select(s => s + "\n")));
        }

        var classNet = Dir(sys, "class", "net");
        var netDirs = new Dictionary<string, string>();
        foreach (var n in _nets)
        {
            var dir = n.Device is not null ? Dir(tree.DeviceDirectory(n.Device), "net", n.Name) : Dir(sys, "devices", "virtual", "net", n.Name);
            netDirs[n.Name] = dir;
            if (n.Device is not null) Link(Path.Combine(dir, "device"), tree.DeviceDirectory(n.Device));
            File.WriteAllText(Path.Combine(dir, "operstate"), "up\n");
            Link(Path.Combine(classNet, n.Name), dir);
        }
        foreach (var n in _nets)
        {
            foreach (var l in n.Lower)
            {
                Link(Path.Combine(netDirs[n.Name], "lower_" + l), netDirs[l]);
                Link(Path.Combine(netDirs[l], "upper_" + n.Name), netDirs[n.Name]);
            }
            if (n.BridgePorts.Length > 0)
            {
                var brif = Dir(netDirs[n.Name], "brif");
                foreach (var p in n.BridgePorts)
                {
                    var port = Dir(netDirs[p], "brport");
                    Link(Path.Combine(brif, p), port);
                    Link(Path.Combine(port, "bridge"), netDirs[n.Name]);
                }
            }
        }
        var net = Dir(proc, "net");
        if (_routes.Count > 0 || _nets.Count > 0)
        {
            File.WriteAllText(Path.Combine(net, "route"),
                "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" + string.Concat(_routes.Select(r => r + "\n")));
            File.WriteAllText(Path.Combine(net, "ipv6_route"), string.Concat(_routes6.Select(r => r + "\n")));
        }

        foreach (var (name, device) in _framebuffers)
        {
            var dir = Dir(tree.DeviceDirectory(device), "graphics", name);
            Link(Path.Combine(dir, "device"), tree.DeviceDirectory(device));
            Link(Path.Combine(Dir(sys, "class", "graphics"), name), dir);
        }
        foreach (var (device, node) in _nodes)
        {
            var parentDir = PciAddressLike(device) ? tree.DeviceDirectory(device) : Mdev(root, device);
            var parts = node.Split('/');
            var dir = Dir(parentDir, parts);
            File.WriteAllText(Path.Combine(dir, "dev"), "226:0\n");
            var cls = parts[0] == "drm" ? "drm" : "vfio-dev";
            Link(Path.Combine(Dir(sys, "class", cls), parts[^1]), dir);
            Link(Path.Combine(dir, "device"), parentDir);
        }

        foreach (var (pid, comm, args, fds) in _processes)
        {
            var dir = Dir(proc, pid.ToString(CultureInfo.InvariantCulture));
            File.WriteAllText(Path.Combine(dir, "comm"), comm + "\n");
            File.WriteAllBytes(Path.Combine(dir, "cmdline"), Encoding.UTF8.GetBytes(string.Concat(args.Select(a => a + "\0"))));
            var fd = Dir(dir, "fd");
            File.CreateSymbolicLink(Path.Combine(fd, "0"), "/dev/null");
            for (var i = 0; i < fds.Length; i++) File.CreateSymbolicLink(Path.Combine(fd, (i + 3).ToString(CultureInfo.InvariantCulture)), fds[i]);
        }
    }

    private static bool PciAddressLike(string s) => s.Contains(':', StringComparison.Ordinal) && s.Contains('.', StringComparison.Ordinal) && !s.Contains('-', StringComparison.Ordinal);

    private static string Mdev(string root, string uuid)
    {
        var link = Path.Combine(root, "sys", "bus", "mdev", "devices", uuid);
        var target = new FileInfo(link).LinkTarget ?? throw new ArgumentException($"No fixture mdev {uuid}.");
        return Path.GetFullPath(Path.Combine(Path.GetDirectoryName(link)!, target));
    }

    private static string Dir(string basePath, params string[] parts)
    {
        var p = Path.Combine(new[] { basePath }.Concat(parts).ToArray());
        Directory.CreateDirectory(p);
        return p;
    }

    private static void Link(string linkPath, string targetPath)
    {
        if (File.Exists(linkPath) || Directory.Exists(linkPath) || new FileInfo(linkPath).LinkTarget is not null) File.Delete(linkPath);
        File.CreateSymbolicLink(linkPath, Path.GetRelativePath(Path.GetDirectoryName(linkPath)!, targetPath));
    }
}
