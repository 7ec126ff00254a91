using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Mmio;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Shows what a guest's PCI hostdevs need of its 64-bit MMIO space (from their BARs in sysfs: sizes, alignment,
    /// headroom) and the vCPU physical address bits that reach it, against the guest's persistent definition.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "GuestMmioSpace")]
    [OutputType(typeof(GuestMmioSpace))]
    public sealed class GetGuestMmioSpaceCommand : HostVirshCmdlet
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
                var space = GuestMmio.Read(Virsh, Domain, Inventory);
                foreach (var item in space.NotSized) WriteWarning($"Guest '{space.Domain}': not counted: {item}.");
                WriteObject(space);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }
    }
}
