using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core
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
