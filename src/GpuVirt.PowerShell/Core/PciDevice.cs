using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GpuVirt.Core.Safety;

namespace GpuVirt.Core
{
    /// <summary>
    /// One PCI function as sysfs shows it. What users see (and ConvertTo-Json and Export-Clixml write) is flat: addresses
    /// are text in the kernel's form (<c>0000:02:00.0</c>); the core works with the typed members beside them.
    /// </summary>
    public class PciDevice : HostObject
    {
        /// <summary>The address in the kernel's form, <c>0000:02:00.0</c>: what <c>-Address</c> binds.</summary>
        public string Address => PciAddress.ToString();

        internal PciAddress PciAddress { get; set; }
        public ushort VendorId { get; internal set; }
        public ushort DeviceId { get; internal set; }
        public ushort? SubsystemVendorId { get; internal set; }
        public ushort? SubsystemDeviceId { get; internal set; }
        public byte? Revision { get; internal set; }

        /// <summary>The 24-bit class code: base class, subclass, programming interface (<c>0x030000</c>).</summary>
        public uint ClassCode { get; internal set; }

        public string? ClassName { get; internal set; }
        public string? VendorName { get; internal set; }
        public string? DeviceName { get; internal set; }
        public string? SubsystemName { get; internal set; }

        /// <summary>The bound driver, null when unbound.</summary>
        public string? Driver { get; internal set; }

        /// <summary>The driver_override, null when it reads <c>(null)</c> or is absent.</summary>
        public string? DriverOverride { get; internal set; }

        /// <summary>The IOMMU group number, null when the device has none (IOMMU off).</summary>
        public int? IommuGroup { get; internal set; }

        public bool IsBridge { get; internal set; }

        /// <summary>
        /// What the running host needs this function for (a mounted filesystem, swap, a routed network interface, the
        /// console), in words; empty when nothing. A change that would take it from the host is refused
        /// (<see cref="ErrorIds.HostCriticalDevice"/>) unless forced.
        /// </summary>
        public string HostCritical { get; internal set; } = string.Empty;

        /// <summary>The same, one entry per thing the host needs the function for.</summary>
        internal IReadOnlyList<HostDependency> Dependencies { get; set; } = System.Array.Empty<HostDependency>();

        /// <summary>What the host needs the function for, one entry each, in words (<c>filesystem / (xfs on /dev/sda2)</c>).</summary>
        public IReadOnlyList<string> HostDependencies => Dependencies.Select(d => d.Reason).ToList();

        /// <summary>The kinds of what the host needs it for, each once: <c>disk</c>, <c>swap</c>, <c>net</c>, <c>console</c>.</summary>
        public IReadOnlyList<string> HostNeeds => Dependencies.Select(d => d.ShortKind).Distinct().ToList();

        public bool IsHostCritical => HostCritical.Length > 0;

        /// <summary>
        /// The guests whose definitions (running or defined only) reference this function as a hostdev; filled when
        /// libvirt was asked (Get-PciDevice and Get-GpuDevice with -Connect), null when it was not.
        /// </summary>
        public IReadOnlyList<string>? Guests { get; internal set; }
        public bool IsBootVga { get; internal set; }
        public int? NumaNode { get; internal set; }
        public string? CurrentLinkSpeed { get; internal set; }
        public int? CurrentLinkWidth { get; internal set; }
        public string? MaxLinkSpeed { get; internal set; }
        public int? MaxLinkWidth { get; internal set; }

        /// <summary>For an SR-IOV virtual function: its physical function.</summary>
        public string? PhysicalFunction => PhysicalFunctionAddress?.ToString();

        internal PciAddress? PhysicalFunctionAddress { get; set; }

        /// <summary>For an SR-IOV physical function: its enabled virtual functions.</summary>
        public IReadOnlyList<string> VirtualFunctions => VirtualFunctionAddresses.Select(a => a.ToString()).ToList();

        internal IReadOnlyList<PciAddress> VirtualFunctionAddresses { get; set; } = System.Array.Empty<PciAddress>();

        public int? SriovTotalVfs { get; internal set; }

        /// <summary>The device's directory under /sys/devices, as a host path.</summary>
        public string SysfsPath { get; internal set; } = string.Empty;

        /// <summary>The same directory as the module reads it (under the host root).</summary>
        public string Directory { get; internal set; } = string.Empty;

        /// <summary>The parent bridge's address, null for a device on a root bus.</summary>
        public string? ParentBridge => ParentBridgeAddress?.ToString();

        internal PciAddress? ParentBridgeAddress { get; set; }

        /// <summary><c>vendor:device</c> in lower-case hex, as pci-stub.ids and lspci -nn write it.</summary>
        public string Ids => VendorId.ToString("x4", CultureInfo.InvariantCulture) + ":" + DeviceId.ToString("x4", CultureInfo.InvariantCulture);

        /// <summary>The base class and subclass as four hex digits (<c>0300</c>), as lspci -nn shows it.</summary>
        public string ClassId => (ClassCode >> 8).ToString("x4", CultureInfo.InvariantCulture);

        public byte BaseClass => (byte)(ClassCode >> 16);

        /// <summary>A display controller: base class 0x03 (VGA 0x0300, XGA 0x0301, 3D 0x0302, other 0x0380).</summary>
        public bool IsDisplay => BaseClass == 0x03;

        /// <summary>An endpoint in the IOMMU sense: not a bridge, root port or switch port.</summary>
        public bool IsEndpoint => !IsBridge;

        /// <summary>The description lspci -nn prints after the class: <c>NVIDIA Corporation GK106GL [Quadro K4000]</c>.</summary>
        public string Description
        {
            get { return VendorName is null ? "Device" : VendorName + " " + (DeviceName ?? "Device"); }
        }

        public override string ToString() => Address;
    }
}
