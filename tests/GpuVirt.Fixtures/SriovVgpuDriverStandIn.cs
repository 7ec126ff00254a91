using System.Globalization;
using System.Text;

namespace GpuVirt.Fixtures;

/// <summary>
/// Stands in for NVIDIA's vGPU 17+ host driver (nvidia.ko with the vGPU manager), which cannot run here, on a built
/// fixture tree. It answers a write of N to a PF's <c>sriov_numvfs</c> by enabling N virtual functions the way the
/// driver shows them (a write of 0 by disabling them; this stand-in refuses that while a VF carries a vGPU type), and writes to a VF's <c>nvidia/current_vgpu_type</c> by keeping every VF's
/// <c>creatable_vgpu_types</c> to what can be made now: an idle GPU offers every profile; once a VF has a type, the
/// GPU's free VFs offer only that type (time-sliced types on one GPU exclude each other) until the GPU is full, then
/// nothing; a VF with a type lists that type. A type that was not creatable on the VF is put back to what it was
/// (a driver would refuse the write). Every change is logged.
/// </summary>
public sealed class SriovVgpuDriverStandIn : IDisposable
{
    private readonly HostTreeBuilder _builder;
    private readonly Dictionary<string, FixtureSriovBoard> _boards;
    private readonly Dictionary<string, int> _current = new();
    private readonly List<string> _log = new();
    private readonly object _gate = new();
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();

