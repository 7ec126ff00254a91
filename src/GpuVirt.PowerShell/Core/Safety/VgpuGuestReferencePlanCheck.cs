using System.IO;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
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
                GuestReferences.Check(guests.Of(new VgpuDevice { PciAddress = vf }), "The vGPU on virtual function " + vf, vf.ToString(), "Clearing its vGPU type").AddTo(plan);
            }
        }
    }
}
