using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.HostReadiness
{
    /// <summary>The verdict of one readiness check.</summary>
    public enum HostCheckStatus
    {
        Pass,
        Warn,
        Fail,
    }

    /// <summary>One readiness check of a GPU passthrough host: what was checked, the verdict, what was seen and how to fix it.</summary>
    public sealed class GpuVirtHostCheck : HostObject
    {
        internal GpuVirtHostCheck(string name, HostCheckStatus status, string detail, string? fix = null, PciAddress? device = null)
        {
            Name = name;
            Status = status;
            Detail = detail;
            Fix = status == HostCheckStatus.Pass ? null : fix;
            DeviceAddress = device;
        }

        public string Name { get; }
        public HostCheckStatus Status { get; }
        public string Detail { get; }

        /// <summary>What to do about a warning or failure, naming the GpuVirt command where one exists; null for a pass.</summary>
        public string? Fix { get; }

        /// <summary>The GPU a per-GPU check is about; null for host-wide checks.</summary>
        public string? Device => DeviceAddress?.ToString();

        internal PciAddress? DeviceAddress { get; }

        public override string ToString() => Status.ToString().ToUpperInvariant() + " " + Name + (Device is string d ? " " + d : string.Empty);
    }

    /// <summary>
    /// The readiness doctor behind Test-GpuVirtHost: every check of the procedure that can be read from the host
    /// (CPU, KVM, IOMMU, interrupt remapping, kernel arguments, vfio, each GPU's group and its host-critical partners, console role and reset, ACS
    /// override, nouveau, the vGPU host checks, libvirt). Reads only; runs <c>virsh version</c> and, for vGPU hosts,
    /// <c>systemctl</c>.
    /// </summary>
    internal static class GpuVirtHostChecks
    {
        public const string DevKvm = "/dev/kvm";
        public const string IommuClass = "/sys/class/iommu";
        public const string ProcInterrupts = "/proc/interrupts";
        public const string AllowUnsafeInterrupts = "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts";
        public static readonly IReadOnlyList<string> VfioModules = new[] { "vfio", "vfio_pci", "vfio_iommu_type1" };

        /// <param name="guests">Reads every guest's hostdevs when libvirt is the host's to ask (null: the guests are not checked).</param>
        public static IReadOnlyList<GpuVirtHostCheck> Run(PciInventory inventory, Virsh virsh, ProcessRunner runner, CancellationToken ct = default,
            Func<HostdevOwnership?>? guests = null)
        {
            var root = inventory.Root;
            var checks = new List<GpuVirtHostCheck>
            {
                CpuVirtualization(root),
                Kvm(root),
                IommuActive(root),
                InterruptRemapping(root),
                KernelArguments(root, inventory),
                Vfio(root),
            };
            var gpus = inventory.Gpus();
            foreach (var gpu in gpus)
            {
                checks.Add(Group(inventory, gpu));
                var partners = HostCriticalPartners(inventory, gpu);
                if (partners != null) checks.Add(partners);
                checks.Add(ConsoleGpu(gpu));
                checks.Add(Reset(gpu));
            }
            checks.Add(AcsOverride(root));
            var vgpu = new VgpuInventory(root, inventory);
            var vgpuHost = vgpu.MdevParents().Count > 0 || vgpu.SriovParents().Count > 0 || KernelModules.IsLoaded(root, VgpuHostChecks.VfioModule);
            var nouveauChecked = false;
            if (vgpuHost)
            {
                // A vGPU host: Test-VgpuHost's checks, those its parents need (NVIDIA's include nouveau's).
                foreach (var c in VgpuHostChecks.Run(vgpu, runner, ct))
                {
                    checks.Add(new GpuVirtHostCheck("vGPU: " + c.Name, c.Passed ? HostCheckStatus.Pass : HostCheckStatus.Fail, c.Detail, c.Fix));
                    nouveauChecked |= c.Name == "nouveau blacklisted";
                }
            }
            if (!nouveauChecked && gpus.Any(g => g.VendorId == 0x10de))
            {
                checks.Add(Nouveau(root, gpus.Where(g => g.VendorId == 0x10de).ToList()));
            }
            var libvirt = Libvirt(virsh);
            checks.Add(libvirt);
            if (libvirt.Status == HostCheckStatus.Pass && guests != null)
            {
                // The guests are read once, for both checks of what they hold.
                var owned = guests();
                checks.AddRange(GuestHostdevs(inventory, virsh, owned));
                checks.AddRange(IommuGroupSplits.Checks(inventory, owned));
            }
            foreach (var check in checks) check.From(root, virsh.Uri);
            return checks;
        }

        private static GpuVirtHostCheck CpuVirtualization(HostRoot root)
        {
            const string name = "CPU virtualization";
            var flags = CpuInfo.ReadFlags(root);
            if (flags.Contains("vmx")) return new GpuVirtHostCheck(name, HostCheckStatus.Pass, "Intel VT-x (vmx in " + HostPaths.ProcCpuinfo + ")");
            if (flags.Contains("svm")) return new GpuVirtHostCheck(name, HostCheckStatus.Pass, "AMD-V (svm in " + HostPaths.ProcCpuinfo + ")");
            return new GpuVirtHostCheck(name, HostCheckStatus.Fail,
                flags.Count == 0 ? "cannot read the CPU flags in " + HostPaths.ProcCpuinfo : "neither vmx nor svm in the CPU flags of " + HostPaths.ProcCpuinfo,
                "Turn on Intel VT-x or AMD-V (SVM) in the firmware setup; in a virtual machine, turn on nested virtualization.");
        }

        private static GpuVirtHostCheck Kvm(HostRoot root)
        {
            const string name = "/dev/kvm";
            return File.Exists(root.Resolve(DevKvm))
                ? new GpuVirtHostCheck(name, HostCheckStatus.Pass, DevKvm + " exists")
                : new GpuVirtHostCheck(name, HostCheckStatus.Fail, DevKvm + " does not exist: guests would run without KVM",
                    "Load KVM with 'modprobe kvm_intel' (Intel) or 'modprobe kvm_amd' (AMD); it needs the CPU virtualization above.");
        }

        private static IReadOnlyList<string> IommuUnits(HostRoot root)
        {
            var dir = root.Resolve(IommuClass);
            if (!Directory.Exists(dir)) return Array.Empty<string>();
            return Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Where(n => !string.IsNullOrEmpty(n)).Select(n => n!).OrderBy(n => n, StringComparer.Ordinal).ToList();
        }

        private static GpuVirtHostCheck IommuActive(HostRoot root)
        {
            const string name = "IOMMU active";
            var units = IommuUnits(root);
            var groups = IommuGroups.GroupNumbers(root).Count;
            var unitText = units.Count == 0 ? "no IOMMU unit in " + IommuClass : units.Count + " IOMMU unit(s) (" + string.Join(", ", units) + ")";
            var groupText = groups == 0 ? "no IOMMU group in " + HostPaths.IommuGroups : groups + " IOMMU groups";
            if (groups > 0) return new GpuVirtHostCheck(name, HostCheckStatus.Pass, unitText + ", " + groupText);
            return new GpuVirtHostCheck(name, HostCheckStatus.Fail, unitText + ", " + groupText,
                "Turn on VT-d (Intel) or AMD-Vi (AMD) in the firmware setup, then run Enable-IommuBoot and reboot the host.");
        }

        private static GpuVirtHostCheck InterruptRemapping(HostRoot root)
        {
            const string name = "Interrupt remapping";
            var interrupts = Sysfs.TryReadText(root.Resolve(ProcInterrupts));
            var unsafeText = Sysfs.TryReadText(root.Resolve(AllowUnsafeInterrupts));
            var allowUnsafe = unsafeText == "Y" || unsafeText == "1";
            var cmdline = Core.Boot.KernelArguments.Split(Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)));
            var off = cmdline.FirstOrDefault(a => a == "intremap=off" || a == "intremap=no" || a == "intel_iommu=off" || a == "amd_iommu=off");
            const string fix = "Turn on interrupt remapping with VT-d or AMD-Vi in the firmware setup" +
                " and remove intremap=off from the kernel command line; only on a platform without it: 'options vfio_iommu_type1 allow_unsafe_interrupts=1'.";
            if (interrupts != null && interrupts.IndexOf(" IR-", StringComparison.Ordinal) >= 0)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Pass, "on: " + ProcInterrupts + " shows IR- interrupt chips");
            }
            if (allowUnsafe)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn,
                    "off, and vfio_iommu_type1 allow_unsafe_interrupts=Y assigns devices anyway: a guest can inject interrupts into the host", fix);
            }
            if (interrupts is null)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, "cannot tell: " + ProcInterrupts + " cannot be read", fix);
            }
            return new GpuVirtHostCheck(name, HostCheckStatus.Fail,
                "off: no IR- interrupt chip in " + ProcInterrupts + (off is null ? string.Empty : " (" + off + " on the kernel command line)") +
                "; vfio refuses to assign devices without it", fix);
        }

        private static GpuVirtHostCheck KernelArguments(HostRoot root, PciInventory inventory)
        {
            const string name = "Kernel arguments";
            IommuBootStatus status;
            try
            {
                status = IommuBootStatus.Read(root, inventory);
            }
            catch (GpuVirtException e)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, e.Message, "Get-IommuBootStatus shows the boot configuration.");
            }
            string Args(IReadOnlyList<string> a) => a.Count == 0 ? "none" : string.Join(" ", a);
            if (status.BootLoader is null)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn,
                    "no boot loader configuration found to compare with the running kernel's (" + Args(status.RunningArguments) + ")",
                    "Give the boot loader with Get-IommuBootStatus -BootLoader, or check the boot configuration by hand.");
            }
            var detail = "configured in " + status.ConfigFile + ": " + Args(status.ConfiguredArguments) + "; running: " + Args(status.RunningArguments);
            if (!status.IommuConfigured && !status.IommuActive)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Fail, detail + "; the configuration does not turn the IOMMU on",
                    "Run Enable-IommuBoot, then reboot the host.");
            }
            if (status.RebootPending)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, detail + "; they differ: a reboot is pending",
                    "Reboot the host for the configured arguments to take effect (Get-IommuBootStatus shows both).");
            }
            return new GpuVirtHostCheck(name, HostCheckStatus.Pass, detail);
        }

        private static GpuVirtHostCheck Vfio(HostRoot root)
        {
            const string name = "vfio modules";
            // Loaded, or built into the kernel (a /sys/module directory without initstate).
            var missing = VfioModules.Where(m => !KernelModules.IsLoaded(root, m) && !Directory.Exists(Path.Combine(root.Resolve(HostPaths.SysModule), m))).ToList();
            if (missing.Count == 0) return new GpuVirtHostCheck(name, HostCheckStatus.Pass, string.Join(", ", VfioModules) + " loaded");
            return new GpuVirtHostCheck(name, HostCheckStatus.Warn, "not loaded: " + string.Join(", ", missing),
                "Load them with 'modprobe vfio-pci' (it pulls in vfio and vfio_iommu_type1); libvirt also loads it for managed hostdevs, and Dismount-GpuHostDriver needs it.");
        }

        private static GpuVirtHostCheck Group(PciInventory inventory, GpuDevice gpu)
        {
            const string name = "IOMMU group";
            if (gpu.IommuGroup is not int number)
            {
                // On a host with groups the IOMMU is on; it just does not cover this function.
                var groups = IommuGroups.GroupNumbers(inventory.Root).Count;
                return groups > 0
                    ? new GpuVirtHostCheck(name, HostCheckStatus.Fail,
                        $"no IOMMU group, though the IOMMU is on ({groups} groups): it does not cover this function, which cannot be assigned",
                        "Check the firmware's DMAR (Intel) or IVRS (AMD) table covers this slot (a firmware update, or another slot), and that no kernel argument leaves the device out.",
                        gpu.PciAddress)
                    : new GpuVirtHostCheck(name, HostCheckStatus.Fail, "no IOMMU group: it cannot be assigned",
                        "Turn the IOMMU on: Enable-IommuBoot, then reboot the host.", gpu.PciAddress);
            }
            var group = IommuGroups.TryRead(inventory, number);
            if (group is null)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Fail, $"group {number} is missing from {HostPaths.IommuGroups}",
                    "Get-IommuGroup shows the groups; reboot the host if they changed.", gpu.PciAddress);
            }
            var partners = group.EndpointDevices.Where(d => !d.PciAddress.IsSameSlot(gpu.PciAddress)).ToList();
            var problems = new List<string>();
            var fixes = new List<string>();
            if (partners.Count > 0)
            {
                problems.Add("it shares the group with " + string.Join(", ", partners.Select(d => $"{d.Address} ({d.ClassName ?? d.ClassId}, driver {d.Driver ?? "none"})")) +
                    ", which go to the guest with it or keep the group from being assigned");
                fixes.Add("Move the GPU to a slot with a group of its own (Get-IommuGroup shows the groups)");
            }
            if (!group.IsViable)
            {
                problems.Add("not viable: " + string.Join("; ", group.BlockerList.Select(b => b.ToString())));
                if (group.BlockerList.Any(b => b.VgpuFunction))
                    fixes.Add("Give the vGPU virtual function a vGPU type with New-VgpuDevice (Get-VgpuType lists what it takes); it stays on nvidia, and a guest takes it with managed='no'");
                if (group.BlockerList.Any(b => !b.VgpuFunction))
                    fixes.Add("Detach the group's functions with Dismount-GpuHostDriver, or attach them with Add-GpuHostdev -IncludeCompanion (managed hostdevs are detached when the guest starts)");
            }
            var members = string.Join(", ", group.EndpointDevices.Select(d => d.PciAddress + " (" + (d.Driver ?? "no driver") + ")"));
            if (problems.Count == 0)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Pass, $"group {number}: {members}; viable", null, gpu.PciAddress);
            }
            return new GpuVirtHostCheck(name, HostCheckStatus.Warn, $"group {number}: " + string.Join("; ", problems),
                string.Join(". ", fixes) + ".", gpu.PciAddress);
        }

        /// <summary>
        /// The members of the GPU's IOMMU group, other than the GPU itself, that the running host needs (its disks,
        /// swap, routed network interfaces, console: <see cref="HostCriticalDevices"/>): the whole group leaves the host
        /// when the GPU is assigned. Null when the GPU has no readable group (the group check fails then).
        /// </summary>
        private static GpuVirtHostCheck? HostCriticalPartners(PciInventory inventory, GpuDevice gpu)
        {
            const string name = "Host-critical partners";
            if (gpu.IommuGroup is not int number) return null;
            var group = IommuGroups.TryRead(inventory, number);
            if (group is null) return null;
            var needed = group.HostDependencies.Where(d => d.Address != gpu.PciAddress).GroupBy(d => d.Address).ToList();
            if (needed.Count == 0)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Pass,
                    $"group {number}: no other member is needed by the running host (filesystems, swap, routed network interfaces, console)", null, gpu.PciAddress);
            }
            var what = needed.Select(g =>
            {
                var device = inventory.Find(g.Key);
                var label = device is null ? g.Key.ToString() : $"{g.Key} ({device.ClassName ?? device.ClassId}, driver {device.Driver ?? "none"})";
                return label + ": " + string.Join("; ", g.Select(d => d.Reason));
            });
            return new GpuVirtHostCheck(name, HostCheckStatus.Fail,
                $"group {number} holds what the running host needs: {string.Join(". ", what)}. Assigning the GPU takes the whole group from the host",
                "Move the GPU to a slot whose IOMMU group holds nothing the host needs, or move the host's disks and network off that group " +
                "(Get-IommuGroup shows each group's HostCritical members).", gpu.PciAddress);
        }

        private static GpuVirtHostCheck ConsoleGpu(GpuDevice gpu)
        {
            const string name = "Console GPU";
            return gpu.IsBootVga
                ? new GpuVirtHostCheck(name, HostCheckStatus.Warn, "boot_vga is 1: the host's console runs on it, and giving it to a guest takes the console away",
                    "Give a guest another GPU, or make another GPU the primary display in the firmware setup.", gpu.PciAddress)
                : new GpuVirtHostCheck(name, HostCheckStatus.Pass, "not the host's boot VGA device", null, gpu.PciAddress);
        }

        private static GpuVirtHostCheck Reset(GpuDevice gpu)
        {
            const string name = "Reset";
            var reset = GpuReset.Read(gpu);
            var methods = reset.Methods is null ? null : reset.Methods.Count == 0 ? "none" : string.Join(" ", reset.Methods);
            var seen = (methods is null ? "no reset_method attribute" : "reset_method: " + methods) +
                (reset.Flr is bool flr ? (flr ? "; FLR in config space" : "; no FLR in config space") : string.Empty);
            if (reset.KnownBug != null)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, reset.KnownBug + " has a known reset bug: it may not come back after a guest stops (" + seen + ")",
                    "Load the vendor-reset module for it, or reboot the host between guests.", gpu.PciAddress);
            }
            var usable = reset.Methods?.Count > 0 || reset.Flr == true;
            if (usable) return new GpuVirtHostCheck(name, HostCheckStatus.Pass, seen, null, gpu.PciAddress);
            return new GpuVirtHostCheck(name, HostCheckStatus.Warn,
                (reset.Methods is null && reset.Flr is null ? "cannot tell: no reset_method attribute and config space past the header needs root" : seen + ": the kernel has no way to reset it between guests"),
                "Run as root to read its capabilities; without a reset, reboot the host between guests.", gpu.PciAddress);
        }

        private static GpuVirtHostCheck AcsOverride(HostRoot root)
        {
            const string name = "ACS override";
            var args = Core.Boot.KernelArguments.Split(Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)));
            var acs = args.FirstOrDefault(a => a.StartsWith("pcie_acs_override=", StringComparison.Ordinal));
            return acs is null
                ? new GpuVirtHostCheck(name, HostCheckStatus.Pass, "no pcie_acs_override on the kernel command line")
                : new GpuVirtHostCheck(name, HostCheckStatus.Warn,
                    acs + ": the IOMMU groups are split by a patched kernel, not by the hardware; the devices in them are not isolated from each other",
                    "Remove pcie_acs_override from the kernel command line and put the GPUs in slots with groups of their own (Get-IommuGroup).");
        }

        private static GpuVirtHostCheck Nouveau(HostRoot root, IReadOnlyList<GpuDevice> nvidia)
        {
            const string name = "nouveau";
            var bound = nvidia.Where(g => g.Driver == "nouveau").Select(g => g.Address.ToString()).ToList();
            var loaded = KernelModules.IsLoaded(root, "nouveau");
            var blacklisted = KernelModules.BlacklistedBy(root, "nouveau");
            const string fix = "Run Disable-NouveauDriver, then reboot the host.";
            if (bound.Count > 0)
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, "nouveau drives " + string.Join(", ", bound) + "; the procedure blacklists it on NVIDIA hosts", fix);
            if (loaded)
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, "the nouveau module is loaded", fix);
            if (blacklisted.Count == 0)
                return new GpuVirtHostCheck(name, HostCheckStatus.Warn, "not loaded, but not blacklisted: it may take the NVIDIA GPUs at the next boot", fix);
            return new GpuVirtHostCheck(name, HostCheckStatus.Pass, "blacklisted in " + string.Join(", ", blacklisted) + "; not loaded");
        }

        /// <summary>
        /// The guests' hostdevs against the host: one Warn for each that points at a device the host no longer has (the
        /// guest will not start) or at a PCI function whose vendor:device is not the one Add-GpuHostdev attached (the
        /// guest would get another device); one Pass when every hostdev is where it was.
        /// </summary>
        private static IReadOnlyList<GpuVirtHostCheck> GuestHostdevs(PciInventory inventory, Virsh virsh, HostdevOwnership? ownership)
        {
            const string name = "guest hostdev";
            if (ownership is null) return new[] { new GpuVirtHostCheck(name + "s", HostCheckStatus.Warn, "the guests' definitions could not be read") };
            var hostdevs = ownership.Hostdevs;
            foreach (var hostdev in hostdevs) hostdev.On(inventory.Root, virsh.Uri);
            HostdevPresence.Fill(hostdevs, inventory, HostdevPresence.TryReadJournal(inventory.Root, null));
            var checks = new List<GpuVirtHostCheck>();
            foreach (var hostdev in hostdevs)
            {
                var guest = $"guest '{hostdev.Domain}'";
                if (hostdev.Present == false)
                {
                    var what = hostdev.Kind == HostdevKind.Pci
                        ? $"no PCI function at {hostdev.Address}" + (hostdev.AttachedIds is string ids ? $" (it was {ids} when it was attached)" : string.Empty)
                        : $"no mediated device {hostdev.Source}";
                    checks.Add(new GpuVirtHostCheck(name, HostCheckStatus.Warn,
                        $"{guest} has a hostdev for {hostdev.Source}, but the host has {what}: the guest will not start",
                        hostdev.Kind == HostdevKind.Pci
                            ? $"Remove-GpuHostdev -Domain '{hostdev.Domain}' -Address {hostdev.Address}, then give the guest the device where it is now."
                            : $"Create the vGPU again (New-VgpuDevice -Uuid {hostdev.Source}), or Remove-GpuHostdev -Domain '{hostdev.Domain}' -Uuid {hostdev.Source}.",
                        hostdev.PciAddress));
                }
                else if (hostdev.Changed)
                {
                    checks.Add(new GpuVirtHostCheck(name, HostCheckStatus.Warn,
                        $"{guest} has a hostdev for {hostdev.Address}, which was {hostdev.AttachedIds} when it was attached and is now {hostdev.Ids} ({hostdev.Description}): " +
                        "the guest would be given another device",
                        $"Remove-GpuHostdev -Domain '{hostdev.Domain}' -Address {hostdev.Address}, then give the guest the device where it is now.",
                        hostdev.PciAddress));
                }
            }
            if (checks.Count == 0)
            {
                checks.Add(new GpuVirtHostCheck(name + "s", HostCheckStatus.Pass,
                    hostdevs.Count == 0 ? "no guest has a hostdev" : $"{hostdevs.Count} hostdev(s) of {hostdevs.Select(h => h.Domain).Distinct().Count()} guest(s), each on the device it was given"));
            }
            return checks;
        }

        private static GpuVirtHostCheck Libvirt(Virsh virsh)
        {
            const string name = "libvirt";
            var uri = virsh.Uri ?? "virsh's default connection";
            try
            {
                var lines = virsh.Version().Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
                string? Value(string prefix) => lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?.Substring(prefix.Length).Trim();
                var library = Value("Using library:") ?? "libvirt";
                var hypervisor = Value("Running hypervisor:");
                return new GpuVirtHostCheck(name, HostCheckStatus.Pass, uri + ": " + library + (hypervisor is null ? string.Empty : ", " + hypervisor));
            }
            catch (GpuVirtException e)
            {
                return new GpuVirtHostCheck(name, HostCheckStatus.Fail, uri + ": " + e.Message,
                    "Start libvirtd (systemctl enable --now libvirtd), install virsh (libvirt-clients), or give the URI with -Connect.");
            }
        }
    }
}
