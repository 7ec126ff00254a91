using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>Lists vGPUs: live mediated devices, mdevctl definitions that are not running, and SR-IOV vGPU functions.</summary>
    [Cmdlet(VerbsCommon.Get, "VgpuDevice")]
    [OutputType(typeof(VgpuDevice))]
    public sealed class GetVgpuDeviceCommand : VgpuCmdlet
    {
        private bool _problemsReported;

        /// <summary>UUIDs (mediated devices), with wildcards.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(MdevUuidCompleter))]
        public string[]? Uuid { get; set; }

        /// <summary>Only the vGPUs of these parents (PCI addresses in any form, or mdev parent names), with wildcards.</summary>
        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(VgpuParentCompleter))]
        public string[]? Parent { get; set; }

        /// <summary>
        /// The libvirt connection URI; with it, each device's Guests lists the guests whose definitions reference it.
        /// Piped objects bind it by their Connect property (null or empty: none).
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        public string? Connect { get; set; }

        protected override void ProcessRecord()
        {
            var devices = Vgpu.Devices();
            if (!_problemsReported)
            {
                _problemsReported = true;
                foreach (var problem in Vgpu.Definitions.Problems) WriteError(problem);
            }
            var uuids = Uuid?.Select(u => Wildcard(u, nameof(Uuid))).ToList();
            var parents = Parent?.Select(p => Wildcard(WildcardPattern.ContainsWildcardCharacters(p) ? p : VgpuInventory.NormalizeParent(p), nameof(Parent))).ToList();
            foreach (var device in devices)
            {
                if (uuids != null && (device.Uuid is null || !uuids.Any(p => p.IsMatch(device.Uuid)))) continue;
                if (parents != null && !parents.Any(p => p.IsMatch(device.Parent))) continue;
                GuestsAt(VirshConnection.Given(Connect))?.Fill(new[] { device });
                WriteObject(device);
            }
            if (Uuid != null)
            {
                foreach (var u in Uuid.Where(u => !WildcardPattern.ContainsWildcardCharacters(u) && !devices.Any(d => string.Equals(d.Uuid, u, System.StringComparison.OrdinalIgnoreCase))))
                {
                    WriteError(new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                        $"No mediated device {u} exists or is defined (under '{HostPaths.MdevDevices}' or '{MdevDefinitions.Directory}').", u));
                }
            }
        }
    }
}
