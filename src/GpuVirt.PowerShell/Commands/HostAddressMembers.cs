using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.HostReadiness;
using GpuVirt.Core.Mmio;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// The address lists and addresses of the module's objects as PowerShell shows them (GpuVirt.Types.ps1xml makes
    /// each a code property in place of the plain one): every address is the same text, with the host it was read from
    /// beside it (<c>Address</c>, <c>Root</c>, and <c>Connect</c> when the object was read through a libvirt connection),
    /// so <c>Get-IommuGroup -Root IMG 13 | ForEach-Object Endpoints | Dismount-GpuHostDriver</c> binds IMG's functions
    /// and not the running host's. The object's own properties stay plain text: ConvertTo-Json writes the lists flat,
    /// and the table views show the addresses.
    /// </summary>
    public static class HostAddressMembers
    {
        /// <summary>The addresses of a group's functions, bridges included.</summary>
        public static IReadOnlyList<PSObject>? IommuGroupDevices(PSObject instance) =>
            instance.BaseObject is IommuGroup g ? Carry(g.Devices, g) : null;

        /// <summary>The addresses of a group's endpoints.</summary>
        public static IReadOnlyList<PSObject>? IommuGroupEndpoints(PSObject instance) =>
            instance.BaseObject is IommuGroup g ? Carry(g.Endpoints, g) : null;

        /// <summary>The addresses of the endpoints that keep a group from being assigned.</summary>
        public static IReadOnlyList<PSObject>? IommuGroupBlockers(PSObject instance) =>
            instance.BaseObject is IommuGroup g ? Carry(g.Blockers, g) : null;

        /// <summary>The other functions of a GPU's slot.</summary>
        public static IReadOnlyList<PSObject>? GpuCompanions(PSObject instance) =>
            instance.BaseObject is GpuDevice d ? Carry(d.Companions, d) : null;

        /// <summary>A GPU's virtual functions that offer SR-IOV vGPU types.</summary>
        public static IReadOnlyList<PSObject>? GpuVgpuVirtualFunctions(PSObject instance) =>
            instance.BaseObject is GpuDevice d ? Carry(d.VgpuVirtualFunctions, d) : null;

        /// <summary>A physical function's enabled virtual functions.</summary>
        public static IReadOnlyList<PSObject>? PciVirtualFunctions(PSObject instance) =>
            instance.BaseObject is PciDevice d ? Carry(d.VirtualFunctions, d) : null;

        /// <summary>A virtual function's physical function.</summary>
        public static PSObject? PciPhysicalFunction(PSObject instance) =>
            instance.BaseObject is PciDevice d && d.PhysicalFunction is string a ? Carry(a, d) : null;

        /// <summary>The bridge a function sits behind.</summary>
        public static PSObject? PciParentBridge(PSObject instance) =>
            instance.BaseObject is PciDevice d && d.ParentBridge is string a ? Carry(a, d) : null;

        /// <summary>The parent device of a vGPU (the GPU, or the virtual function of an SR-IOV vGPU).</summary>
        public static PSObject? VgpuParent(PSObject instance) =>
            instance.BaseObject is VgpuDevice v && v.Parent.Length > 0 ? Carry(v.Parent, v) : null;

        /// <summary>The PCI functions a guest's MMIO space was sized for.</summary>
        public static IReadOnlyList<PSObject>? GuestMmioHostdevs(PSObject instance) =>
            instance.BaseObject is GuestMmioSpace m ? Carry(m.Hostdevs, m) : null;

        /// <summary>The GPU a per-GPU check of the doctor is about.</summary>
        public static PSObject? HostCheckDevice(PSObject instance) =>
            instance.BaseObject is GpuVirtHostCheck c && c.Device is string a ? Carry(a, c) : null;

        private static IReadOnlyList<PSObject> Carry(IReadOnlyList<string> addresses, HostObject owner)
        {
            var list = new List<PSObject>(addresses.Count);
            foreach (var address in addresses) list.Add(Carry(address, owner));
            return list;
        }

        /// <summary>
        /// The address as text that carries its host. A new string each time: PowerShell keeps the notes of a wrapped
        /// string with that string instance, and no other object may share them.
        /// </summary>
        private static PSObject Carry(string address, HostObject owner)
        {
            var item = new PSObject(new string(address.ToCharArray()));
            item.Properties.Add(new PSNoteProperty("Address", address));
            item.Properties.Add(new PSNoteProperty("Root", owner.Root));
            if (owner.Connect != null) item.Properties.Add(new PSNoteProperty("Connect", owner.Connect));
            return item;
        }
    }
}
