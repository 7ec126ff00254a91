using System;
using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// What a guest's hostdevs point at on the host now: whether the device is there (<see cref="Hostdev.Present"/>),
    /// which function is (<see cref="Hostdev.Ids"/>), and what Add-GpuHostdev attached there, from the host's change
    /// journal (<see cref="Hostdev.AttachedIds"/>). A dangling hostdev (the card removed or moved, the vGPU not created)
    /// keeps the guest from starting; a changed one gives it another device than the one it was given.
    /// </summary>
    internal static class HostdevPresence
    {
        /// <summary>
        /// Looks each hostdev up under the inventory's root; <paramref name="journal"/> (the root's change records, null
        /// when they could not be read) gives what was attached.
        /// </summary>
        public static void Fill(IEnumerable<Hostdev> hostdevs, PciInventory inventory, IReadOnlyList<ChangeRecord>? journal)
        {
            VgpuInventory? vgpus = null;
            foreach (var hostdev in hostdevs)
            {
                hostdev.Ids = null;
                hostdev.Description = null;
                hostdev.FoundDevice = null;
                if (hostdev.Kind == HostdevKind.Pci && hostdev.PciAddress is PciAddress address)
                {
                    var device = inventory.Find(address);
                    hostdev.Present = device != null;
                    hostdev.FoundDevice = device;
                    hostdev.Ids = device?.Ids;
                    hostdev.Description = device?.Description;
                    hostdev.AttachedIds = journal is null ? null : AttachedIds(journal, hostdev.Domain, hostdev.Connect, address);
                }
                else if (hostdev.Uuid is Guid uuid)
                {
                    vgpus ??= new VgpuInventory(inventory.Root, inventory);
                    var vgpu = vgpus.FindLive(MdevUuid.Format(uuid));
                    hostdev.Present = vgpu != null;
                    if (vgpu is null) continue;
                    hostdev.Description = "vGPU " + (vgpu.TypeName ?? vgpu.TypeId) + " on " + vgpu.Parent;
                    hostdev.FoundDevice = vgpu.ParentPciAddress is PciAddress parent ? inventory.Find(parent) : null;
                }
            }
        }

        /// <summary>
        /// The <c>vendor:device</c> the last journaled change of the guest's hostdev at <paramref name="address"/>
        /// attached, through the same libvirt connection; null when that change was a detach, was undone, or is not in
        /// the journal.
        /// </summary>
        public static string? AttachedIds(IReadOnlyList<ChangeRecord> journal, string domain, string? connect, PciAddress address)
        {
            var text = address.ToString();
            foreach (var record in journal.OrderByDescending(r => r.Id))
            {
                if (!string.Equals(record.Connect ?? string.Empty, connect ?? string.Empty, StringComparison.Ordinal)) continue;
                var step = record.Inverse.FirstOrDefault(s =>
                    (s.Kind == InverseKind.DetachHostdev || s.Kind == InverseKind.AttachHostdev)
                    && string.Equals(s.Domain, domain, StringComparison.Ordinal)
                    && string.Equals(s.Address, text, StringComparison.Ordinal));
                if (step is null) continue;
                return step.Kind == InverseKind.DetachHostdev && !record.Undone ? step.Ids : null;
            }
            return null;
        }

        /// <summary>The journal's records, or null when the journal cannot be read (the hostdevs are shown without what was attached).</summary>
        public static IReadOnlyList<ChangeRecord>? TryReadJournal(HostRoot root, Action<string>? warn)
        {
            try
            {
                return new ChangeJournal(root).Read();
            }
            catch (GpuVirtException e)
            {
                warn?.Invoke("What was attached cannot be compared with what is there now: " + e.Message);
                return null;
            }
        }
    }
}
