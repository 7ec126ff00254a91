using System.Text.RegularExpressions;

namespace GpuVirt.Fixtures;

/// <summary>
/// Stands in for the kernel's PCI driver core on a fixture tree, which has no kernel behind it: a write of an address
/// to <c>drivers/NAME/unbind</c> takes the function's <c>driver</c> link away, and a write to <c>drivers_probe</c>
/// binds it to the driver its <c>driver_override</c> names, else to the driver it had when the stand-in started (its
/// host driver) — when that driver's directory exists, as only a loaded driver binds. Each write is emptied once
/// handled and logged (<c>unbind ADDR NAME</c>, <c>bind ADDR NAME</c>, <c>probe ADDR none</c>).
/// </summary>
public sealed class PciDriverCoreStandIn : IDisposable
{
    private static readonly Regex AddressPattern = new("^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]$", RegexOptions.CultureInvariant);

    private readonly string _pci;
    private readonly Dictionary<string, string> _hostDrivers = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _log = new();

    public PciDriverCoreStandIn(string root)
    {
        _pci = Path.Combine(Path.GetFullPath(root), "sys", "bus", "pci");
        foreach (var device in Directory.EnumerateFileSystemEntries(Path.Combine(_pci, "devices")))
        {
            var target = new FileInfo(Path.Combine(device, "driver")).LinkTarget;
            if (target != null) _hostDrivers[Path.GetFileName(device)] = Path.GetFileName(target);
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "PCI driver core stand-in" };
        _thread.Start();
    }

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
                Unbinds();
                if (Take(Path.Combine(_pci, "drivers_probe")) is { } address)
                {
                    // The unbind comes before the probe: handle any that is still pending first.
                    Unbinds();
                    Probe(address);
                }
            }
            catch (IOException)
            {
            }
            _stop.Token.WaitHandle.WaitOne(5);
        }
    }

    private void Unbinds()
    {
        foreach (var driver in Directory.EnumerateDirectories(Path.Combine(_pci, "drivers")))
        {
            if (Take(Path.Combine(driver, "unbind")) is not { } address) continue;
            var link = Path.Combine(_pci, "devices", address, "driver");
            if (new FileInfo(link).LinkTarget != null) File.Delete(link);
            Record($"unbind {address} {Path.GetFileName(driver)}");
        }
    }

    private void Probe(string address)
    {
        var device = Path.Combine(_pci, "devices", address);
        var link = Path.Combine(device, "driver");
        if (new FileInfo(link).LinkTarget != null) return;
        var overrideText = File.Exists(Path.Combine(device, "driver_override")) ? File.ReadAllText(Path.Combine(device, "driver_override")).Trim() : string.Empty;
        var name = overrideText.Length > 0 && overrideText != "(null)" ? overrideText : _hostDrivers.GetValueOrDefault(address);
        var driverDir = name is null ? null : Path.Combine(_pci, "drivers", name);
        if (driverDir is null || !Directory.Exists(driverDir))
        {
            Record($"probe {address} none");
            return;
        }
        var deviceDir = new DirectoryInfo(device).ResolveLinkTarget(true)?.FullName ?? device;
        File.CreateSymbolicLink(Path.Combine(deviceDir, "driver"), Path.GetRelativePath(deviceDir, driverDir));
        Record($"bind {address} {name}");
    }

    /// <summary>A whole PCI address written to an attribute, which is then emptied; null while there is none.</summary>
    private static string? Take(string path)
    {
        if (!File.Exists(path)) return null;
        var text = File.ReadAllText(path).Trim();
        if (!AddressPattern.IsMatch(text)) return null;
        File.WriteAllText(path, string.Empty);
        return text;
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
