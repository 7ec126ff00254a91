using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Safety;

namespace GpuVirt.Core
{
    /// <summary>Why one function keeps its IOMMU group from being assigned.</summary>
    internal sealed class IommuGroupBlocker
    {
        public IommuGroupBlocker(PciAddress address, string? driver, string reason, bool vgpuFunction = false)
        {
            Address = address;
            Driver = driver;
            Reason = reason;
            VgpuFunction = vgpuFunction;
        }

        public PciAddress Address { get; }
        public string? Driver { get; }
        public string Reason { get; }

        /// <summary>An NVIDIA SR-IOV vGPU function on nvidia with no vGPU type: it needs a type, not another driver.</summary>
        public bool VgpuFunction { get; }

        public override string ToString() => Address + ": " + Reason;
    }

    /// <summary>An IOMMU group: the unit of isolation. Every endpoint in it must leave its host driver before any is assigned.</summary>
    public sealed class IommuGroup : HostObject
    {
        public int Number { get; internal set; }

        /// <summary><c>DMA</c>, <c>DMA-FQ</c>, <c>identity</c>, <c>unknown</c> (mdev groups), or null when the kernel does not say.</summary>
        public string? Type { get; internal set; }

        /// <summary>The addresses of the group's PCI functions, bridges included, sorted.</summary>
        public IReadOnlyList<string> Devices => DeviceList.Select(d => d.Address).ToList();

        /// <summary>The PCI functions of the group, bridges included, sorted by address.</summary>
        internal IReadOnlyList<PciDevice> DeviceList { get; set; } = Array.Empty<PciDevice>();

        /// <summary>Each PCI function with its driver, as the table shows it: <c>0000:02:00.0 vfio-pci</c>, <c>0000:00:01.0 (bridge) pcieport</c>.</summary>
        public IReadOnlyList<string> Members => DeviceList
            .Select(d => d.Address + " " + (d.IsBridge ? "(bridge) " : string.Empty) + (d.Driver ?? "-"))
            .ToList();

        /// <summary>Members that are not PCI functions (mediated devices in their own group).</summary>
        public IReadOnlyList<string> OtherMembers { get; internal set; } = Array.Empty<string>();

        /// <summary>The addresses of the endpoints (the functions that are not bridges).</summary>
        public IReadOnlyList<string> Endpoints => EndpointDevices.Select(d => d.Address).ToList();

        internal IReadOnlyList<PciDevice> EndpointDevices => DeviceList.Where(d => d.IsEndpoint).ToList();

        /// <summary>
        /// True when every endpoint is bound to vfio-pci or pci-stub, or to no driver, or is an NVIDIA SR-IOV vGPU function
        /// on nvidia (NVIDIA's vendor-specific VFIO) that runs a vGPU type.
        /// </summary>
        public bool IsViable => BlockerList.Count == 0;

        /// <summary>The addresses of the endpoints that keep the group from being assigned.</summary>
        public IReadOnlyList<string> Blockers => BlockerList.Select(b => b.Address.ToString()).ToList();

        /// <summary>Why each of <see cref="Blockers"/> keeps the group from being assigned: <c>0000:02:00.1: bound to host driver 'snd_hda_intel'; ...</c>.</summary>
        public IReadOnlyList<string> BlockerReasons => BlockerList.Select(b => b.ToString()).ToList();

        internal IReadOnlyList<IommuGroupBlocker> BlockerList { get; set; } = Array.Empty<IommuGroupBlocker>();

        /// <summary>The members the running host needs, and why (<c>0000:00:1f.2: filesystem / ...</c>); assigning the group would take them from the host.</summary>
        public IReadOnlyList<string> HostCritical => HostDependencies.Select(d => d.ToString()).ToList();

        internal IReadOnlyList<HostDependency> HostDependencies { get; set; } = Array.Empty<HostDependency>();

        public override string ToString() => Number.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Reads <c>/sys/kernel/iommu_groups</c> under a host root.</summary>
    internal static class IommuGroups
    {
        /// <summary>True when the kernel has IOMMU groups (the IOMMU is on).</summary>
        public static bool IsEnabled(HostRoot root) => GroupNumbers(root).Count > 0;

