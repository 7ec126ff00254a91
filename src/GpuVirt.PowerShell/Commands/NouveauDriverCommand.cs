using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;

namespace GpuVirt.Commands
{
    /// <summary>What Disable-NouveauDriver and Enable-NouveauDriver share: the file name, the initramfs tool, progress.</summary>
    public abstract class NouveauDriverCommand : HostCmdlet
    {
        /// <summary>The modprobe file: /etc/modprobe.d/NAME.conf.</summary>
        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; } = NouveauBlacklist.DefaultName;

        /// <summary>Regenerate the initramfs of every installed kernel, not only the running one.</summary>
        [Parameter]
        public SwitchParameter AllKernels { get; set; }

        /// <summary>dracut, update-initramfs or mkinitcpio; detected on the host when not given.</summary>
        [Parameter]
        [ValidateSet("dracut", "update-initramfs", "mkinitcpio")]
        public string? InitramfsTool { get; set; }

        private protected Core.Boot.InitramfsTool? Tool => InitramfsTool switch
        {
            "dracut" => Core.Boot.InitramfsTool.Dracut,
            "update-initramfs" => Core.Boot.InitramfsTool.InitramfsTools,
            "mkinitcpio" => Core.Boot.InitramfsTool.Mkinitcpio,
            _ => null,
        };

        private protected void Carry(NouveauPlan plan, string question)
        {
            foreach (var w in plan.Warnings) WriteWarning(w);
            if (plan.HasChanges && !ShouldProcess(plan.Describe(HostSystem), question + "\n" + plan.Describe(HostSystem), plan.Action)) return;
            var progress = new ProgressRecord(1, "Regenerating the initramfs", "Starting");
            var change = NouveauBlacklist.Apply(HostSystem, plan, Runner, StopToken, (command, index, count) =>
            {
                progress.StatusDescription = "Running: " + command + " (this takes a while)";
                progress.PercentComplete = count == 0 ? -1 : index * 100 / count;
                WriteProgress(progress);
            }, Recorder, LockTimeout, WriteVerbose, RegenerationTimeout);
            if (plan.HasChanges)
            {
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
            }
            WriteObject(Recovered(change));
        }
    }
}
