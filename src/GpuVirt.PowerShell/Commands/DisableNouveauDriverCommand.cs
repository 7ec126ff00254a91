using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;

namespace GpuVirt.Commands
{
    /// <summary>Blacklists nouveau (<c>blacklist nouveau</c>, <c>options nouveau modeset=0</c>) and regenerates the initramfs: RHEL guide 16.7.2.1.</summary>
    [Cmdlet(VerbsLifecycle.Disable, "NouveauDriver", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(BootChange))]
    public sealed class DisableNouveauDriverCommand : NouveauDriverCommand
    {
        protected override void EndProcessing() => ForEachHost(() =>
        {
            try
            {
                var plan = NouveauBlacklist.PlanDisable(HostSystem, Name, AllKernels, Tool);
                if (plan.AlreadyBlacklistedBy != null) WriteVerbose($"'{plan.AlreadyBlacklistedBy}' already blacklists nouveau; nothing to write.");
                Carry(plan, "Blacklist nouveau and regenerate the initramfs?");
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        });
    }
}
