using System.IO;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core
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

    /// <summary>
    /// Warns about, and refuses without -Force, removing a vGPU a guest's definition (running or defined only) still
    /// references (<see cref="ErrorIds.DeviceReferencedByGuest"/>), and so disabling SR-IOV virtual functions a guest
    /// references: the guest would be left with a hostdev that does not work. The plan's
    /// <see cref="ChangePlan.ReadGuests"/> reads the guests (null: libvirt is not the host's to ask).
    /// </summary>
    internal sealed class VgpuGuestReferencePlanCheck : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if ((plan.Kind != ChangeKind.VgpuRemove && plan.Kind != ChangeKind.SriovDisable) || plan.ReadGuests is null) return;
            if (!(plan.ReadGuests() is GuestReferences guests)) return;
            if (plan.Kind == ChangeKind.SriovDisable)
            {
                foreach (var vf in plan.Devices)
                {
                    GuestReferences.Check(guests.Of(vf), "Virtual function " + vf, vf.ToString(), "Disabling it").AddTo(plan);
                }
                return;
            }
            foreach (var uuid in plan.Mdevs)
            {
                GuestReferences.Check(guests.Of(new VgpuDevice { Uuid = uuid }), "The mediated device " + uuid, uuid, "Removing it").AddTo(plan);
            }
            foreach (var vf in plan.Devices)
            {
                GuestReferences.Check(guests.Of(new VgpuDevice { Address = vf }), "The vGPU on virtual function " + vf, vf.ToString(), "Clearing its vGPU type").AddTo(plan);
            }
        }
    }
}
