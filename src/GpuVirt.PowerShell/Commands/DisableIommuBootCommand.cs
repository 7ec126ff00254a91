using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;

namespace GpuVirt.Commands
{
    /// <summary>Takes back exactly the kernel arguments Enable-IommuBoot added (and puts back what it replaced).</summary>
    [Cmdlet(VerbsLifecycle.Disable, "IommuBoot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(BootChange))]
    public sealed class DisableIommuBootCommand : HostCmdlet
    {
        /// <summary>The boot loader family; detected under the root when not given.</summary>
        [Parameter]
        public BootLoaderFamily BootLoader { get; set; }

        protected override void EndProcessing() => ForEachHost(() =>
        {
            try
            {
                var plan = IommuBoot.PlanDisable(HostSystem, Given(nameof(BootLoader)) ? BootLoader : (BootLoaderFamily?)null);
                foreach (var w in plan.Warnings) WriteWarning(w);
                if (plan.HasChanges && !ShouldProcess(plan.Describe(HostSystem), "Remove the arguments Enable-IommuBoot added and regenerate the boot configuration?\n" + plan.Describe(HostSystem), "Disable-IommuBoot"))
                {
                    return;
                }
                WriteObject(Recovered(IommuBoot.Apply(HostSystem, plan, Runner, StopToken, Recorder, LockTimeout, WriteVerbose, RegenerationTimeout)));
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        });
    }
}