    /// <param name="builder">The built tree.</param>
    /// <param name="boards">Each SR-IOV PF's address and board.</param>
    public SriovVgpuDriverStandIn(HostTreeBuilder builder, IReadOnlyDictionary<string, FixtureSriovBoard> boards)
    {
        _builder = builder;
        _boards = boards.ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var vf in _builder.Devices.Where(d => d.PhysicalFunction is not null && _boards.ContainsKey(d.PhysicalFunction)))
            _current[vf.Address] = vf.CurrentVgpuType;
        lock (_gate) Settle();
        _thread = new Thread(Run) { IsBackground = true, Name = "NVIDIA SR-IOV vGPU driver stand-in" };
        _thread.Start();
    }

    /// <summary>The stand-in for <see cref="SampleHosts.SriovVgpu"/>: the L40S at 41:00.0 and the H100 at c1:00.0.</summary>
    public static SriovVgpuDriverStandIn ForSample(HostTreeBuilder builder) => new(builder, new Dictionary<string, FixtureSriovBoard>
    {
        ["0000:41:00.0"] = FixtureSriovBoard.L40S,
        ["0000:c1:00.0"] = FixtureSriovBoard.H100,
    });

    /// <summary>Each change seen: <c>enable 0000:c1:00.0 4</c>, <c>disable 0000:c1:00.0</c>, <c>set 0000:41:00.4 1163</c>, <c>refused 0000:41:00.5 1170</c>, <c>clear 0000:41:00.4</c>.</summary>
    public IReadOnlyList<string> Log
    {
        get { lock (_log) return _log.ToList(); }
    }

    /// <summary>Answers every write made so far before returning, as the real driver has by the time a write returns.</summary>
    public void WaitIdle()
    {
        lock (_gate)
        {
            while (Scan())
            {
            }
        }
    }

    private void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                lock (_gate) Scan();
            }
            catch (IOException)
            {
                // A file changed under the scan: look again on the next round.
            }
            _stop.Token.WaitHandle.WaitOne(10);
        }
    }

    /// <summary>One pass over the PFs and VFs; true when it changed something.</summary>
    private bool Scan()
    {
        var changed = false;
        foreach (var (pf, board) in _boards)
        {
            var pfDir = _builder.DeviceDirectory(pf);
            var vfs = Vfs(pf);
            var asked = ReadInt(Path.Combine(pfDir, "sriov_numvfs"));
            if (asked is int n && n != vfs.Count)
            {
                if (vfs.Count == 0 && n > 0 && n <= board.TotalVfs)
                {
                    // Logged before the tree shows it: a command that sees the functions finds its write logged.
                    Record(string.Create(CultureInfo.InvariantCulture, $"enable {pf} {n}"));
                    var pfDevice = _builder.Devices.First(d => d.Address == pf);
                    foreach (var vf in _builder.AddVirtualFunctions(pf, Enumerable.Range(0, n).Select(i => SampleHosts.VirtualFunction(board, pfDevice, i))))
                        _current[vf.Address] = 0;
                }
                else if (n == 0 && vfs.All(v => (_current.TryGetValue(v, out var t) ? t : 0) == 0))
                {
                    Record($"disable {pf}");
                    foreach (var vf in _builder.RemoveVirtualFunctions(pf)) _current.Remove(vf.Address);
                }
                else
                {
                    // The kernel refuses to change a non-zero count without going through 0 first (EBUSY).
                    File.WriteAllText(Path.Combine(pfDir, "sriov_numvfs"), vfs.Count.ToString(CultureInfo.InvariantCulture) + "\n");
                    Record(string.Create(CultureInfo.InvariantCulture, $"refused {pf} sriov_numvfs {n}"));
                }
                changed = true;
                vfs = Vfs(pf);
            }
            foreach (var vf in vfs)
            {
                var path = Path.Combine(_builder.DeviceDirectory(vf), "nvidia", "current_vgpu_type");
                var now = ReadInt(path) ?? 0;
                var before = _current.TryGetValue(vf, out var b) ? b : 0;
                if (now == before) continue;
                changed = true;
                var creatable = Creatable(vf);
                if (now != 0 && (before != 0 || !creatable.Contains(now)))
                {
                    File.WriteAllText(path, before.ToString(CultureInfo.InvariantCulture) + "\n");
                    Record(string.Create(CultureInfo.InvariantCulture, $"refused {vf} {now}"));
                    continue;
                }
                _current[vf] = now;
                Record(now == 0 ? $"clear {vf}" : string.Create(CultureInfo.InvariantCulture, $"set {vf} {now}"));
            }
        }
        if (changed) Settle();
        return changed;
    }

    /// <summary>Rewrites every VF's <c>creatable_vgpu_types</c> from the types set now.</summary>
    private void Settle()
    {
        foreach (var (pf, board) in _boards)
        {
            var vfs = Vfs(pf);
            var used = vfs.Select(v => _current.TryGetValue(v, out var t) ? t : 0).Where(t => t != 0).ToList();
            var running = used.Count == 0 ? null : board.Profiles.FirstOrDefault(p => p.Id == used[0]);
            foreach (var vf in vfs)
            {
                var current = _current.TryGetValue(vf, out var t) ? t : 0;
                IEnumerable<FixtureVgpuProfile> list;
                if (current != 0) list = board.Profiles.Where(p => p.Id == current);
                else if (running is null) list = board.Profiles;
                else if (used.Count < board.MaxInstances(running)) list = new[] { running };
                else list = Array.Empty<FixtureVgpuProfile>();
                var sb = new StringBuilder("ID    : vGPU Name\n");
                foreach (var p in list) sb.Append(CultureInfo.InvariantCulture, $"{p.Id,-5} : {p.Name}\n");
                File.WriteAllText(Path.Combine(_builder.DeviceDirectory(vf), "nvidia", "creatable_vgpu_types"), sb.ToString());
            }
        }
    }

    private List<int> Creatable(string vf)
    {
        var text = File.ReadAllText(Path.Combine(_builder.DeviceDirectory(vf), "nvidia", "creatable_vgpu_types"));
        return text.Split('\n').Skip(1).Select(l => l.Split(':')[0].Trim()).Where(s => s.Length > 0)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
    }

    private List<string> Vfs(string pf) => _builder.Devices.Where(d => d.PhysicalFunction == pf).Select(d => d.Address).ToList();

    private static int? ReadInt(string path)
    {
        if (!File.Exists(path)) return null;
        return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
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
