using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// Refuses a plan that would unbind the driver of a vGPU parent with live vGPUs
    /// (<see cref="ErrorIds.VgpuParentInUse"/>, see <see cref="VgpuParentCheck"/>): Dismount-GpuHostDriver, and
    /// disabling SR-IOV virtual functions that carry vGPUs (the undo of Enable-VgpuSriov; the plan's devices are the
    /// functions, checked per physical function). -Force does not lift it.
    /// </summary>
    internal sealed class VgpuParentPlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if ((plan.Kind != ChangeKind.HostDriverDetach && plan.Kind != ChangeKind.SriovDisable) || plan.Devices.Count == 0) return;
            var vgpu = new VgpuInventory(plan.Host.Root);
            if (plan.Kind == ChangeKind.SriovDisable)
            {
                var pfs = plan.Devices.Select(vf => vgpu.Pci.Find(vf)?.PhysicalFunctionAddress ?? vf).Distinct();
                foreach (var pf in pfs) VgpuParentCheck.Check(vgpu, pf, "Disabling its virtual functions").AddTo(plan);
                return;
            }
            foreach (var address in plan.Devices) VgpuParentCheck.Check(vgpu, address).AddTo(plan);
        }
    }
}
