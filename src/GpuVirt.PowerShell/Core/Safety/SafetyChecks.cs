using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core
{
    /// <summary>
    /// What a check found about a change before anything is written: refusals that block it, refusals that
    /// <c>-Force</c> may override (they become warnings then), and warnings.
    /// </summary>
    internal sealed class CheckFindings
    {
        private readonly List<GpuVirtException> _refusals = new List<GpuVirtException>();
        private readonly List<GpuVirtException> _overridable = new List<GpuVirtException>();
        private readonly List<string> _warnings = new List<string>();

        public IReadOnlyList<GpuVirtException> Refusals => _refusals;

        /// <summary>Refusals that <c>-Force</c> turns into warnings.</summary>
        public IReadOnlyList<GpuVirtException> OverridableRefusals => _overridable;

        public IReadOnlyList<string> Warnings => _warnings;

        public void Refuse(GpuVirtException refusal) => _refusals.Add(refusal);

        public void RefuseUnlessForced(GpuVirtException refusal) => _overridable.Add(refusal);

        public void Warn(string warning) => _warnings.Add(warning);

        public void AddRange(CheckFindings other)
        {
            _refusals.AddRange(other._refusals);
            _overridable.AddRange(other._overridable);
            _warnings.AddRange(other._warnings);
        }

        /// <summary>The refusals that stand with or without <paramref name="force"/>, first the ones -Force cannot lift.</summary>
        public IReadOnlyList<GpuVirtException> Blocking(bool force) => force ? _refusals : _refusals.Concat(_overridable).ToList();

        /// <summary>The warnings to show: with <paramref name="force"/>, also one per overridden refusal.</summary>
        public IReadOnlyList<string> WarningsFor(bool force) =>
            force ? _overridable.Select(Overridden).Concat(_warnings).ToList() : _warnings;

        /// <summary>Adds the findings to a plan: refusals as <see cref="PlanRefusal"/>s (the overridable ones with the warning -Force shows), warnings as warnings.</summary>
        public void AddTo(ChangePlan plan)
        {
            foreach (var refusal in _refusals) plan.Refusals.Add(new PlanRefusal(refusal));
            foreach (var refusal in _overridable) plan.Refusals.Add(new PlanRefusal(refusal, Overridden(refusal)));
            plan.Warnings.AddRange(_warnings);
        }

        private static string Overridden(GpuVirtException refusal) =>
            refusal.Message.Split(new[] { NothingChanged }, StringSplitOptions.None)[0].TrimEnd() + " -Force: going ahead anyway.";

        internal const string NothingChanged = " Nothing was changed.";
    }

    /// <summary>
    /// Refuses a change that takes a function the running host depends on (<see cref="HostCriticalDevices"/>) from the
    /// host: binding it to vfio-pci or pci-stub, attaching it to a guest with <c>managed='yes'</c>, or claiming it at
    /// boot by id. <c>-Force</c> overrides it, with a warning naming each function.
    /// </summary>
    internal static class HostCriticalCheck
    {
        /// <param name="change">What would take the functions, as a sentence subject: <c>Binding it to vfio-pci</c>.</param>
        public static CheckFindings Check(PciInventory inventory, IEnumerable<PciAddress> functions, string change)
        {
            var findings = new CheckFindings();
            foreach (var address in functions.Distinct())
            {
                var needs = inventory.HostCritical.For(address);
                if (needs.Count == 0) continue;
                var device = inventory.Find(address);
                var what = device is null ? address.ToString() : $"{address} ({device.ClassName ?? "class " + device.ClassId}, {device.Description})";
                findings.RefuseUnlessForced(new GpuVirtException(ErrorIds.HostCriticalDevice, ErrorKind.InvalidOperation,
                    $"{what} is needed by the running host: {string.Join("; ", needs.Select(n => n.Reason))}. " +
                    $"{change} would take it from the host.{CheckFindings.NothingChanged} Use -Force only if the host can do without it.",
                    address.ToString()));
            }
            return findings;
        }
    }

    /// <summary>
    /// Refuses a sysfs write that the kernel would block on because a process holds the device (6.1's vfio waits for
    /// the holder instead of answering EBUSY): <see cref="ErrorIds.DeviceInUse"/> for a PCI function,
    /// <see cref="ErrorIds.VgpuDeviceBusy"/> for a vGPU, naming pid, command and guest.
    /// </summary>
    internal static class DeviceHolderCheck
    {
        /// <param name="hostDriverNodes">Also count the host driver's users (DRM and NVIDIA nodes): true when unbinding a host driver.</param>
        public static CheckFindings CheckPci(HostRoot root, PciAddress address, bool hostDriverNodes, string change)
        {
            var findings = new CheckFindings();
            var holders = DeviceHolders.OfPci(root, address, hostDriverNodes);
            if (holders.Count > 0)
            {
                findings.Refuse(new GpuVirtException(ErrorIds.DeviceInUse, ErrorKind.ResourceBusy,
                    $"{address} is in use: {DeviceHolder.Describe(holders)}. {change} would wait in the kernel until it is released." +
                    $"{CheckFindings.NothingChanged} {Advice(holders)}", address.ToString()));
            }
            return findings;
        }

        /// <summary>Holders of a vGPU: a mediated device by UUID, or an SR-IOV vGPU's virtual function.</summary>
        public static CheckFindings CheckVgpu(HostRoot root, VgpuDevice device, string change)
        {
            var findings = new CheckFindings();
            var holders = device.Uuid != null
                ? DeviceHolders.OfMdev(root, device.Uuid)
                : DeviceHolders.OfPci(root, device.PciAddress!.Value, hostDriverNodes: false);
            if (holders.Count > 0)
            {
                var what = device.Uuid != null ? "mediated device " + device.Uuid : "vGPU on virtual function " + device.Address;
                findings.Refuse(new GpuVirtException(ErrorIds.VgpuDeviceBusy, ErrorKind.ResourceBusy,
                    $"The {what} is in use: {DeviceHolder.Describe(holders)}. {change} would wait in the kernel until it is released." +
                    $"{CheckFindings.NothingChanged} {Advice(holders)}", device.ToString()));
            }
            return findings;
        }

        internal static string Advice(IReadOnlyList<DeviceHolder> holders)
        {
            var guests = holders.Where(h => h.Guest != null).Select(h => h.Guest!).Distinct(StringComparer.Ordinal).ToList();
            var others = holders.Where(h => h.Guest is null).Select(h => h.Pid).Distinct().ToList();
            var parts = new List<string>();
            if (guests.Count > 0) parts.Add($"shut down guest '{string.Join("', '", guests)}' (virsh shutdown)");
            if (others.Count > 0) parts.Add($"stop process {string.Join(", ", others.Select(p => p.ToString(CultureInfo.InvariantCulture)))}");
            return "First " + string.Join(", and ", parts) + ", then try again.";
        }
    }

    /// <summary>
    /// Refuses to unbind the driver of a vGPU parent that has live vGPUs: unbinding removes its mediated devices
    /// (an SR-IOV physical function's driver owns its virtual functions' vGPU types), from under the guests using them.
    /// </summary>
    internal static class VgpuParentCheck
    {
        /// <param name="change">What would destroy them, as a sentence subject.</param>
        public static CheckFindings Check(VgpuInventory vgpu, PciAddress address, string change = "Unbinding its driver")
        {
            var findings = new CheckFindings();
            var live = vgpu.Devices()
                .Where(d => d.Active && (d.ParentPciAddress == address || (d.Kind == VgpuKind.SriovVf && d.PciAddress == address)))
                .ToList();
            if (live.Count == 0) return findings;
            var names = string.Join(", ", live.Select(d => d.Kind == VgpuKind.SriovVf
                ? $"virtual function {d.Address} (vGPU type {d.TypeId}{(d.TypeName is null ? string.Empty : " " + d.TypeName)})"
                : $"mediated device {d.Uuid} ({d.TypeId}{(d.TypeName is null ? string.Empty : " " + d.TypeName)})"));
            findings.Refuse(new GpuVirtException(ErrorIds.VgpuParentInUse, ErrorKind.ResourceBusy,
                $"{address} has live vGPUs: {names}. {change} would destroy them.{CheckFindings.NothingChanged} " +
                "Remove them first (Get-VgpuDevice | Where-Object ParentAddress -eq '" + address + "' | Remove-VgpuDevice), then try again.",
                address.ToString()));
            return findings;
        }
    }
}
