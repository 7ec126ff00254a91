using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>One step of an SR-IOV vGPU change: a vGPU type written to one virtual function.</summary>
    internal sealed class SriovVgpuAssignment
    {
        public SriovVgpuAssignment(PciAddress virtualFunction, string typeId, string? typeName, string hostPath)
        {
            VirtualFunction = virtualFunction;
            TypeId = typeId;
            TypeName = typeName;
            HostPath = hostPath;
        }

        public PciAddress VirtualFunction { get; }
        public string TypeId { get; }
        public string? TypeName { get; }

        /// <summary>The VF's <c>nvidia/current_vgpu_type</c> as a host path.</summary>
        public string HostPath { get; }

        public override string ToString() => $"write {TypeId} to {HostPath}";
    }

    /// <summary>
    /// What creating SR-IOV vGPUs will do: which free virtual functions get the type, chosen from what each VF lists in
    /// <c>nvidia/creatable_vgpu_types</c> now. Built without writing anything; <see cref="VgpuManager.ApplySriov"/> applies it.
    /// </summary>
    internal sealed class SriovVgpuPlan
    {
        internal SriovVgpuPlan(VgpuType type, IReadOnlyList<SriovVgpuAssignment> assignments)
        {
            Type = type;
            Assignments = assignments;
        }

        public VgpuType Type { get; }
        public IReadOnlyList<SriovVgpuAssignment> Assignments { get; }

        /// <summary>What ShouldProcess names.</summary>
        public string Target => $"vGPU type {Type.Id} ({Type.DisplayName}) on {Type.Parent}";

        public string Action => Assignments.Count == 1
            ? $"Set the type on virtual function {Assignments[0].VirtualFunction}"
            : $"Set the type on {Assignments.Count} virtual functions ({string.Join(", ", Assignments.Select(a => a.VirtualFunction.ToString()))})";

        /// <summary>One line per write, for -WhatIf.</summary>
        public IReadOnlyList<string> Lines => Assignments.Select(a => a.ToString()).ToList();
    }

    /// <summary>
    /// The SR-IOV side of NVIDIA vGPU 17+: which virtual functions of a GPU are free and what each can take now, and
    /// why a GPU offers nothing (its VFs are not enabled, or the types it runs exclude the one asked for).
    /// </summary>
    internal static class SriovVgpu
    {
        /// <summary>NVIDIA's tool that enables a GPU's virtual functions (<c>sriov-manage -e &lt;PF|ALL&gt;</c>).</summary>
        public const string SriovManage = "/usr/lib/nvidia/sriov-manage";

        public const ushort NvidiaVendor = 0x10de;

        /// <summary>
        /// The <see cref="ErrorIds.VgpuSriovNotEnabled"/> error when <paramref name="parent"/> is an NVIDIA SR-IOV GPU whose
        /// virtual functions are not enabled, null otherwise.
        /// </summary>
        public static GpuVirtException? NotEnabled(VgpuInventory inventory, string parent)
        {
            if (!PciAddress.TryParse(VgpuInventory.NormalizeParent(parent), out var address)) return null;
            var device = inventory.Pci.Find(address);
            if (device is null || device.VendorId != NvidiaVendor || device.PhysicalFunctionAddress.HasValue) return null;
            if (!(device.SriovTotalVfs is int total) || total < 1 || device.VirtualFunctionAddresses.Count > 0) return null;
            var numvfs = Sysfs.TryReadInt(Path.Combine(inventory.Pci.DeviceDirectory(address), "sriov_numvfs")) ?? 0;
            var how = File.Exists(inventory.Root.Resolve(SriovManage))
                ? $"it runs {SriovManage} -e {address}"
                : $"it writes the count to {HostPaths.PciDevices}/{address}/sriov_numvfs";
            return new GpuVirtException(ErrorIds.VgpuSriovNotEnabled, ErrorKind.NotEnabled,
                $"{address} ({device.DeviceName ?? device.Ids}) is an SR-IOV GPU whose virtual functions are not enabled " +
                $"(sriov_numvfs is {numvfs.ToString(CultureInfo.InvariantCulture)} of {total.ToString(CultureInfo.InvariantCulture)}): " +
                $"NVIDIA vGPU 17 and later makes each vGPU on a virtual function. Enable them with Enable-VgpuSriov -Address {address} ({how}), " +
                "then list the types with Get-VgpuType.", address.ToString());
        }

        /// <summary>
        /// Plans <paramref name="count"/> vGPUs of an SR-IOV type: the first free virtual functions (no type set) that list
        /// the type as creatable now. Refuses, writing nothing, when fewer than <paramref name="count"/> can take it.
        /// </summary>
        public static SriovVgpuPlan Plan(VgpuInventory inventory, VgpuType type, int count)
        {
            if (count < 1) throw new ArgumentOutOfRangeException(nameof(count));
            var candidates = Candidates(inventory, type);
            var free = candidates.Where(v => inventory.CurrentType(v) == 0).ToList();
            var able = free.Where(v => inventory.CreatableTypes(v).Any(t => t.Key == type.Id)).ToList();
            if (able.Count < count) throw NotCreatable(inventory, type, count, candidates, free, able);
            var assignments = able.Take(count).Select(vf => new SriovVgpuAssignment(vf, type.Id, type.Name,
                inventory.Root.ToHostPath(Path.Combine(inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType)))).ToList();
            return new SriovVgpuPlan(type, assignments);
        }

        /// <summary>The virtual functions a type's parent stands for: itself when it is a VF, else the PF's vGPU VFs.</summary>
        internal static IReadOnlyList<PciAddress> Candidates(VgpuInventory inventory, VgpuType type)
        {
            if (type.ParentPciAddress is PciAddress pa && inventory.IsSriovVgpuFunction(pa)) return new[] { pa };
            var pf = inventory.Pci.Find(type.ParentPciAddress ?? default);
            return (pf?.VirtualFunctionAddresses ?? Array.Empty<PciAddress>()).Where(inventory.IsSriovVgpuFunction).ToList();
        }

        /// <summary>Says why the type cannot be made <paramref name="count"/> times: VFs in use, the type the GPU runs, or no VF at all.</summary>
        private static GpuVirtException NotCreatable(VgpuInventory inventory, VgpuType type, int count,
            IReadOnlyList<PciAddress> candidates, IReadOnlyList<PciAddress> free, IReadOnlyList<PciAddress> able)
        {
            var used = candidates.Select(v => (Vf: v, Type: inventory.CurrentType(v))).Where(x => x.Type != 0).ToList();
            var running = used.Select(x => x.Type.ToString(CultureInfo.InvariantCulture)).Distinct().ToList();
            var reasons = new List<string>();
            reasons.Add($"{able.Count.ToString(CultureInfo.InvariantCulture)} of its {candidates.Count.ToString(CultureInfo.InvariantCulture)} virtual functions can take it now" +
                (count > 1 ? $" ({count.ToString(CultureInfo.InvariantCulture)} asked for)" : string.Empty));
            if (used.Count > 0)
            {
                var names = running.Select(id => id + NameSuffix(inventory, candidates, id));
                reasons.Add($"{used.Count.ToString(CultureInfo.InvariantCulture)} already carry a vGPU (type {string.Join(", ", names)})");
            }
            var offered = free.SelectMany(inventory.CreatableTypes).Select(t => t.Key).Distinct().ToList();
            if (free.Count > 0 && offered.Count == 0) reasons.Add("the free ones list no creatable type: the GPU is full");
            else if (free.Count > 0 && !offered.Contains(type.Id))
            {
                reasons.Add("the free ones offer only " + string.Join(", ", offered.Select(id => id + NameSuffix(inventory, candidates, id))) +
                    ": time-sliced vGPU types on one GPU exclude each other, so the GPU takes only the type it runs until its vGPUs are removed");
            }
            return new GpuVirtException(ErrorIds.NoVgpuInstanceAvailable, ErrorKind.ResourceUnavailable,
                $"No instance of vGPU type '{type.Id}' ({type.DisplayName}) is available on {type.Parent}: {string.Join("; ", reasons)}. " +
                "Remove vGPUs of this GPU (Remove-VgpuDevice), choose a type it lists now (Get-VgpuType -Available), or let Find-VgpuPlacement look at every GPU.",
                type.ToString());
        }

        /// <summary>
        /// For a type an SR-IOV GPU does not offer now: the sentence saying which type it runs (time-sliced types on one GPU
        /// exclude each other); null for any other parent or when the GPU runs nothing.
        /// </summary>
        public static string? WhyNotOffered(VgpuInventory inventory, string parent)
        {
            if (!PciAddress.TryParse(VgpuInventory.NormalizeParent(parent), out var address)) return null;
            var pf = inventory.Pci.Find(address)?.PhysicalFunctionAddress ?? address;
            var vfs = (inventory.Pci.Find(pf)?.VirtualFunctionAddresses ?? Array.Empty<PciAddress>()).Where(inventory.IsSriovVgpuFunction).ToList();
            var running = vfs.Select(inventory.CurrentType).Where(t => t != 0).Distinct().Select(t => t.ToString(CultureInfo.InvariantCulture)).ToList();
            if (running.Count == 0) return null;
            return $" The GPU {pf} runs vGPU type {string.Join(", ", running.Select(id => id + NameSuffix(inventory, vfs, id)))} on " +
                $"{vfs.Count(v => inventory.CurrentType(v) != 0).ToString(CultureInfo.InvariantCulture)} of its virtual functions: time-sliced types on one GPU exclude each other, " +
                "so it offers another type only once those vGPUs are removed (Find-VgpuPlacement looks at every GPU).";
        }

        private static string NameSuffix(VgpuInventory inventory, IReadOnlyList<PciAddress> vfs, string id)
        {
            var name = inventory.TypeNameOf(vfs, id);
            return name is null ? string.Empty : " (" + name + ")";
        }
    }
}
