using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>
    /// What enabling an NVIDIA GPU's virtual functions will do: run NVIDIA's <c>sriov-manage -e &lt;PF&gt;</c> when it is
    /// installed (and no count is asked for), or write the count to the PF's <c>sriov_numvfs</c>. No steps when the
    /// functions are enabled already.
    /// </summary>
    internal sealed class SriovEnablePlan
    {
        internal SriovEnablePlan(PciAddress physicalFunction, string? name, int count, int enabled, string? program, IReadOnlyList<string> arguments, string numVfsHostPath)
        {
            PhysicalFunction = physicalFunction;
            Name = name;
            Count = count;
            Enabled = enabled;
            Program = program;
            Arguments = arguments;
            NumVfsHostPath = numVfsHostPath;
        }

        public PciAddress PhysicalFunction { get; }
        public string? Name { get; }

        /// <summary>How many virtual functions there will be.</summary>
        public int Count { get; }

        /// <summary>How many are enabled now.</summary>
        public int Enabled { get; }

        /// <summary>NVIDIA's sriov-manage (a host path) when it does the work; null when <c>sriov_numvfs</c> is written.</summary>
        public string? Program { get; }
        public IReadOnlyList<string> Arguments { get; }
        public string NumVfsHostPath { get; }

        public bool HasChanges => Enabled == 0;

        public string Target => PhysicalFunction + (Name is null ? string.Empty : " (" + Name + ")");

        public string Action => $"Enable {Count.ToString(CultureInfo.InvariantCulture)} SR-IOV virtual functions for NVIDIA vGPU";

        /// <summary>One line per step, for -WhatIf.</summary>
        public IReadOnlyList<string> Lines => !HasChanges
            ? new[] { $"nothing: {Enabled.ToString(CultureInfo.InvariantCulture)} virtual functions are enabled" }
            : new[]
            {
                Program != null
                    ? "run " + ProcessRunner.Render(Program, Arguments)
                    : $"write {Count.ToString(CultureInfo.InvariantCulture)} to {NumVfsHostPath}",
                "wait for the virtual functions and their nvidia/creatable_vgpu_types",
            };
    }

    /// <summary>Plans and applies <see cref="SriovEnablePlan"/>s.</summary>
    internal static class SriovEnabler
    {
        /// <summary>How long to wait for the driver to show the virtual functions.</summary>
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

        /// <summary>Plans enabling <paramref name="count"/> (all when null) virtual functions of an NVIDIA GPU; reads, never writes.</summary>
        public static SriovEnablePlan Plan(HostRoot root, PciAddress pf, int? count)
        {
            var pci = new PciInventory(root);
            var device = pci.Find(pf) ?? throw PciInventory.NotFound(pf, pf.ToString());
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
            if (count is int c && (c < 1 || c > total))
            {
                throw new GpuVirtException(ErrorIds.VgpuSriovNotSupported, ErrorKind.InvalidArgument,
                    $"{pf} has at most {total.ToString(CultureInfo.InvariantCulture)} virtual functions (sriov_totalvfs); -Count {c.ToString(CultureInfo.InvariantCulture)} is out of range.", pf.ToString());
            }
            var enabled = device.VirtualFunctions.Count;
            var numVfs = HostPaths.PciDevices + "/" + pf + "/sriov_numvfs";
            if (enabled > 0)
            {
                if (count is int wanted && wanted != enabled)
                {
                    throw new GpuVirtException(ErrorIds.VgpuSriovAlreadyEnabled, ErrorKind.InvalidOperation,
                        $"{pf} has {enabled.ToString(CultureInfo.InvariantCulture)} virtual functions enabled already; the kernel changes the count only through 0 " +
                        "(which removes every vGPU of the GPU). Remove its vGPUs and write 0 to " + numVfs + " first.", pf.ToString());
                }
                return new SriovEnablePlan(pf, device.DeviceName, enabled, enabled, null, Array.Empty<string>(), numVfs);
            }
            var useTool = count is null && File.Exists(root.Resolve(SriovVgpu.SriovManage));
            return useTool
                ? new SriovEnablePlan(pf, device.DeviceName, total, 0, SriovVgpu.SriovManage, new[] { "-e", pf.ToString() }, numVfs)
                : new SriovEnablePlan(pf, device.DeviceName, count ?? total, 0, null, Array.Empty<string>(), numVfs);
        }

        /// <summary>
        /// Applies a plan under the vGPU lock: re-checks that no function is enabled, runs the step, and waits (bounded) for
        /// the virtual functions to appear with <c>nvidia/creatable_vgpu_types</c>. When they do not, what it did is
        /// undone (<c>sriov-manage -d</c>, or 0 written back) and the error says so. Returns the physical function re-read.
        /// </summary>
        public static PciDevice Apply(SriovEnablePlan plan, HostRoot root, ProcessRunner runner, TimeSpan? timeout = null,
            CancellationToken ct = default, Action<string>? log = null)
        {
            var pf = plan.PhysicalFunction;
            if (!plan.HasChanges) return new PciInventory(root).Find(pf)!;
            using (HostLock.Acquire(root, "enable SR-IOV virtual functions", ct, null, log))
            {
                var now = new PciInventory(root).Find(pf)?.VirtualFunctions.Count ?? 0;
                if (now != 0)
                {
                    throw new GpuVirtException(ErrorIds.VgpuSriovAlreadyEnabled, ErrorKind.InvalidOperation,
                        $"{pf} has {now.ToString(CultureInfo.InvariantCulture)} virtual functions enabled since the plan was made; nothing was changed.", pf.ToString());
                }
                var numVfs = root.Resolve(plan.NumVfsHostPath);
                if (plan.Program != null)
                {
                    runner.RunOnHost(root, plan.Program, plan.Arguments, ct);
                }
                else
                {
                    log?.Invoke($"Writing {plan.Count.ToString(CultureInfo.InvariantCulture)} to {plan.NumVfsHostPath}");
                    var errno = SysfsWriter.Write(numVfs, plan.Count.ToString(CultureInfo.InvariantCulture) + "\n");
                    if (errno != 0) throw SysfsWriter.Failure(plan.NumVfsHostPath, errno, ErrorIds.VgpuSriovEnableFailed, $"Enabling the virtual functions of {pf} failed");
                }

                var limit = timeout ?? DefaultTimeout;
                var watch = Stopwatch.StartNew();
                string state;
                while (true)
                {
                    var device = new PciInventory(root).Find(pf);
                    var vfs = device?.VirtualFunctionAddresses ?? Array.Empty<PciAddress>();
                    var ready = vfs.Count(v => File.Exists(Path.Combine(new PciInventory(root).DeviceDirectory(v), VgpuInventory.CreatableVgpuTypes)));
                    if (device != null && vfs.Count >= plan.Count && ready == vfs.Count) return device;
                    state = vfs.Count == 0
                        ? "no virtual function appeared"
                        : $"{vfs.Count.ToString(CultureInfo.InvariantCulture)} virtual functions appeared, {ready.ToString(CultureInfo.InvariantCulture)} of them with nvidia/creatable_vgpu_types";
                    if (watch.Elapsed >= limit) break;
                    if (ct.WaitHandle.WaitOne(50))
                        throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped, "Stopped while waiting for the virtual functions.", pf.ToString());
                }

                string undone;
                try
                {
                    if (plan.Program != null)
                    {
                        runner.RunOnHost(root, plan.Program, new[] { "-d", pf.ToString() }, ct);
                        undone = $"ran {ProcessRunner.Render(plan.Program, new[] { "-d", pf.ToString() })}";
                    }
                    else
                    {
                        var errno = SysfsWriter.Write(numVfs, "0\n");
                        undone = errno == 0 ? $"wrote 0 to {plan.NumVfsHostPath}" : $"could not write 0 to {plan.NumVfsHostPath} ({Errno.Describe(errno)})";
                    }
                }
                catch (GpuVirtException e)
                {
                    undone = "could not undo it: " + e.Message;
                }
                throw new GpuVirtException(ErrorIds.VgpuSriovEnableFailed, ErrorKind.ResourceUnavailable,
                    $"Enabling the virtual functions of {pf} did not finish within {limit.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s: {state}; {undone}. " +
                    "Check that the NVIDIA vGPU manager is installed and running (Test-VgpuHost) and the kernel log (dmesg).", pf.ToString());
            }
        }
    }
}
