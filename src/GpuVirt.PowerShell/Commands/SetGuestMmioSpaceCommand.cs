using System;
using System.Management.Automation;
using GpuVirt.Core;

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
                var plan = GuestMmioPlanner.Plan(Virsh, Inventory, Domain);
                foreach (var warning in plan.Warnings) WriteWarning(warning);
                if (!plan.HasChanges)
                {
                    WriteVerbose($"Guest '{plan.Domain}' already has the 64-bit MMIO space its hostdevs need.");
                    WriteObject(plan.Before);
                    return;
                }
                var nl = Environment.NewLine;
                var description = $"{plan.Action} of {plan.Target}:{nl}  {string.Join(nl + "  ", plan.Steps)}{nl}{plan.Diff}";
                if (plan.Consequences.Count > 0) description += nl + string.Join(nl, plan.Consequences);
                if (!ShouldProcess(description, $"{plan.Action} of {plan.Target}?{nl}{plan.Diff}", "Set-GuestMmioSpace")) return;
                WriteObject(GuestMmioPlanner.Apply(plan, Virsh, Inventory, Recorder));
                foreach (var line in plan.Consequences)
                {
                    if (plan.IsActive) WriteWarning(line);
                    else WriteVerbose(line);
                }
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }
    }
}
