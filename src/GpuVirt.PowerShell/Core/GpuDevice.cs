using System;
using System.Collections.Generic;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>A display-class PCI function (base class 0x03) with what GPU assignment needs to know about it.</summary>
    public sealed class GpuDevice : PciDevice
    {
        /// <summary>The addresses of the other functions of the same slot (the HDMI audio function of a discrete GPU).</summary>
        public IReadOnlyList<string> Companions => CompanionDevices.Select(d => d.Address).ToList();

        internal IReadOnlyList<PciDevice> CompanionDevices { get; set; } = Array.Empty<PciDevice>();

        /// <summary>The device is a mediated-device parent (<c>mdev_supported_types</c> present): vGPU through mdev.</summary>
        public bool SupportsMdev { get; internal set; }

        /// <summary>Virtual functions that offer NVIDIA SR-IOV vGPU types (<c>nvidia/creatable_vgpu_types</c>).</summary>
        public IReadOnlyList<string> VgpuVirtualFunctions => VgpuVirtualFunctionAddresses.Select(a => a.ToString()).ToList();

        internal IReadOnlyList<PciAddress> VgpuVirtualFunctionAddresses { get; set; } = Array.Empty<PciAddress>();

        public bool SupportsSriovVgpu => VgpuVirtualFunctionAddresses.Count > 0;

        /// <summary>The kind of display controller from the subclass: VGA, XGA, 3D or Display.</summary>
        public string DisplayKind => ((ClassCode >> 8) & 0xff) switch
        {
            0x00 => "VGA",
            0x01 => "XGA",
            0x02 => "3D",
            _ => "Display",
        };
    }
}
