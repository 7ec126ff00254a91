using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Plans enabling the SR-IOV virtual functions of an NVIDIA GPU (Enable-VgpuSriov, vGPU 17 and later): NVIDIA's
    /// <c>sriov-manage -e &lt;PF&gt;</c> when it is installed and no count is asked for, else the count written to the
    /// PF's <c>sriov_numvfs</c>; then a bounded wait for the functions and their <c>nvidia/creatable_vgpu_types</c>.
    /// A plan that fails in the wait is undone by the executor (<c>sriov-manage -d</c>, or 0 written back). Its journal
    /// record's inverse sets the count back to what it was (0): <see cref="PlanInverse"/> plans that as a disable, which
    /// <see cref="PlanChecks.All"/> refuses while a virtual function carries a live vGPU, is held open by a process, or
    /// is referenced by a guest's definition (that one -Force lifts).
    /// </summary>
    internal sealed class SriovPlanner
    {
        /// <summary>How long to wait for the driver to show the virtual functions.</summary>
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

        private readonly ChangeHost _host;
        private readonly ProcessRunner _runner;
        private readonly Func<Virsh>? _virsh;
        private readonly Action<string>? _log;
        private readonly IEnumerable<IPlanCheck> _checks;

        /// <param name="virsh">The libvirt connection whose guests' definitions are checked when functions go away (null: none are).</param>
        public SriovPlanner(ChangeHost host, ProcessRunner runner, Func<Virsh>? virsh = null, Action<string>? log = null, IEnumerable<IPlanCheck>? checks = null)
        {
            _host = host;
            _runner = runner;
            _virsh = virsh;
            _log = log;
            _checks = checks ?? PlanChecks.All;
        }

        /// <summary>How long the plan waits for the virtual functions to appear.</summary>
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        private HostRoot Root => _host.Root;

        /// <summary>
        /// Plans enabling <paramref name="count"/> (all, <c>sriov_totalvfs</c>, when null) virtual functions of the GPU
        /// <paramref name="pf"/>; the result is the physical function as it is afterwards. Nothing to do when its
        /// functions are enabled already (and <paramref name="count"/> is that count or not given). Bad input throws
        /// (<see cref="ErrorIds.VgpuSriovNotSupported"/>, <see cref="ErrorIds.VgpuSriovAlreadyEnabled"/>).
        /// </summary>
        public ChangePlan<PciDevice> PlanEnable(PciAddress pf, int? count)
        {
            var device = PhysicalFunction(pf);
            var total = device.SriovTotalVfs!.Value;
            if (count is int c && (c < 1 || c > total))
            {
                throw new GpuVirtException(ErrorIds.VgpuSriovNotSupported, ErrorKind.InvalidArgument,
                    $"{pf} has at most {N(total)} virtual functions (sriov_totalvfs); -Count {N(c)} is out of range.", pf.ToString());
            }
            var enabled = device.VirtualFunctionAddresses.Count;
            var numVfs = NumVfsHostPath(pf);
            if (enabled > 0 && count is int wanted && wanted != enabled)
            {
                throw new GpuVirtException(ErrorIds.VgpuSriovAlreadyEnabled, ErrorKind.InvalidOperation,
                    $"{pf} has {N(enabled)} virtual functions enabled already; the kernel changes the count only through 0 " +
                    "(which removes every vGPU of the GPU). Remove its vGPUs and write 0 to " + numVfs + " first.", pf.ToString());
            }
            var program = count is null && File.Exists(Root.Resolve(SriovVgpu.SriovManage)) ? SriovVgpu.SriovManage : null;
            var vfs = program != null ? total : count ?? total;
            var plan = new ChangePlan<PciDevice>(ChangeKind.SriovEnable, _host, Target(device),
                $"Enable {N(vfs)} SR-IOV virtual functions for NVIDIA vGPU", () => Reread(pf));
            plan.Devices.Add(pf);
            if (enabled > 0)
            {
                plan.NothingToDo = $"{pf}: {N(enabled)} virtual functions are enabled already.";
                return plan;
            }
            plan.Preconditions.Add(new PlanPrecondition($"{pf} has no virtual function enabled", () =>
            {
                var now = Enabled(pf);
                return now == 0 ? null : $"{pf} has {N(now)} virtual functions enabled now";
            }, ErrorIds.VgpuSriovAlreadyEnabled));
            plan.Steps.Add(program != null
                ? new PlanStep("run " + ProcessRunner.Render(program, EnableArguments(pf)),
                    c => _runner.RunOnHost(Root, program, EnableArguments(pf), c.CancellationToken),
                    c => _runner.RunOnHost(Root, program, DisableArguments(pf), c.CancellationToken),
                    "run " + ProcessRunner.Render(program, DisableArguments(pf)))
                : new PlanStep($"write {N(vfs)} to {numVfs}",
                    c => WriteNumVfs(pf, vfs, c),
                    c => WriteNumVfs(pf, 0, c),
                    $"write 0 to {numVfs}"));
            var timeout = Timeout;
            plan.Steps.Add(new PlanStep($"wait (up to {N((int)timeout.TotalSeconds)} s) for the virtual functions and their {VgpuInventory.CreatableVgpuTypes}",
                c => WaitForFunctions(pf, vfs, timeout, c),
                _ => { },
                "nothing: the virtual functions go with the step before"));
            plan.Journal = () =>
            {
                var now = Enabled(pf);
                var record = new ChangeRecord { Target = pf.ToString(), Action = $"Enable {N(now)} SR-IOV virtual functions" + (program != null ? $" ({program} -e)" : string.Empty) };
                record.Details.Add(new ChangeDetail("virtual functions of " + pf + " (sriov_numvfs)", "0", N(now)));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.SetSriovFunctions,
                    Description = (program != null ? $"disable the virtual functions of {pf} ({ProcessRunner.Render(program, DisableArguments(pf))})" : $"disable the virtual functions of {pf} (write 0 to {numVfs})"),
                    Address = pf.ToString(), VirtualFunctions = 0, ExpectedVirtualFunctions = now, Program = program,
                });
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>
        /// Plans taking a journaled SR-IOV change back (<see cref="InverseKind.SetSriovFunctions"/>): the count set back
        /// to what it was. Back to 0 the virtual functions are disabled (through <c>sriov-manage -d</c> when the change
        /// ran it and it is still installed, else 0 written to <c>sriov_numvfs</c>), which the plan checks refuse while a
        /// function carries a live vGPU (<see cref="ErrorIds.VgpuParentInUse"/>) or a process holds it
        /// (<see cref="ErrorIds.DeviceInUse"/>), and without <paramref name="force"/> while a guest's definition
        /// references it (<see cref="ErrorIds.DeviceReferencedByGuest"/>). Back to a count above 0 they are enabled again.
        /// </summary>
        public ChangePlan<PciDevice> PlanInverse(InverseStep step, bool force)
        {
            if (step.Kind != InverseKind.SetSriovFunctions) throw new ArgumentException("Not an SR-IOV inverse: " + step.Kind, nameof(step));
            var pf = PciAddress.Parse(step.Address!);
            var count = step.VirtualFunctions ?? 0;
            if (count > 0) return PlanEnable(pf, count);
            return PlanDisable(pf, step.Program, force);
        }

        /// <summary>Plans disabling every virtual function of <paramref name="pf"/> (the undo of Enable-VgpuSriov).</summary>
        private ChangePlan<PciDevice> PlanDisable(PciAddress pf, string? program, bool force)
        {
            var device = PhysicalFunction(pf);
            var vfs = device.VirtualFunctionAddresses;
            var numVfs = NumVfsHostPath(pf);
            var tool = program != null && File.Exists(Root.Resolve(program)) ? program : null;
            var plan = new ChangePlan<PciDevice>(ChangeKind.SriovDisable, _host, Target(device),
                $"Disable the {N(vfs.Count)} SR-IOV virtual functions", () => Reread(pf))
            {
                Force = force,
                ReadGuests = _virsh != null && GuestReferences.Reachable(_host) ? () => GuestReferences.TryRead(_virsh(), _log) : (Func<GuestReferences?>?)null,
            };
            // The functions that go away: the checks look at each (a live vGPU, a holder, a guest that references it).
            plan.Devices.AddRange(vfs);
            if (vfs.Count == 0)
            {
                plan.NothingToDo = $"{pf} has no virtual function enabled.";
                return plan;
            }
            var before = vfs.Count;
            plan.Preconditions.Add(new PlanPrecondition($"{pf} has {N(before)} virtual functions enabled", () =>
            {
                var now = Enabled(pf);
                return now == before ? null : $"{pf} has {N(now)} virtual functions enabled now, not {N(before)}";
            }));
            plan.Steps.Add(tool != null
                ? new PlanStep("run " + ProcessRunner.Render(tool, DisableArguments(pf)),
                    c => _runner.RunOnHost(Root, tool, DisableArguments(pf), c.CancellationToken),
                    c => _runner.RunOnHost(Root, tool, EnableArguments(pf), c.CancellationToken),
                    "run " + ProcessRunner.Render(tool, EnableArguments(pf)))
                : new PlanStep($"write 0 to {numVfs}",
                    c => WriteNumVfs(pf, 0, c),
                    c => WriteNumVfs(pf, before, c),
                    $"write {N(before)} to {numVfs}"));
            var timeout = Timeout;
            plan.Steps.Add(new PlanStep($"wait (up to {N((int)timeout.TotalSeconds)} s) for the virtual functions to go",
                c => WaitForFunctions(pf, 0, timeout, c),
                _ => { },
                "nothing: the virtual functions go with the step before"));
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>The GPU's physical function; what is not an NVIDIA SR-IOV PF throws <see cref="ErrorIds.VgpuSriovNotSupported"/>.</summary>
        private PciDevice PhysicalFunction(PciAddress pf)
        {
            var device = new PciInventory(Root).Find(pf) ?? throw PciInventory.NotFound(pf, pf.ToString());
            if (device.PhysicalFunctionAddress is PciAddress parent)
            {
                throw new GpuVirtException(ErrorIds.VgpuSriovNotSupported, ErrorKind.InvalidArgument,
                    $"{pf} is a virtual function of {parent}: give the physical function.", pf.ToString());
            }
            if (device.VendorId != SriovVgpu.NvidiaVendor || !(device.SriovTotalVfs is int total) || total < 1)
            {
                throw new GpuVirtException(ErrorIds.VgpuSriovNotSupported, ErrorKind.InvalidArgument,
                    $"{pf} ({device.DeviceName ?? device.Ids}) is not an NVIDIA GPU with SR-IOV (" +
                    (device.VendorId != SriovVgpu.NvidiaVendor ? "vendor " + device.VendorId.ToString("x4", CultureInfo.InvariantCulture) : "no sriov_totalvfs") +
                    "): NVIDIA vGPU on virtual functions needs an Ada, Hopper or later board with the vGPU manager installed.", pf.ToString());
            }
            return device;
        }

        private static string Target(PciDevice device) => device.Address + (device.DeviceName is null ? string.Empty : " (" + device.DeviceName + ")");

        private static string NumVfsHostPath(PciAddress pf) => HostPaths.PciDevices + "/" + pf + "/sriov_numvfs";

        private static string[] EnableArguments(PciAddress pf) => new[] { "-e", pf.ToString() };

        private static string[] DisableArguments(PciAddress pf) => new[] { "-d", pf.ToString() };

        private int Enabled(PciAddress pf) => new PciInventory(Root).Find(pf)?.VirtualFunctionAddresses.Count ?? 0;

        private PciDevice Reread(PciAddress pf) => new PciInventory(Root).Find(pf) ?? throw PciInventory.NotFound(pf, pf.ToString());

        private void WriteNumVfs(PciAddress pf, int count, PlanContext context)
        {
            var hostPath = NumVfsHostPath(pf);
            context.Log?.Invoke($"Writing {N(count)} to {hostPath}");
            var errno = SysfsWriter.Write(Root.Resolve(hostPath), N(count) + "\n");
            if (errno != 0)
            {
                throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuSriovEnableFailed,
                    count == 0 ? $"Disabling the virtual functions of {pf} failed" : $"Enabling the virtual functions of {pf} failed");
            }
        }

        /// <summary>
        /// Waits (bounded) until <paramref name="pf"/> shows <paramref name="count"/> virtual functions, each with
        /// <c>nvidia/creatable_vgpu_types</c> (or none, for 0); the error says what it found instead.
        /// </summary>
        private void WaitForFunctions(PciAddress pf, int count, TimeSpan timeout, PlanContext context)
        {
            var watch = Stopwatch.StartNew();
            string state;
            while (true)
            {
                var inventory = new PciInventory(Root);
                var vfs = inventory.Find(pf)?.VirtualFunctionAddresses ?? Array.Empty<PciAddress>();
                var ready = vfs.Count(v => File.Exists(Path.Combine(inventory.DeviceDirectory(v), VgpuInventory.CreatableVgpuTypes)));
                // Going: sriov_numvfs reads 0 at once, the functions' virtfn links are what is left of them.
                var left = count == 0 ? (Sysfs.TryListNames(inventory.DeviceDirectory(pf)) ?? new List<string>()).Count(e => e.StartsWith("virtfn", StringComparison.Ordinal)) : 0;
                if (count == 0 ? left == 0 : vfs.Count >= count && ready == vfs.Count) return;
                state = count != 0 && vfs.Count == 0
                    ? "no virtual function appeared"
                    : count == 0
                        ? $"{N(left)} virtual functions are still there"
                        : $"{N(vfs.Count)} virtual functions appeared, {N(ready)} of them with nvidia/creatable_vgpu_types";
                if (watch.Elapsed >= timeout) break;
                if (context.CancellationToken.WaitHandle.WaitOne(50))
                    throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped, "Stopped while waiting for the virtual functions.", pf.ToString());
            }
            throw new GpuVirtException(ErrorIds.VgpuSriovEnableFailed, ErrorKind.ResourceUnavailable,
                $"{(count == 0 ? "Disabling" : "Enabling")} the virtual functions of {pf} did not finish within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s: {state}. " +
                "Check that the NVIDIA vGPU manager is installed and running (Test-VgpuHost) and the kernel log (dmesg).", pf.ToString());
        }

        private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);
    }
}
