using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Removes vGPUs: writes <c>1</c> to a mediated device's <c>remove</c> (or <c>0</c> to an SR-IOV function's
    /// <c>nvidia/current_vgpu_type</c>); <c>-Persistent</c> also removes its mdevctl definition.
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "VgpuDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(VgpuDevice))]
    public sealed class RemoveVgpuDeviceCommand : VgpuCmdlet
    {
        // One parameter set: a piped device has either a Uuid (mdev) or an Address (SR-IOV) and the other null, so both
        // accept null and the record is told apart here (two mandatory sets would fail the record on the null one).

        /// <summary>A mediated device UUID; piped devices bind by Uuid.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [ArgumentCompleter(typeof(MdevUuidCompleter))]
        public string? Uuid { get; set; }

        /// <summary>An SR-IOV vGPU virtual function; piped SR-IOV devices bind by Address.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string? Address { get; set; }

        /// <summary>Also remove the mdevctl definition, so that the device does not come back at boot.</summary>
        [Parameter]
        public SwitchParameter Persistent { get; set; }

        /// <summary>
        /// The libvirt connection used to name the guest that holds a busy device (qemu:///system by default); piped vGPU
        /// devices bind it by their Connect property (null or empty: the default).
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        public string? Connect { get; set; }

        /// <summary>Removes the vGPU even when a guest's definition still references it, with a warning.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>Writes each removed vGPU (as it was before it was removed) to the pipeline.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>The journal records the connection: the undo checks the same guests.</summary>
        private protected override string? ConnectUri => VirshConnection.Given(Connect);

        protected override void ProcessRecord()
        {
            try
            {
                var device = Selected();
                var plan = Planner(Connect).PlanRemove(device, Persistent, Force);
                if (!ShouldApply(plan)) return;
                var removed = Apply(plan);
                if (PassThru) WriteObject(removed);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }

        private VgpuDevice Selected()
        {
            var uuid = string.IsNullOrEmpty(Uuid) ? null : Uuid;
            var address = string.IsNullOrEmpty(Address) ? null : Address;
            if (uuid != null && address != null)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceAmbiguous, ErrorKind.InvalidArgument,
                    $"Both a UUID ({uuid}) and an address ({address}) were given: a vGPU is a mediated device (-Uuid) or an SR-IOV virtual function (-Address), not both. Nothing was removed.", uuid);
            }
            if (uuid != null) return FindMdev(uuid);
            if (address != null) return FindSriov(PciAddress.Parse(address));
            throw new GpuVirtException(ErrorIds.VgpuDeviceNotSpecified, ErrorKind.InvalidArgument,
                "No vGPU was named: give a mediated device's -Uuid or an SR-IOV virtual function's -Address, or pipe the devices of Get-VgpuDevice. Nothing was removed.", null);
        }

        private VgpuDevice FindMdev(string text)
        {
            var uuid = VgpuManager.ParseUuid(text);
            return Vgpu.Devices().FirstOrDefault(d => d.Uuid == uuid)
                ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                    $"No mediated device {uuid} exists or is defined (under '{HostPaths.MdevDevices}' or '{MdevDefinitions.Directory}').", uuid);
        }

        private VgpuDevice FindSriov(PciAddress vf) =>
            Vgpu.Devices().FirstOrDefault(d => d.Kind == VgpuKind.SriovVf && d.PciAddress == vf)
                ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                    $"{vf} is not an SR-IOV virtual function with a vGPU type set or recorded in {SriovVgpuProfiles.ProfileFile}.", vf.ToString());
    }
}