        public static IReadOnlyList<int> GroupNumbers(HostRoot root)
        {
            var names = Sysfs.TryListNames(root.Resolve(HostPaths.IommuGroups));
            if (names is null) return Array.Empty<int>();
            var numbers = new List<int>(names.Count);
            foreach (var name in names)
            {
                if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) numbers.Add(n);
            }
            numbers.Sort();
            return numbers;
        }

        /// <summary>Every group, or an <see cref="ErrorIds.IommuNotEnabled"/> error when there are none.</summary>
        public static IReadOnlyList<IommuGroup> ReadAll(PciInventory inventory)
        {
            var numbers = GroupNumbers(inventory.Root);
            if (numbers.Count == 0) throw NotEnabled(inventory.Root);
            return numbers.Select(n => ReadGroup(inventory, n)).ToList();
        }

        /// <summary>One group; null when it does not exist.</summary>
        public static IommuGroup? TryRead(PciInventory inventory, int number)
        {
            var dir = Path.Combine(inventory.Root.Resolve(HostPaths.IommuGroups), number.ToString(CultureInfo.InvariantCulture));
            return Directory.Exists(dir) ? ReadGroup(inventory, number) : null;
        }

        public static GpuVirtException NotEnabled(HostRoot root) =>
            new GpuVirtException(ErrorIds.IommuNotEnabled, ErrorKind.NotEnabled,
                $"The IOMMU is not enabled on this host: '{root.Resolve(HostPaths.IommuGroups)}' has no groups. " +
                "Run Enable-IommuBoot, then reboot the host.", root.Directory);

        private static IommuGroup ReadGroup(PciInventory inventory, int number)
        {
            var dir = Path.Combine(inventory.Root.Resolve(HostPaths.IommuGroups), number.ToString(CultureInfo.InvariantCulture));
            var devices = new List<PciDevice>();
            var others = new List<string>();
            // Every member is a link: listed without a stat for each.
            var names = Sysfs.TryListNames(Path.Combine(dir, "devices"));
            if (names != null)
            {
                foreach (var name in names)
                {
                    if (PciAddress.TryParse(name, out var address) && inventory.Find(address) is PciDevice device)
                        devices.Add(device);
                    else
                        others.Add(name);
                }
            }
            devices.Sort((a, b) => a.PciAddress.CompareTo(b.PciAddress));
            others.Sort(StringComparer.Ordinal);
            var blockers = new List<IommuGroupBlocker>();
            foreach (var d in devices.Where(d => d.IsEndpoint && !PciInventory.IsPassthroughDriver(d.Driver)))
            {
                // An NVIDIA SR-IOV vGPU function stays on nvidia, NVIDIA's vendor-specific VFIO: with a vGPU type set it is
                // where a guest takes it (managed='no'); vfio-pci would lose the vGPU.
                if (Vgpu.VgpuInventory.SriovVgpuTypeOf(inventory, d) is int vgpuType)
                {
                    if (vgpuType == 0)
                    {
                        blockers.Add(new IommuGroupBlocker(d.PciAddress, d.Driver,
                            "a vGPU virtual function on nvidia with no vGPU type set; give it one with New-VgpuDevice (it stays on nvidia: vfio-pci would lose the vGPU)",
                            vgpuFunction: true));
                    }
                    continue;
                }
                blockers.Add(new IommuGroupBlocker(d.PciAddress, d.Driver,
                    $"bound to host driver '{d.Driver}'; it must be bound to vfio-pci or pci-stub, or to no driver"));
            }
            return new IommuGroup
            {
                Root = inventory.Root.Directory,
                Number = number,
                Type = Sysfs.TryReadText(Path.Combine(dir, "type")),
                DeviceList = devices,
                OtherMembers = others,
                BlockerList = blockers,
                HostDependencies = devices.SelectMany(d => inventory.HostCritical.For(d.PciAddress)).ToList(),
            };
        }
    }
}
