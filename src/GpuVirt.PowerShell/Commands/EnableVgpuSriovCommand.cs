using System;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Enables the SR-IOV virtual functions of NVIDIA GPUs (vGPU 17 and later), on which vGPUs are made: NVIDIA's
    /// <c>sriov-manage -e &lt;PF&gt;</c> when it is installed, else the count written to <c>sriov_numvfs</c>. Planned by
    /// <see cref="SriovPlanner"/>, applied under the host lock and journaled (Undo-GpuVirtChange disables them again, and checks
    /// the guests of the connection the change was made with, <c>-Connect</c>, for references to the functions).
    /// </summary>
    [Cmdlet(VerbsLifecycle.Enable, "VgpuSriov", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(PciDevice))]
    public sealed class EnableVgpuSriovCommand : HostVirshCmdlet
    {
        /// <summary>The GPUs' physical functions; piped GPUs bind by their Address property.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string[] Address { get; set; } = Array.Empty<string>();

        /// <summary>How many virtual functions (all, sriov_totalvfs, when left out); given, sriov_numvfs is written directly.</summary>
        [Parameter]
        [ValidateRange(1, 65535)]
        public int Count { get; set; }

        /// <summary>How long to wait for the driver to show the functions, in seconds.</summary>
        [Parameter]
        [ValidateRange(1, 3600)]
        public int TimeoutSeconds { get; set; } = (int)SriovPlanner.DefaultTimeout.TotalSeconds;

        protected override void ProcessRecord()
        {
            var planner = new SriovPlanner(new ChangeHost(HostSystem, ConnectGiven), Runner, () => Virsh, WriteVerbose) { Timeout = TimeSpan.FromSeconds(TimeoutSeconds) };
            foreach (var text in Address)
            {
                if (!PciAddress.TryParse(text, out var pf))
                {
                    WriteError(PciAddress.NotAnAddress(text));
                    continue;
                }
                try
                {
                    var plan = planner.PlanEnable(pf, Given(nameof(Count)) ? Count : (int?)null);
                    if (ShouldApply(plan)) WriteObject(Apply(plan));
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }
    }
}
