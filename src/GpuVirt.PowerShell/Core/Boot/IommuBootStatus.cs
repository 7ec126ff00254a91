using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>A device held by a stub driver right now.</summary>
    public sealed class StubbedDevice
    {
        public StubbedDevice(PciAddress address, string ids, string driver)
        {
            Address = address;
            Ids = ids;
            Driver = driver;
        }

        public PciAddress Address { get; }
        public string Ids { get; }

        /// <summary><c>pci-stub</c> or <c>vfio-pci</c>.</summary>
        public string Driver { get; }

        public override string ToString() => Address + " " + Ids + " " + Driver;
    }

    /// <summary>What the boot configuration asks for, next to what the running kernel has.</summary>
    public sealed class IommuBootStatus
    {
        public BootLoaderFamily? BootLoader { get; internal set; }

        /// <summary>The host path of the file that holds the kernel arguments (null when no boot loader was found).</summary>
        public string? ConfigFile { get; internal set; }

        public CpuVendor? CpuVendor { get; internal set; }

        /// <summary>The IOMMU, stub and blacklist arguments in the configuration file.</summary>
        public IReadOnlyList<string> ConfiguredArguments { get; internal set; } = Array.Empty<string>();

        /// <summary>The same arguments in <c>/proc/cmdline</c>.</summary>
        public IReadOnlyList<string> RunningArguments { get; internal set; } = Array.Empty<string>();

        /// <summary>The configuration turns the IOMMU on (Intel: <c>intel_iommu=on</c>; AMD: on unless turned off) and nothing turns it off.</summary>
        public bool IommuConfigured { get; internal set; }

        /// <summary>The kernel has IOMMU groups now.</summary>
        public bool IommuActive { get; internal set; }

        /// <summary><c>iommu=pt</c> is configured.</summary>
        public bool PassthroughConfigured { get; internal set; }

        /// <summary>Ids in <c>pci-stub.ids</c> and <c>vfio-pci.ids</c> of the configuration.</summary>
        public IReadOnlyList<string> StubIdsConfigured { get; internal set; } = Array.Empty<string>();

        /// <summary>Ids in <c>pci-stub.ids</c> and <c>vfio-pci.ids</c> of the running kernel.</summary>
        public IReadOnlyList<string> StubIdsActive { get; internal set; } = Array.Empty<string>();

        /// <summary>Devices bound to pci-stub or vfio-pci now.</summary>
        public IReadOnlyList<StubbedDevice> StubbedDevices { get; internal set; } = Array.Empty<StubbedDevice>();

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
        public static IommuBootStatus Read(HostRoot root, PciInventory inventory, BootLoaderFamily? family = null)
        {
            var status = new IommuBootStatus { CpuVendor = CpuInfo.TryReadVendor(root) };
            BootConfiguration? boot = null;
            try
            {
                boot = BootConfiguration.Detect(root, family);
            }
            catch (GpuVirtException e) when (family is null && e.ErrorId == ErrorIds.BootLoaderNotDetected)
            {
            }

            var configured = new List<string>();
            if (boot != null)
            {
                status.BootLoader = boot.Family;
                status.ConfigFile = boot.File;
                var full = root.Resolve(boot.File);
                if (File.Exists(full))
                {
                    configured = boot.Parse(HostFiles.ReadText(full, boot.File)).Words.Where(w => !w.IsOpaque).Select(w => w.Text).ToList();
                }
            }
            var running = KernelArguments.Split(Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)));

            bool Managed(string a) => ManagedKeys.Any(k => KernelArguments.SameKey(KernelArguments.KeyOf(a), k));
            status.ConfiguredArguments = configured.Where(Managed).ToList();
            status.RunningArguments = running.Where(Managed).ToList();

            var iommuOff = KernelArguments.ItemsFor(configured, KernelArguments.Iommu).Contains("off");
            status.IommuConfigured = !iommuOff && (status.CpuVendor == Core.CpuVendor.Amd
                ? !KernelArguments.ItemsFor(configured, KernelArguments.AmdIommu).Contains("off")
                : KernelArguments.ItemsFor(configured, KernelArguments.IntelIommu).Contains("on") && !KernelArguments.ItemsFor(configured, KernelArguments.IntelIommu).Contains("off"));
            status.PassthroughConfigured = KernelArguments.ItemsFor(configured, KernelArguments.Iommu).Contains("pt");
            status.IommuActive = IommuGroups.IsEnabled(root);
            status.StubIdsConfigured = StubIds(configured);
            status.StubIdsActive = StubIds(running);
            status.StubbedDevices = inventory.Devices
                .Where(d => d.Driver == "pci-stub" || d.Driver == "vfio-pci")
                .Select(d => new StubbedDevice(d.Address, d.Ids, d.Driver!))
                .ToList();
            status.NouveauBlacklisted = NouveauBlacklist.FindBlacklist(root) != null
                || KernelArguments.ItemsFor(configured, KernelArguments.ModprobeBlacklist).Contains(KernelArguments.Nouveau);
            status.NouveauLoaded = Directory.Exists(root.Resolve(HostPaths.SysModule + "/nouveau"));
            status.ChangesRecorded = BootEditLog.Read(root).Count > 0;
            status.RebootPending = boot != null && Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)) != null
                && ManagedKeys.Any(k => !new HashSet<string>(KernelArguments.ItemsFor(configured, k), StringComparer.OrdinalIgnoreCase)
                    .SetEquals(KernelArguments.ItemsFor(running, k)));
            return status;
        }

        private static IReadOnlyList<string> StubIds(IReadOnlyList<string> args) =>
            KernelArguments.ItemsFor(args, KernelArguments.PciStubIds)
                .Concat(KernelArguments.ItemsFor(args, KernelArguments.VfioPciIds))
                .Select(i => KernelArguments.NormalizeId(i) ?? i)
                .Distinct()
                .ToList();
    }
}
