using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;

namespace GpuVirt.Commands
{
    /// <summary>Removes the blacklist Disable-NouveauDriver wrote and regenerates the initramfs.</summary>
    [Cmdlet(VerbsLifecycle.Enable, "NouveauDriver", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(BootChange))]
    public sealed class EnableNouveauDriverCommand : NouveauDriverCommand
    {
        protected override void EndProcessing() => ForEachHost(() =>
        {
            try
            {
                Carry(NouveauBlacklist.PlanEnable(HostSystem, Name, AllKernels, Tool), "Remove the nouveau blacklist and regenerate the initramfs?");
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        });
    }
}
