using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>One readiness check of a vGPU host: what was checked, whether it passed, what was seen and how to fix it.</summary>
    public sealed class VgpuHostCheck : HostObject
    {
        public VgpuHostCheck(string name, bool passed, string detail, string? fix)
        {
            Name = name;
            Passed = passed;
            Detail = detail;
            Fix = passed ? null : fix;
        }

        public string Name { get; }
        public bool Passed { get; }
        public string Detail { get; }

        /// <summary>What to do when the check failed; null when it passed.</summary>
        public string? Fix { get; }

        public override string ToString() => (Passed ? "PASS " : "FAIL ") + Name;
    }

    /// <summary>
    /// The procedure's vGPU host checks (16.7.2.1 steps 2–4): nouveau blacklisted, <c>nvidia_vgpu_vfio</c> loaded,
    /// <c>nvidia-vgpu-mgr.service</c> running, and GPUs that offer vGPU types.
    /// </summary>
    internal static class VgpuHostChecks
    {
        public const string VfioModule = "nvidia_vgpu_vfio";
        public const string ManagerService = "nvidia-vgpu-mgr.service";

        public static IReadOnlyList<VgpuHostCheck> Run(VgpuInventory inventory, ProcessRunner runner, CancellationToken ct = default)
        {
            var root = inventory.Root;
            var checks = new List<VgpuHostCheck>();

            var blacklisted = KernelModules.BlacklistedBy(root, "nouveau");
            var nouveauLoaded = KernelModules.IsLoaded(root, "nouveau");
            checks.Add(new VgpuHostCheck("nouveau blacklisted",
                blacklisted.Count > 0 && !nouveauLoaded,
                (blacklisted.Count > 0 ? "blacklisted in " + string.Join(", ", blacklisted) : "not blacklisted in /etc/modprobe.d or on the kernel command line")
                    + (nouveauLoaded ? "; the nouveau module is loaded" : string.Empty),
                "Run Disable-NouveauDriver (it writes the blacklist to /etc/modprobe.d and rebuilds the initramfs), then reboot."));

            var loaded = KernelModules.IsLoaded(root, VfioModule);
            checks.Add(new VgpuHostCheck(VfioModule + " loaded", loaded,
                loaded ? "the module is loaded" : $"'{VfioModule}' is neither in {HostPaths.SysModule} nor in {HostPaths.ProcModules}",
                "Install the NVIDIA vGPU Manager (the host driver package for your GPU) and reboot, or load it with 'modprobe nvidia_vgpu_vfio'."));

            checks.Add(ServiceCheck(root, runner, ct));

            var parents = inventory.MdevParents();
            var sriov = inventory.SriovParents();
            var names = parents.Concat(sriov.Select(p => p.Address + " (SR-IOV)")).ToList();
            checks.Add(new VgpuHostCheck("vGPU parent devices present", names.Count > 0,
                names.Count > 0 ? string.Join(", ", names) : $"'{HostPaths.MdevBusClass}' lists no device and no virtual function offers vGPU types",
                "Check that the GPU supports vGPU and that the vGPU Manager driver is bound to it (Get-GpuDevice); " +
                "for vGPU 17 and later (SR-IOV), enable the virtual functions with Enable-VgpuSriov."));
            return checks.On(root);
        }

        /// <summary>
        /// On the live host: <c>systemctl is-active nvidia-vgpu-mgr.service</c>. Under another root (an image) no service
        /// runs, so what can be known is whether it is enabled: <c>systemctl --root=DIR is-enabled</c>.
        /// </summary>
        private static VgpuHostCheck ServiceCheck(HostRoot root, ProcessRunner runner, CancellationToken ct)
        {
            var live = root.IsLive;
            var args = live
                ? new[] { "is-active", ManagerService }
                : new[] { "--root=" + root.Directory, "is-enabled", ManagerService };
            var name = ManagerService + (live ? " active" : " enabled");
            var fix = live
                ? "Start it with 'systemctl enable --now nvidia-vgpu-mgr.service'; if it fails, see 'journalctl -u nvidia-vgpu-mgr'."
                : "Enable it in the image with 'systemctl --root=" + root.Directory + " enable nvidia-vgpu-mgr.service'.";
            CommandResult result;
            try
            {
                result = runner.Run("systemctl", args, ct, check: false);
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.ProgramNotFound)
            {
                return new VgpuHostCheck(name, false, e.Message, fix);
            }
            var state = result.StandardOutput.Trim();
            if (state.Length == 0) state = result.StandardError.Trim();
            var passed = result.ExitCode == 0 && (state == "active" || state == "enabled" || state == "static");
            return new VgpuHostCheck(name, passed, $"systemctl says '{state}'", fix);
        }
    }
}
