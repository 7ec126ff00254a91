using System;
using System.Collections.Generic;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>
    /// One vGPU: a mediated device (live under <c>/sys/bus/mdev/devices/&lt;uuid&gt;</c>, defined in
    /// <c>/etc/mdevctl.d/&lt;parent&gt;/&lt;uuid&gt;</c>, or both) or an NVIDIA SR-IOV virtual function with a vGPU type set.
    /// Its <c>Uuid</c> (mdev) or <c>Address</c> (SR-IOV VF) is what a guest's hostdev names.
    /// </summary>
    public sealed class VgpuDevice : HostObject
    {
        /// <summary>The mediated device's UUID; null for an SR-IOV vGPU, which a guest takes by its VF address.</summary>
        public string? Uuid { get; internal set; }

        /// <summary>
        /// The guests whose definitions (running or defined only) reference this vGPU; filled when libvirt was asked
        /// (Get-VgpuDevice with -Connect), null when it was not.
        /// </summary>
        public IReadOnlyList<string>? Guests { get; internal set; }

        /// <summary>SR-IOV: the virtual function that carries the vGPU, in the kernel's form; null for a mediated device.</summary>
        public string? Address => PciAddress?.ToString();

        internal PciAddress? PciAddress { get; set; }

        /// <summary>The parent device as named under <c>/sys/class/mdev_bus</c>; for SR-IOV the physical function.</summary>
        public string Parent { get; internal set; } = string.Empty;

        public string? ParentAddress => ParentPciAddress?.ToString();

        internal PciAddress? ParentPciAddress { get; set; }

        public string TypeId { get; internal set; } = string.Empty;

        public string? TypeName { get; internal set; }

        /// <summary>The device's IOMMU group (mdev devices get their own), null when stopped or unknown.</summary>
        public int? IommuGroup { get; internal set; }

        /// <summary>The device exists now (created in sysfs).</summary>
        public bool Active { get; internal set; }

        /// <summary>A definition in <c>/etc/mdevctl.d</c> brings the device back at boot (with <c>start: auto</c>).</summary>
        public bool Persistent { get; internal set; }

        /// <summary>The definition's <c>start</c>: <c>auto</c> or <c>manual</c>; null when not defined.</summary>
        public string? StartMode { get; internal set; }

        public VgpuKind Kind { get; internal set; }

        /// <summary>
        /// The definition's mdev attributes (mdevctl's <c>attrs</c>), in the order they are written, each <c>name=value</c>;
        /// a name may repeat (vfio_ap's <c>assign_adapter</c>). Empty when the device has no definition or none in it.
        /// </summary>
        public IReadOnlyList<string> Attributes { get; internal set; } = Array.Empty<string>();

        /// <summary>The definition file as a host path, null when not defined.</summary>
        public string? DefinitionPath { get; internal set; }

        /// <summary>The live device directory as a host path, null when not active.</summary>
        public string? SysfsPath { get; internal set; }

        /// <summary>The series letter of an NVIDIA type name (Q, A, B, C).</summary>
        public string? Series => VgpuType.ParseSeries(TypeName);

        public override string ToString() => Uuid ?? Address ?? string.Empty;

        internal static string NormalizeUuid(string uuid) => Guid.Parse(uuid).ToString("D");
    }
}
