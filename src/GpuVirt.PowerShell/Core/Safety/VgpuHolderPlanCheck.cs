using System.IO;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// Refuses removing a vGPU (Remove-VgpuDevice, and the undo of a create) while a process holds it: a mediated
    /// device's VFIO group or device node, or for an SR-IOV vGPU its virtual function's
    /// (<see cref="ErrorIds.VgpuDeviceBusy"/>, naming pid, command and guest; see <see cref="DeviceHolderCheck.CheckVgpu"/>).
    /// Only a device that is live is looked at: removing a definition writes nothing the kernel waits on. -Force does
    /// not lift it: the write would wait in the kernel until the holder lets go.
    /// </summary>
    internal sealed class VgpuHolderPlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (plan.Kind != ChangeKind.VgpuRemove) return;
            var vgpu = new VgpuInventory(plan.Host.Root);
            foreach (var uuid in plan.Mdevs)
            {
                if (!Directory.Exists(plan.Host.Root.Resolve(HostPaths.MdevDevices + "/" + uuid))) continue;
                var device = vgpu.FindLive(uuid) ?? new VgpuDevice { Uuid = uuid };
                DeviceHolderCheck.CheckVgpu(plan.Host.Root, device, "Removing it").AddTo(plan);
            }
            foreach (var vf in plan.Devices)
            {
                if (vgpu.FindSriov(vf) is VgpuDevice device) DeviceHolderCheck.CheckVgpu(plan.Host.Root, device, "Clearing its vGPU type").AddTo(plan);
            }
        }
    }
}
