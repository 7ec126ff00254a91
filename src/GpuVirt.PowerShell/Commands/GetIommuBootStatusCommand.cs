using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;

namespace GpuVirt.Commands
{
    /// <summary>Compares the configured kernel arguments with the running kernel's: IOMMU, stub ids, nouveau, reboot pending.</summary>
    [Cmdlet(VerbsCommon.Get, "IommuBootStatus")]
    [OutputType(typeof(IommuBootStatus))]
    public sealed class GetIommuBootStatusCommand : HostCmdlet
    {
        /// <summary>The boot loader family; detected under the root when not given.</summary>
        [Parameter]
        public BootLoaderFamily BootLoader { get; set; }

        protected override void EndProcessing() => ForEachHost(() =>
        {
            try
            {
                WriteObject(IommuBootStatus.Read(HostSystem, Inventory, Given(nameof(BootLoader)) ? BootLoader : (BootLoaderFamily?)null));
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        });
    }
}
