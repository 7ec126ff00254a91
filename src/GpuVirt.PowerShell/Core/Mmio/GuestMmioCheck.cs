using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core.Mmio
{
    /// <summary>
    /// Warns, pointing at Set-GuestMmioSpace, when a guest's 64-bit MMIO space (its persistent definition's
    /// <c>&lt;pcihole64&gt;</c> and <c>&lt;maxphysaddr&gt;</c>) will not hold the BARs of its PCI hostdevs with the
    /// functions of the command added. Of the command's plans, the last one whose function has a 64-bit BAR says it,
    /// once, with what all of them need.
    /// </summary>
    internal sealed class GuestMmioCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (plan.Kind != ChangeKind.HostdevAttach || plan.Guest is null || plan.Guest.Adding.Kind != HostdevKind.Pci) return;
            var guest = plan.Guest;
            var definition = guest.Definitions.Persistent;
            if (definition is null) return;
            static IEnumerable<PciAddress> Pci(IEnumerable<HostdevSource> sources) => sources.Where(s => s.Kind == HostdevKind.Pci).Select(s => s.Address!.Value);
            var adding = guest.Adding.Address!.Value;
            var later = Pci(guest.AttachedAfter).ToList();
            GuestMmioSpace space;
            try
            {
                space = GuestMmio.Evaluate(definition.Xml, guest.Inventory, Pci(guest.AttachedBefore).Concat(new[] { adding }).Concat(later));
            }
            catch (GpuVirtException)
            {
                // A definition whose MMIO parts cannot be read leaves the space unjudged here; Get-GuestMmioSpace says why.
                return;
            }
            if (space.Fits || !space.Windows.Any(w => w.DeviceAddress == adding) || space.Windows.Any(w => later.Contains(w.DeviceAddress))) return;
            plan.Warnings.Add($"Guest '{guest.Domain}' will not give its hostdevs the 64-bit MMIO space they need: " + string.Join("; ", space.Missing) +
                $". Run Set-GuestMmioSpace -Domain '{guest.Domain}' to size it, or the GPUs may not work in the guest.");
        }
    }
}
