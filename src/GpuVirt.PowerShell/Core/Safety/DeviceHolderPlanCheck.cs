using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// Refuses a plan whose unbind the kernel would block on because a process holds the function
    /// (<see cref="ErrorIds.DeviceInUse"/>, see <see cref="DeviceHolderCheck"/>): Dismount-GpuHostDriver (the host
    /// driver's users too: DRM and NVIDIA nodes), Mount-GpuHostDriver (the VFIO group or device) and disabling SR-IOV
    /// virtual functions (each function's VFIO group or device: a guest that runs on it). -Force does not lift it: the
    /// write would wait in the kernel until the holder lets go.
    /// </summary>
    internal sealed class DeviceHolderPlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (plan.Kind == ChangeKind.SriovDisable)
            {
                foreach (var vf in plan.Devices) DeviceHolderCheck.CheckPci(plan.Host.Root, vf, hostDriverNodes: false, "Disabling it").AddTo(plan);
                return;
            }
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
}
