using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>One hostdev to attach to or detach from a guest, with the XML that does it.</summary>
    internal sealed class HostdevRequest
    {
        /// <param name="xml">The element to attach or detach as it was read (a journaled hostdev put back); null: made from the source.</param>
        public HostdevRequest(string domain, HostdevSource source, bool managed = true, bool display = false, string? xml = null)
        {
            Domain = domain;
            Source = source;
            Managed = managed;
            Display = display;
            Xml = xml ?? HostdevXml.For(source, managed, display);
        }

        public string Domain { get; }
        public HostdevSource Source { get; }
        public bool Managed { get; }
        public bool Display { get; }
        public string Xml { get; }

        /// <summary>Set for a function added because it shares the slot or IOMMU group of the one asked for.</summary>
        public PciAddress? CompanionOf { get; set; }

        /// <summary>A PCI function's <c>vendor:device</c> when the request was made: the journal keeps what was attached.</summary>
        public string? Ids { get; set; }

        public string Describe() => (Source.Kind == HostdevKind.Pci ? "PCI hostdev " : "mdev hostdev ") + Source;

        /// <summary>
        /// The journal record of an attach (undone by detaching the request's XML) or a detach (undone by attaching
        /// <paramref name="elementXml"/>, the hostdev as the definition had it, else the request's XML).
        /// </summary>
        public ChangeRecord Journaled(string domain, DeviceChangeScope scope, bool attach, string? elementXml)
        {
            var scopeText = string.Join(" ", scope.ToFlags());
            var record = new ChangeRecord
            {
                Target = $"guest '{domain}'",
                Action = (attach ? "Attach " : "Detach ") + Describe() + " " + scopeText,
            };
            record.Details.Add(new ChangeDetail(Describe(), attach ? null : "attached", attach ? "attached" : null));
            record.Inverse.Add(new InverseStep
            {
                Kind = attach ? InverseKind.DetachHostdev : InverseKind.AttachHostdev,
                Description = $"{(attach ? "detach" : "attach")} {Describe()} {(attach ? "from" : "to")} guest '{domain}' (virsh {(attach ? "detach-device" : "attach-device")} {scopeText})",
                Domain = domain,
                Xml = attach ? Xml : elementXml ?? Xml,
                Scope = scope,
                Address = Source.Address?.ToString(),
                Ids = attach ? Ids : null,
                Uuid = Source.Uuid is System.Guid g ? MdevUuid.Format(g) : null,
            });
            return record;
        }
    }

    /// <summary>The functions that go with one being assigned.</summary>
    internal static class AssignmentCompanions
    {
        /// <summary>
        /// The other endpoints in the function's slot or IOMMU group: the HDMI audio function of a GPU. Every endpoint of
        /// a group must leave its host driver before any of them can be given to a guest. Bridge-class functions (PCI
        /// bridges and ports, host bridges such as 00:00.0 of class 0600, ISA/LPC bridges) are never among them: they
        /// stay with the host (Dismount-GpuHostDriver refuses them).
        /// </summary>
        /// <remarks>
        /// An SR-IOV virtual function shares its slot number with its PF and siblings but is a function of its own,
        /// isolated by the IOMMU like a separate device: between a VF and anything else only the IOMMU group counts.
        /// </remarks>
        public static IReadOnlyList<PciDevice> Of(PciInventory inventory, PciDevice device) =>
            inventory.Devices
                .Where(d => d.Address != device.Address && d.IsEndpoint && d.BaseClass != 0x06
                    && ((d.PciAddress.IsSameSlot(device.PciAddress) && !IsVirtualFunction(d) && !IsVirtualFunction(device))
                        || (device.IommuGroup.HasValue && d.IommuGroup == device.IommuGroup)))
                .ToList();

        private static bool IsVirtualFunction(PciDevice d) => d.PhysicalFunctionAddress.HasValue;

        /// <summary>
        /// Whether libvirt may manage a PCI function's host driver (<c>managed='yes'</c>): not for an NVIDIA SR-IOV vGPU
        /// virtual function, whose vGPU lives in the <c>nvidia</c> driver that has to keep it — libvirt would move it to
        /// vfio-pci and the guest would get no vGPU.
        /// </summary>
        public static bool MayManage(PciInventory inventory, PciAddress address) =>
            !System.IO.File.Exists(System.IO.Path.Combine(inventory.DeviceDirectory(address), VgpuInventory.CreatableVgpuTypes));
    }
}
