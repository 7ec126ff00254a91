using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>
    /// One proposed part of a placement: <see cref="Count"/> vGPUs of a type on one parent (a mediated-device GPU or an
    /// SR-IOV physical function). Its Parent, Type and Count bind to New-VgpuDevice by property name.
    /// </summary>
    public sealed class VgpuPlacement : HostObject
    {
        public string Parent { get; internal set; } = string.Empty;

        /// <summary>The parent's type id (<c>nvidia-63</c>, <c>1168</c>); New-VgpuDevice binds it to -Type.</summary>
        public string Type { get; internal set; } = string.Empty;

        public string? TypeName { get; internal set; }

        /// <summary>How many vGPUs go on this parent.</summary>
        public int Count { get; internal set; }

        /// <summary>How many the parent could take now.</summary>
        public int Available { get; internal set; }

        public VgpuKind Kind { get; internal set; }

        /// <summary>SR-IOV: the free virtual functions New-VgpuDevice will pick, in order.</summary>
        public IReadOnlyList<string> VirtualFunctions => VirtualFunctionAddresses.Select(a => a.ToString()).ToList();

        internal IReadOnlyList<PciAddress> VirtualFunctionAddresses { get; set; } = Array.Empty<PciAddress>();

        /// <summary>Why the parent takes this many (or a note such as an estimate from profile sizes).</summary>
        public string Reason { get; internal set; } = string.Empty;

        public override string ToString() => $"{Count.ToString(CultureInfo.InvariantCulture)} x {Type} on {Parent}";
    }

    /// <summary>What one parent can take of a type, and why.</summary>
    internal sealed class VgpuPlacementCandidate
    {
        internal VgpuPlacementCandidate(string parent, VgpuType? type, int available, bool runsType, string reason, IReadOnlyList<PciAddress> vfs)
        {
            Parent = parent;
            Type = type;
            Available = available;
            RunsType = runsType;
            Reason = reason;
            VirtualFunctions = vfs;
        }

        public string Parent { get; }
        public VgpuType? Type { get; }
        public int Available { get; }

        /// <summary>The parent already carries vGPUs of this type (filled first, to keep other GPUs free for other types).</summary>
        public bool RunsType { get; }

        public string Reason { get; }
        public IReadOnlyList<PciAddress> VirtualFunctions { get; }
    }

    /// <summary>
    /// Finds where N vGPUs of one type fit over every vGPU parent of a host: mediated-device GPUs by their
    /// <c>available_instances</c> (the GPU's shared capacity), SR-IOV GPUs by the free virtual functions that list the
    /// type as creatable now, bounded on an idle GPU by its framebuffer (the largest profile it offers) over the type's.
    /// An NVIDIA GPU that runs another type takes none of this one (one vGPU type per physical GPU), whatever the driver's
    /// numbers and lists say, and the reason names the type it runs. GPUs that run the type already are filled first, then the ones with
    /// the most room (depth-first, as NVIDIA's default allocation); <c>spread</c> puts one on each GPU in turn instead.
    /// Reads only; the result says why when the vGPUs do not fit.
    /// </summary>
    internal static class VgpuPlacementPlanner
    {
        private static readonly Regex ProfileSize = new Regex(@"-(\d+)([A-Z])\d*$", RegexOptions.CultureInvariant);

        /// <summary>Every parent's candidate for a type given by id or name (case-insensitive).</summary>
        public static IReadOnlyList<VgpuPlacementCandidate> Candidates(VgpuInventory inventory, string type)
        {
            var list = new List<VgpuPlacementCandidate>();
            var devices = inventory.Devices();
            foreach (var parent in inventory.MdevParents())
            {
                var types = inventory.MdevTypes(parent);
                var t = Match(types, type);
                if (t is null) continue;
                var running = devices.Where(d => d.Kind == VgpuKind.Mdev && d.Active && d.Parent == parent).ToList();
                var runsType = running.Any(d => d.TypeId == t.Id);
                var others = running.Where(d => d.TypeId != t.Id).GroupBy(d => d.TypeId)
                    .Select(g => g.Key + (g.First().TypeName is string n ? " (" + n + ")" : string.Empty)).ToList();
                if (others.Count > 0 && OneTypePerGpu(inventory, parent))
                {
                    // The driver's own numbers may still count the idle capacity: the rule is applied here, whatever they say.
                    list.Add(new VgpuPlacementCandidate(parent, t, 0, false,
                        $"it runs {string.Join(", ", others)}: {OneTypeRule}", Array.Empty<PciAddress>()));
                    continue;
                }
                var reason = t.AvailableInstances > 0
                    ? $"available_instances is {t.AvailableInstances.ToString(CultureInfo.InvariantCulture)}" + (t.MaxInstance is int m ? $" of {m.ToString(CultureInfo.InvariantCulture)}" : string.Empty)
                    : "available_instances is 0" + (others.Count > 0
                        ? $": it runs {string.Join(", ", others)}, and the types of one GPU share its capacity"
                        : running.Count > 0 ? ": it is full" : string.Empty);
                list.Add(new VgpuPlacementCandidate(parent, t, t.AvailableInstances, runsType, reason, Array.Empty<PciAddress>()));
            }
            foreach (var pf in inventory.SriovParents())
            {
                var vfs = pf.VirtualFunctionAddresses.Where(inventory.IsSriovVgpuFunction).ToList();
                var types = inventory.Types(pf.Address.ToString()) ?? Array.Empty<VgpuType>();
                var t = Match(types, type);
                if (t is null)
                {
                    var why = SriovVgpu.WhyNotOffered(inventory, pf.Address.ToString());
                    if (why != null && MatchesFamily(inventory, vfs, type))
                        list.Add(new VgpuPlacementCandidate(pf.Address.ToString(), null, 0, false, why.Trim(), Array.Empty<PciAddress>()));
                    continue;
                }
                var free = vfs.Where(v => inventory.CurrentType(v) == 0 && inventory.CreatableTypes(v).Any(c => c.Key == t.Id)).ToList();
                var used = vfs.Select(inventory.CurrentType).Where(c => c != 0).ToList();
                var runsType = used.Any(c => c.ToString(CultureInfo.InvariantCulture) == t.Id);
                var otherTypes = used.Select(c => c.ToString(CultureInfo.InvariantCulture)).Where(id => id != t.Id).Distinct().ToList();
                if (otherTypes.Count > 0)
                {
                    // A free function may still list every type of the idle GPU: the rule is applied here, whatever the lists say.
                    var names = otherTypes.Select(id => id + (inventory.TypeNameOf(vfs, id) is string n ? " (" + n + ")" : string.Empty));
                    list.Add(new VgpuPlacementCandidate(pf.Address.ToString(), t, 0, false,
                        $"it runs {string.Join(", ", names)} on {used.Count.ToString(CultureInfo.InvariantCulture)} of its virtual functions: {OneTypeRule}",
                        Array.Empty<PciAddress>()));
                    continue;
                }
                var available = free.Count;
                var reason = $"{free.Count.ToString(CultureInfo.InvariantCulture)} free virtual functions list it";
                if (used.Count == 0 && SizeOf(t.Name) is int size && size > 0)
                {
                    var largest = vfs.SelectMany(inventory.CreatableTypes).Select(c => SizeOf(c.Value)).Where(s => s.HasValue).Select(s => s!.Value).DefaultIfEmpty(0).Max();
                    if (largest >= size && largest / size < available)
                    {
                        available = largest / size;
                        reason += $"; the GPU's framebuffer (its largest profile, {largest.ToString(CultureInfo.InvariantCulture)} GB) holds {available.ToString(CultureInfo.InvariantCulture)} of {size.ToString(CultureInfo.InvariantCulture)} GB";
                    }
                }
                else if (used.Count > 0 && free.Count == 0)
                {
                    reason = "no free virtual function lists it: the GPU is full";
                }
                list.Add(new VgpuPlacementCandidate(pf.Address.ToString(), t, available, runsType, reason, free));
            }
            return list;
        }

        /// <summary>
        /// The placement of <paramref name="count"/> vGPUs, or an <see cref="ErrorIds.VgpuPlacementNotFound"/> error that
        /// names every parent considered and what it can take.
        /// </summary>
        public static IReadOnlyList<VgpuPlacement> Place(VgpuInventory inventory, string type, int count, bool spread = false)
        {
            if (count < 1) throw new ArgumentOutOfRangeException(nameof(count));
            var candidates = Candidates(inventory, type);
            var usable = candidates.Where(c => c.Type != null && c.Available > 0)
                .OrderByDescending(c => c.RunsType).ThenByDescending(c => c.Available).ThenBy(c => c.Parent, StringComparer.Ordinal).ToList();
            var total = usable.Sum(c => c.Available);
            if (total < count)
            {
                var considered = candidates.Count == 0
                    ? "no GPU of this host offers it (Get-VgpuType lists the types; a GPU whose virtual functions are not enabled offers none: Enable-VgpuSriov)"
                    : string.Join("; ", candidates.Select(c => $"{c.Parent}: {c.Available.ToString(CultureInfo.InvariantCulture)} ({c.Reason})"));
                throw new GpuVirtException(ErrorIds.VgpuPlacementNotFound, ErrorKind.ResourceUnavailable,
                    $"{count.ToString(CultureInfo.InvariantCulture)} vGPUs of type '{type}' do not fit on this host: " +
                    $"{total.ToString(CultureInfo.InvariantCulture)} can be made now. {considered}.", type);
            }
            var counts = usable.ToDictionary(c => c, _ => 0);
            var left = count;
            if (spread)
            {
                while (left > 0)
                {
                    foreach (var c in usable)
                    {
                        if (left == 0) break;
                        if (counts[c] >= c.Available) continue;
                        counts[c]++;
                        left--;
                    }
                }
            }
            else
            {
                foreach (var c in usable)
                {
                    var take = Math.Min(left, c.Available);
                    counts[c] = take;
                    left -= take;
                    if (left == 0) break;
                }
            }
            return usable.Where(c => counts[c] > 0).Select(c => new VgpuPlacement
            {
                Root = inventory.Root.Directory,
                Parent = c.Parent,
                Type = c.Type!.Id,
                TypeName = c.Type.Name,
                Count = counts[c],
                Available = c.Available,
                Kind = c.Type.Kind,
                VirtualFunctionAddresses = c.VirtualFunctions.Take(counts[c]).ToList(),
                Reason = (c.RunsType ? "runs this type already; " : string.Empty) + c.Reason,
            }).ToList();
        }

        /// <summary>Why a GPU that runs one vGPU type takes no other.</summary>
        internal const string OneTypeRule =
            "an NVIDIA GPU runs one vGPU type at a time (time-sliced vGPUs of one physical GPU are all of one type), so it takes only that type until those vGPUs are removed";

        /// <summary>
        /// Whether a mediated-device parent keeps one vGPU type per physical GPU: NVIDIA's (its time-sliced vGPUs are all of
        /// one type); Intel GVT-g and other parents mix types within their shared capacity.
        /// </summary>
        internal static bool OneTypePerGpu(VgpuInventory inventory, string parent) =>
            PciAddress.TryParse(parent, out var address) && inventory.Pci.Find(address)?.VendorId == SriovVgpu.NvidiaVendor;

        private static VgpuType? Match(IReadOnlyList<VgpuType> types, string type) =>
            types.FirstOrDefault(t => string.Equals(t.Id, type, StringComparison.OrdinalIgnoreCase))
            ?? types.FirstOrDefault(t => t.Name != null && string.Equals(t.Name, type, StringComparison.OrdinalIgnoreCase));

        /// <summary>Whether a type name belongs to the board of these VFs (<c>NVIDIA L40S-4Q</c> for an L40S), by the name's prefix.</summary>
        private static bool MatchesFamily(VgpuInventory inventory, IReadOnlyList<PciAddress> vfs, string type)
        {
            var dash = type.LastIndexOf('-');
            if (dash <= 0) return false;
            var prefix = type.Substring(0, dash + 1);
            var name = vfs.Select(v => inventory.TypeNameOf(new[] { v }, inventory.CurrentType(v).ToString(CultureInfo.InvariantCulture)))
                .Concat(vfs.SelectMany(inventory.CreatableTypes).Select(c => (string?)c.Value)).FirstOrDefault(n => n != null);
            return name != null && name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>The framebuffer in GB an NVIDIA profile name states (<c>NVIDIA L40S-24Q</c> is 24), null when it states none.</summary>
        internal static int? SizeOf(string? name)
        {
            if (name is null) return null;
            var m = ProfileSize.Match(name);
            return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : (int?)null;
        }
    }
}
