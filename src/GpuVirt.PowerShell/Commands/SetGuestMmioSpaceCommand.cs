using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Mmio;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Gives a guest the 64-bit MMIO space its PCI hostdevs need: writes <c>&lt;pcihole64&gt;</c> on the root PCI controller
    /// and <c>&lt;maxphysaddr&gt;</c> in <c>&lt;cpu&gt;</c> when the definition lacks them, with <c>virsh define --validate</c>.
    /// </summary>
    [Cmdlet(VerbsCommon.Set, "GuestMmioSpace", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(GuestMmioSpace))]
    public sealed class SetGuestMmioSpaceCommand : HostVirshCmdlet
    {
        /// <summary>The guest (name, UUID or id).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string Domain { get; set; } = string.Empty;

        protected override void ProcessRecord()
        {
            try
            {
                var plan = new GuestMmioPlanner(new ChangeHost(HostSystem, ConnectGiven), Virsh, Inventory).Plan(Domain);
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
