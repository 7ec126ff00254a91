using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// Refuses a plan that takes a function the running host needs from it (<see cref="ErrorIds.HostCriticalDevice"/>,
    /// see <see cref="HostCriticalCheck"/>): Dismount-GpuHostDriver, and Add-GpuHostdev of a managed PCI hostdev
    /// (libvirt binds it to vfio-pci when the guest starts). -Force lifts it, with a warning naming the function.
    /// </summary>
    internal sealed class HostCriticalPlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            IReadOnlyList<PciAddress> taken;
            string change;
            switch (plan.Kind)
            {
                case ChangeKind.HostDriverDetach:
                    taken = plan.Devices;
                    change = "Detaching it from its host driver";
                    break;
                case ChangeKind.HostdevAttach:
                    taken = plan.Steps.OfType<HostdevStep>()
                        .Where(s => s.Request.Managed && s.Request.Source.Kind == HostdevKind.Pci)
                        .Select(s => s.Request.Source.Address!.Value).ToList();
                    change = "Attaching it with managed='yes' (libvirt binds it to vfio-pci when the guest starts)";
                    break;
                default:
                    return;
            }
            if (taken.Count == 0) return;
            HostCriticalCheck.Check(new PciInventory(plan.Host.Root), taken, change).AddTo(plan);
        }
    }
}
