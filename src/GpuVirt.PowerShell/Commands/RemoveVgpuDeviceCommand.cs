using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Removes vGPUs: writes <c>1</c> to a mediated device's <c>remove</c> (or <c>0</c> to an SR-IOV function's
    /// <c>nvidia/current_vgpu_type</c>); <c>-Persistent</c> also removes its mdevctl definition.
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "VgpuDevice", DefaultParameterSetName = UuidSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(VgpuDevice))]
    public sealed class RemoveVgpuDeviceCommand : VgpuCmdlet
    {
        private const string UuidSet = "Uuid";
        private const string AddressSet = "Address";

        // One value each, Address typed as the device's own PciAddress: a piped device has either a Uuid (mdev) or an
        // Address (SR-IOV), and only then does PowerShell pass over the other, null, property when it picks the set.

        /// <summary>A mediated device UUID; piped devices bind by Uuid.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = UuidSet)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(MdevUuidCompleter))]
        public string Uuid { get; set; } = string.Empty;

        /// <summary>An SR-IOV vGPU virtual function; piped SR-IOV devices bind by Address.</summary>
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = AddressSet)]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public PciAddress Address { get; set; }

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
                var device = ParameterSetName == AddressSet ? FindSriov(Address) : FindMdev(Uuid);
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

        private VgpuDevice FindMdev(string text)
        {
            var uuid = VgpuManager.ParseUuid(text);
            return Vgpu.Devices().FirstOrDefault(d => d.Uuid == uuid)
                ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                    $"No mediated device {uuid} exists or is defined (under '{HostPaths.MdevDevices}' or '{MdevDefinitions.Directory}').", uuid);
        }

        private VgpuDevice FindSriov(PciAddress vf) =>
            Vgpu.Devices().FirstOrDefault(d => d.Kind == VgpuKind.SriovVf && d.Address == vf)
                ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                    $"{vf} is not an SR-IOV virtual function with a vGPU type set or recorded in {SriovVgpuProfiles.ProfileFile}.", vf.ToString());
    }
}
