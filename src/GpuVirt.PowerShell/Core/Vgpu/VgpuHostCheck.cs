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
    /// The vGPU host checks, by what the host's vGPU parents need. NVIDIA's (the procedure's 16.7.2.1 steps 2–4: nouveau
    /// blacklisted, <c>nvidia_vgpu_vfio</c> loaded, <c>nvidia-vgpu-mgr.service</c> running) where an NVIDIA GPU is a
    /// parent or the vGPU manager's module is loaded; Intel GVT-g's (<c>i915.enable_gvt</c>, <c>kvmgt</c>) where an Intel
    /// GPU is. A host with no parent at all is checked for what its GPUs would need to become one. Then whether any GPU
    /// offers vGPU types.
    /// </summary>
    internal static class VgpuHostChecks
    {
        public const string VfioModule = "nvidia_vgpu_vfio";
        public const string ManagerService = "nvidia-vgpu-mgr.service";
        public const string GvtModule = "kvmgt";
        public const string EnableGvt = "/sys/module/i915/parameters/enable_gvt";
        public const ushort IntelVendor = 0x8086;

        /// <summary>Which vendors' checks apply to a host: NVIDIA's, Intel GVT-g's.</summary>
        internal static (bool Nvidia, bool IntelGvt) Needs(VgpuInventory inventory)
        {
            var root = inventory.Root;
            var parents = inventory.MdevParents()
                .Select(p => PciAddress.TryParse(p, out var a) ? inventory.Pci.Find(a) : null)
                .ToList();
            var nvidia = inventory.SriovParents().Count > 0 || parents.Any(d => d?.VendorId == SriovVgpu.NvidiaVendor) || KernelModules.IsLoaded(root, VfioModule);
            var gvt = parents.Any(d => d?.VendorId == IntelVendor);
            if (parents.Count == 0 && !nvidia)
            {
                // No vGPU parent yet: what the host's GPUs would need to become one.
                var gpus = inventory.Pci.Devices.Where(d => d.IsDisplay).ToList();
                nvidia = gpus.Any(g => g.VendorId == SriovVgpu.NvidiaVendor);
                gvt = gpus.Any(g => g.VendorId == IntelVendor && g.Driver == "i915");
            }
            return (nvidia, gvt);
        }

        public static IReadOnlyList<VgpuHostCheck> Run(VgpuInventory inventory, ProcessRunner runner, CancellationToken ct = default)
        {
            var root = inventory.Root;
            var checks = new List<VgpuHostCheck>();
            var parents = inventory.MdevParents();
            var sriov = inventory.SriovParents();
            var (nvidia, gvt) = Needs(inventory);

            if (nvidia)
            {
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
            }

            if (gvt)
            {
                var intelParents = parents.Where(p => PciAddress.TryParse(p, out var a) && inventory.Pci.Find(a)?.VendorId == IntelVendor).ToList();
                var enabled = Sysfs.TryReadText(root.Resolve(EnableGvt));
                var on = enabled == "Y" || enabled == "1";
                checks.Add(new VgpuHostCheck("i915 GVT-g enabled", on || intelParents.Count > 0,
                    enabled is null
                        ? $"'{EnableGvt}' is missing (i915 is not loaded, or built without GVT-g)" + (intelParents.Count > 0 ? "; " + string.Join(", ", intelParents) + " offers GVT-g types" : string.Empty)
                        : "enable_gvt is " + enabled,
                    "Add i915.enable_gvt=1 to the kernel command line (GRUB_CMDLINE_LINUX) and reboot; GVT-g runs on Intel's integrated GPUs from Broadwell to Comet Lake."));

                var kvmgt = KernelModules.IsLoaded(root, GvtModule);
                checks.Add(new VgpuHostCheck(GvtModule + " loaded", kvmgt,
                    kvmgt ? "the module is loaded" : $"'{GvtModule}' is neither in {HostPaths.SysModule} nor in {HostPaths.ProcModules}",
                    "Load it with 'modprobe kvmgt', and name it in /etc/modules-load.d/ so that it loads at boot."));
            }

            var names = parents.Concat(sriov.Select(p => p.Address + " (SR-IOV)")).ToList();
            checks.Add(new VgpuHostCheck("vGPU parent devices present", names.Count > 0,
                names.Count > 0 ? string.Join(", ", names) : $"'{HostPaths.MdevBusClass}' lists no device and no virtual function offers vGPU types",
                "Check that the GPU supports vGPU and that its vGPU driver is bound to it (Get-GpuDevice): NVIDIA's vGPU Manager, or i915 with GVT-g; " +
                "for NVIDIA vGPU 17 and later (SR-IOV), enable the virtual functions with Enable-VgpuSriov."));
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
