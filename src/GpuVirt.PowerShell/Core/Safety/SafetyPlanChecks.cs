using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core
{
    /// <summary>
    /// Refuses a plan that would unbind the driver of a vGPU parent with live vGPUs
    /// (<see cref="ErrorIds.VgpuParentInUse"/>, see <see cref="VgpuParentCheck"/>): Dismount-GpuHostDriver.
    /// -Force does not lift it.
    /// </summary>
    internal sealed class VgpuParentPlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (plan.Kind != ChangeKind.HostDriverDetach || plan.Devices.Count == 0) return;
            var vgpu = new VgpuInventory(plan.Host.Root);
            foreach (var address in plan.Devices) VgpuParentCheck.Check(vgpu, address).AddTo(plan);
        }
    }

    /// <summary>
    /// Refuses a plan whose unbind the kernel would block on because a process holds the function
    /// (<see cref="ErrorIds.DeviceInUse"/>, see <see cref="DeviceHolderCheck"/>): Dismount-GpuHostDriver (the host
    /// driver's users too: DRM and NVIDIA nodes) and Mount-GpuHostDriver (the VFIO group or device). -Force does not
    /// lift it: the write would wait in the kernel until the holder lets go.
    /// </summary>
    internal sealed class DeviceHolderPlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (plan.Kind != ChangeKind.HostDriverDetach && plan.Kind != ChangeKind.HostDriverReattach) return;
            var binding = new HostDriverBinding(plan.Host.Root);
            foreach (var address in plan.Devices)
            {
                var bound = binding.CurrentDriver(address);
                if (bound is null) continue;   // nothing is unbound, nothing waits
                DeviceHolderCheck.CheckPci(plan.Host.Root, address, hostDriverNodes: plan.Kind == ChangeKind.HostDriverDetach,
                    $"Unbinding it from {bound}").AddTo(plan);
            }
        }
    }

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
