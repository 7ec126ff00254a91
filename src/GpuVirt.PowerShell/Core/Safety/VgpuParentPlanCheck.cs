using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
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
}
