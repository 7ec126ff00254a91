using System;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Sets a guest's console up for its vGPU's output: display='on' on its mdev hostdevs, a VNC or SPICE graphics device
    /// and, with -NoEmulatedVideo, video model 'none'. Changes only those elements of the persistent definition.
    /// </summary>
    [Cmdlet(VerbsCommon.Set, "VgpuConsole", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(VgpuConsoleChange))]
    public sealed class SetVgpuConsoleCommand : HostVirshCmdlet
    {
        /// <summary>The guest (name, UUID or id).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        public string Domain { get; set; } = string.Empty;

        /// <summary>The console protocol: vnc (the default) or spice.</summary>
        [Parameter]
        [ValidateSet("vnc", "spice")]
        public string Graphics { get; set; } = "vnc";

        /// <summary>Replace the emulated video card with model 'none', so that the vGPU is the guest's only display.</summary>
        [Parameter]
        public SwitchParameter NoEmulatedVideo { get; set; }

        /// <summary>Only these mediated devices of the guest (by default, all of them).</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(MdevUuidCompleter))]
        public string[]? Uuid { get; set; }

        protected override void ProcessRecord()
        {
            try
            {
                var uuids = Uuid?.Select(MdevUuid.Parse).ToList();
                Virsh.CheckDomainName(Domain);
                var plan = new VgpuConsolePlanner(new ChangeHost(HostSystem, ConnectGiven), Virsh).Plan(Domain, Graphics, NoEmulatedVideo, uuids);
                if (!ShouldApply(plan)) return;
                WriteObject(Apply(plan));
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }
    }
}
