using System;
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
    [OutputType(typeof(void))]
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

        private Func<VgpuDevice, string?> Owners => VgpuManager.GuestOwners(new Virsh(Runner, VirshConnection.Given(Connect), StopToken));

        private Lazy<GuestReferences?>? _guests;

        /// <summary>The guests' references, read once when libvirt is the host's to ask (-Connect, or the live host with virsh).</summary>
        private GuestReferences? Guests =>
            (_guests ??= GuestReferences.OnFirstUse(new Core.Planning.ChangeHost(HostSystem, VirshConnection.Given(Connect)), () => new Virsh(Runner, VirshConnection.Given(Connect), StopToken), WriteVerbose)).Value;

        /// <summary>The refusal (or, with -Force, the warning) for a vGPU a guest's definition references.</summary>
        private CheckFindings Referenced(VgpuDevice device, string change) =>
            Guests is GuestReferences guests
                ? GuestReferences.Check(guests.Of(device), device.Uuid != null ? "The mediated device " + device.Uuid : "The vGPU on virtual function " + device.Address, device.ToString(), change)
                : new CheckFindings();

        protected override void ProcessRecord()
        {
            if (ParameterSetName == AddressSet) RemoveSriov(Address);
            else RemoveMdev(Uuid);
        }

        private void RemoveMdev(string text)
        {
            try
            {
                var uuid = VgpuManager.ParseUuid(text);
                var device = Vgpu.Devices().FirstOrDefault(d => d.Uuid == uuid)
                    ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                        $"No mediated device {uuid} exists or is defined (under '{HostPaths.MdevDevices}' or '{MdevDefinitions.Directory}').", uuid);
                var action = device.Active
                    ? (Persistent && device.DefinitionPath != null ? "Remove the mediated device and its definition " + device.DefinitionPath : "Remove the mediated device")
                    : "Remove the definition " + device.DefinitionPath;
                if (device.Active && Refused(DeviceHolderCheck.CheckVgpu(HostSystem, device, "Removing it"), force: false)) return;
                if (Refused(Referenced(device, "Removing it"), Force)) return;
                if (!ShouldProcess($"{uuid} ({device.TypeId} on {device.Parent})", action)) return;
                Manager.Remove(device, Persistent, Owners, StopToken);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }

        private void RemoveSriov(PciAddress vf)
        {
            try
            {
                var device = Vgpu.Devices().FirstOrDefault(d => d.Kind == VgpuKind.SriovVf && d.PciAddress == vf)
                    ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                        $"{vf} is not an SR-IOV virtual function with a vGPU type set or recorded in {SriovVgpuProfiles.ProfileFile}.", vf.ToString());
                var action = (device.Active ? "Clear the vGPU type" : "Nothing to clear") +
                    (Persistent && device.Persistent ? "; " + string.Join("; ", Vgpu.Profiles.InstallLines(adding: false)) : string.Empty);
                if (device.Active && Refused(DeviceHolderCheck.CheckVgpu(HostSystem, device, "Clearing its vGPU type"), force: false)) return;
                if (Refused(Referenced(device, "Clearing its vGPU type"), Force)) return;
                if (!ShouldProcess($"{vf} (type {device.TypeId} {device.TypeName})", action)) return;
                Manager.Remove(device, Persistent, Owners, StopToken);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }
    }
}
