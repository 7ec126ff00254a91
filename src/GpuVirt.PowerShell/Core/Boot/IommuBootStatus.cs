using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>What the boot configuration asks for, next to what the running kernel has.</summary>
    public sealed class IommuBootStatus : HostObject
    {
        public BootLoaderFamily? BootLoader { get; internal set; }

        /// <summary>The host path of the file that holds the kernel arguments (null when no boot loader was found).</summary>
        public string? ConfigFile { get; internal set; }

        /// <summary>
        /// What was found of the boot configuration, in words: the family and its file, or that none was found and where
        /// it was looked for (then nothing is configured, whatever the running kernel has).
        /// </summary>
        public string BootConfigurationFound { get; internal set; } = string.Empty;

        public CpuVendor? CpuVendor { get; internal set; }

        /// <summary>The IOMMU, stub and blacklist arguments the kernel will get (GRUB_CMDLINE_LINUX then _DEFAULT; a BLS entry's options).</summary>
        public IReadOnlyList<string> ConfiguredArguments { get; internal set; } = Array.Empty<string>();

        /// <summary>The same arguments in <c>/proc/cmdline</c>.</summary>
        public IReadOnlyList<string> RunningArguments { get; internal set; } = Array.Empty<string>();

        /// <summary>The configuration turns the IOMMU on (Intel: <c>intel_iommu=on</c>; AMD: on unless turned off) and nothing turns it off.</summary>
        public bool IommuConfigured { get; internal set; }

        /// <summary>Boot entries (or the file) whose command line does not turn the IOMMU on: a BLS entry that lacks what the grub file has.</summary>
        public IReadOnlyList<string> UnconfiguredEntries { get; internal set; } = Array.Empty<string>();

        /// <summary>A boot change was interrupted before it finished: what, and what the next boot command does about it (null: none).</summary>
        public string? PendingChange { get; internal set; }

        /// <summary>An interrupted change wrote its files but its regeneration (grub2-mkconfig, update-grub, dracut...) did not finish: the boot entries may not have them yet.</summary>
        public bool RegenerationPending { get; internal set; }

        /// <summary>The kernel has IOMMU groups now.</summary>
        public bool IommuActive { get; internal set; }

        /// <summary><c>iommu=pt</c> is configured.</summary>
        public bool PassthroughConfigured { get; internal set; }

        /// <summary>Ids in <c>pci-stub.ids</c> and <c>vfio-pci.ids</c> of the configuration.</summary>
        public IReadOnlyList<string> StubIdsConfigured { get; internal set; } = Array.Empty<string>();

        /// <summary>Ids in <c>pci-stub.ids</c> and <c>vfio-pci.ids</c> of the running kernel.</summary>
        public IReadOnlyList<string> StubIdsActive { get; internal set; } = Array.Empty<string>();

        /// <summary>Devices bound to pci-stub or vfio-pci now, one line each: <c>0000:02:00.0 [10de:11fa] pci-stub</c>.</summary>
        public IReadOnlyList<string> StubbedDevices { get; internal set; } = Array.Empty<string>();

        /// <summary>nouveau is blacklisted in <c>/etc/modprobe.d</c> or on the configured command line.</summary>
        public bool NouveauBlacklisted { get; internal set; }

        /// <summary>The nouveau module is loaded now (<c>/sys/module/nouveau</c>).</summary>
        public bool NouveauLoaded { get; internal set; }

        /// <summary>Enable-IommuBoot has recorded changes that Disable-IommuBoot can undo.</summary>
        public bool ChangesRecorded { get; internal set; }

        /// <summary>The configured arguments differ from the running ones: a reboot is needed for them to take effect.</summary>
        public bool RebootPending { get; internal set; }

        private static readonly string[] ManagedKeys =
        {
            KernelArguments.IntelIommu, KernelArguments.AmdIommu, KernelArguments.Iommu, KernelArguments.PciStubIds, KernelArguments.VfioPciIds, KernelArguments.ModprobeBlacklist,
        };

        /// <summary>Reads the status of a host root.</summary>
        internal static IommuBootStatus Read(HostRoot root, PciInventory inventory, BootLoaderFamily? family = null)
        {
            var status = new IommuBootStatus { Root = root.Directory, CpuVendor = CpuInfo.TryReadVendor(root) };
            BootConfiguration? boot = null;
            try
            {
                boot = BootConfiguration.Detect(root, family);
            }
            catch (GpuVirtException e) when (family is null && e.ErrorId == ErrorIds.BootLoaderNotDetected)
            {
                status.BootConfigurationFound = "None: " + e.Message;
            }

            // What the kernel will get: the effective command line of each boot entry (LINUX then LINUX_DEFAULT;
            // for BLS each entry's own options; for kernelstub and rpm-ostree what the tool keeps).
            var lines = new List<(string Source, List<string> Args)>();
            if (boot != null)
            {
                status.BootLoader = boot.Family;
                status.ConfigFile = boot.File;
                status.BootConfigurationFound = boot.Family + ": " + boot.File + (HostFiles.Exists(root, boot.File) ? string.Empty : " (missing)");
                foreach (var line in ToolCmdline.For(root, boot))
                {
                    lines.Add((line.File, KernelArguments.Split(line.Text).ToList()));
                }
                var full = root.Resolve(boot.File);
                if (lines.Count == 0 && boot.Kind != BootFileKind.Tool && File.Exists(full))
                {
                    lines.Add((boot.File, boot.Parse(HostFiles.ReadText(full, boot.File)).Words.Where(w => !w.IsOpaque).Select(w => w.Text).ToList()));
                }
            }
            var vendor = status.CpuVendor;
            bool IommuOn(List<string> args)
            {
                var iommu = KernelArguments.ItemsFor(args, KernelArguments.Iommu);
                if (iommu.Contains("off") || iommu.Contains("soft")) return false;
                if (vendor == Core.Boot.CpuVendor.Amd) return !KernelArguments.ItemsFor(args, KernelArguments.AmdIommu).Contains("off");
                var intel = KernelArguments.ItemsFor(args, KernelArguments.IntelIommu);
                return intel.LastOrDefault(i => i == "on" || i == "off") == "on";
            }
            var missing = lines.Where(l => !IommuOn(l.Args)).ToList();
            status.UnconfiguredEntries = missing.Select(l => l.Source).ToList();
            var configured = (missing.Count > 0 ? missing[0].Args : lines.Count > 0 ? lines[0].Args : null) ?? new List<string>();
            var running = KernelArguments.Split(Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)));

            bool Managed(string a) => ManagedKeys.Any(k => KernelArguments.SameKey(KernelArguments.KeyOf(a), k));
            status.ConfiguredArguments = configured.Where(Managed).ToList();
            status.RunningArguments = running.Where(Managed).ToList();

            status.IommuConfigured = lines.Count > 0 && missing.Count == 0;
            // iommu=off and iommu=soft stay whatever comes after them: with either, there is no passthrough to speak of.
            status.PassthroughConfigured = lines.Count > 0 && lines.All(l =>
            {
                var iommu = KernelArguments.ItemsFor(l.Args, KernelArguments.Iommu);
                return iommu.Contains("pt") && !iommu.Contains("soft") && !iommu.Contains("off");
            });
            status.IommuActive = IommuGroups.IsEnabled(root);
            status.StubIdsConfigured = StubIds(configured);
            status.StubIdsActive = StubIds(running);
            status.StubbedDevices = inventory.Devices
                .Where(d => d.Driver != null && PciInventory.IsPassthroughDriver(d.Driver))
                .Select(d => $"{d.Address} [{d.Ids}] {d.Driver}")
                .ToList();
            status.NouveauBlacklisted = NouveauBlacklist.FindBlacklist(root) != null
                || KernelArguments.ItemsFor(configured, KernelArguments.ModprobeBlacklist).Contains(KernelArguments.Nouveau);
            status.NouveauLoaded = Directory.Exists(root.Resolve(HostPaths.SysModule + "/nouveau"));
            status.ChangesRecorded = BootEditLog.Read(root).Count > 0;
            var pending = BootIntent.Read(root);
            status.PendingChange = pending?.Describe();
            status.RegenerationPending = pending != null && pending.Phase == BootIntentPhase.Regenerate && pending.PendingCommands.Count > 0;
            status.RebootPending = boot != null && Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)) != null
                && ManagedKeys.Any(k => !new HashSet<string>(KernelArguments.EffectiveItems(configured, k), StringComparer.OrdinalIgnoreCase)
                    .SetEquals(KernelArguments.EffectiveItems(running, k)));
            return status;
        }

        private static IReadOnlyList<string> StubIds(IReadOnlyList<string> args) =>
            KernelArguments.EffectiveItems(args, KernelArguments.PciStubIds)
                .Concat(KernelArguments.EffectiveItems(args, KernelArguments.VfioPciIds))
                .Select(i => KernelArguments.NormalizeId(i) ?? i)
                .Distinct()
                .ToList();
    }
}
