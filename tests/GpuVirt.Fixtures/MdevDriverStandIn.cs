using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace GpuVirt.Fixtures;

/// <summary>
/// Stands in for a vendor mediated-device driver (NVIDIA's nvidia_vgpu_vfio), which cannot run here, on a fixture
/// tree: it answers writes to <c>mdev_supported_types/*/create</c> by making the device the way the kernel shows it
/// and lowering <c>available_instances</c>, and writes of <c>1</c> to a device's <c>remove</c> by taking it away again.
/// A write it refuses (no free instance, a malformed UUID) makes nothing; every write is logged. It cannot return an
/// errno: a refused write simply leaves no device, as a driver that failed late would.
/// </summary>
public sealed class MdevDriverStandIn : IDisposable
{
    private readonly string _root;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _log = new();
    private int _nextGroup = 100;

    public MdevDriverStandIn(string root)
    {
        _root = Path.GetFullPath(root);
        _thread = new Thread(Run) { IsBackground = true, Name = "mdev driver stand-in" };
        _thread.Start();
    }

    /// <summary>Each write seen: <c>create nvidia-63 UUID</c>, <c>refused nvidia-66 UUID</c>, <c>remove UUID</c>.</summary>
    public IReadOnlyList<string> Log
    {
        get { lock (_log) return _log.ToList(); }
    }

    private void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                Scan();
            }
            catch (IOException)
            {
                // A file changed under the scan: look again on the next round.
            }
            _stop.Token.WaitHandle.WaitOne(10);
        }
    }

    private void Scan()
    {
        var mdevBus = Path.Combine(_root, "sys", "class", "mdev_bus");
        if (Directory.Exists(mdevBus))
        {
            foreach (var parentLink in Directory.EnumerateFileSystemEntries(mdevBus))
            {
                var types = Path.Combine(parentLink, "mdev_supported_types");
                if (!Directory.Exists(types)) continue;
                foreach (var typeDir in Directory.EnumerateDirectories(types))
                {
                    var create = Path.Combine(typeDir, "create");
                    if (Take(create) is { } uuid) Create(new DirectoryInfo(parentLink).ResolveLinkTarget(true)?.FullName ?? parentLink, typeDir, uuid);
                }
            }
        }
        var devices = Path.Combine(_root, "sys", "bus", "mdev", "devices");
        if (!Directory.Exists(devices)) return;
        foreach (var device in Directory.EnumerateFileSystemEntries(devices))
        {
            if (Take(Path.Combine(device, "remove")) == "1") Remove(device);
        }
    }

    /// <summary>A complete line written to an attribute, which is then emptied; null while there is none.</summary>
    private static string? Take(string path)
    {
        if (!File.Exists(path)) return null;
        var text = File.ReadAllText(path);
        if (!text.EndsWith('\n')) return null;
        File.WriteAllText(path, string.Empty);
        return text.Trim();
    }

    private void Create(string parentDir, string typeDir, string uuid)
    {
        var typeId = Path.GetFileName(typeDir);
        var availablePath = Path.Combine(typeDir, "available_instances");
        var available = int.Parse(File.ReadAllText(availablePath).Trim(), CultureInfo.InvariantCulture);
        var exists = Directory.Exists(Path.Combine(_root, "sys", "bus", "mdev", "devices", uuid));
        if (available < 1 || !Guid.TryParseExact(uuid, "D", out _) || exists)
        {
            Record($"refused {typeId} {uuid}");
            return;
        }
        // As in the kernel, the count is already lower by the time the device can be seen.
        Record($"create {typeId} {uuid}");
        File.WriteAllText(availablePath, (available - 1).ToString(CultureInfo.InvariantCulture) + "\n");
        HostTreeBuilder.WriteMdevDevice(_root, parentDir, uuid, typeId, _nextGroup++);
    }

    private void Remove(string deviceLink)
    {
        var uuid = Path.GetFileName(deviceLink);
        var dir = new DirectoryInfo(deviceLink).ResolveLinkTarget(true)?.FullName ?? deviceLink;
        var typeDir = new DirectoryInfo(Path.Combine(dir, "mdev_type")).ResolveLinkTarget(true)?.FullName;
        var groupDir = new DirectoryInfo(Path.Combine(dir, "iommu_group")).ResolveLinkTarget(true)?.FullName;
        Record($"remove {uuid}");
        if (typeDir is not null)
        {
            File.Delete(Path.Combine(typeDir, "devices", uuid));
            var availablePath = Path.Combine(typeDir, "available_instances");
            var available = int.Parse(File.ReadAllText(availablePath).Trim(), CultureInfo.InvariantCulture);
            File.WriteAllText(availablePath, (available + 1).ToString(CultureInfo.InvariantCulture) + "\n");
        }
        if (groupDir is not null) Directory.Delete(groupDir, recursive: true);
        // The bus entry goes last: once it is gone, everything else already is.
        Directory.Delete(dir, recursive: true);
        File.Delete(deviceLink);
    }

    private void Record(string line)
    {
        lock (_log) _log.Add(line);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
    }
}

/// <summary>Holds the module's vGPU lock from a test and counts the commands waiting on it in the kernel's <c>/proc/locks</c>.</summary>
public sealed class FixtureLock : IDisposable
{
    private int _fd;

    private FixtureLock(string path, int fd)
    {
        Path = path;
        _fd = fd;
    }

    public string Path { get; }

    /// <summary>Takes the exclusive flock on <c>ROOT/run/lock/gpuvirt.lock</c>, as a running command would.</summary>
    public static FixtureLock Hold(string root) => HoldFile(System.IO.Path.Combine(root, "run", "lock", "gpuvirt.lock"));

    /// <summary>Takes the exclusive flock on any lock file (a libvirt guest's lock), creating it and its directory when missing.</summary>
    public static FixtureLock HoldFile(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var fd = open(path, 0x2 | 0x40 | 0x80000, Convert.ToInt32("644", 8));
        if (fd < 0 || flock(fd, 2) != 0) throw new IOException($"Cannot lock {path}: errno {Marshal.GetLastPInvokeError()}");
        return new FixtureLock(path, fd);
    }

    /// <summary>How many processes wait for this lock: the <c>-&gt;</c> lines of <c>/proc/locks</c> on the file's inode.</summary>
    public int Waiters()
    {
        var inode = Inode(Path);
        return File.ReadAllLines("/proc/locks").Count(l => l.Contains(" -> ", StringComparison.Ordinal) && l.Contains(":" + inode + " ", StringComparison.Ordinal));
    }

    /// <summary>Waits until <paramref name="count"/> commands wait for the lock; false if they do not within <paramref name="timeout"/>.</summary>
    public bool WaitForWaiters(int count, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (Waiters() >= count) return true;
            Thread.Sleep(20);
        }
        return false;
    }

    private static string Inode(string path)
    {
        var psi = new ProcessStartInfo("stat", new[] { "-c", "%i", path }) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return text;
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) close(fd);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int open(string path, int flags, int mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int flock(int fd, int operation);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
