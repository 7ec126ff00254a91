using System;
using System.Collections.Generic;
using System.Threading;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Puts every applied plan that has a <see cref="ChangePlan.Journal"/> record into the change journal: the journal is
    /// checked before the first step (a journal that cannot take a record stops the change before anything is made),
    /// and the record appended when the plan succeeded. With it, <see cref="PlanExecutor"/> writes the intent of each
    /// plan before its first step (<see cref="PlanIntent"/>) and asks it to finish or take back, under the host lock,
    /// what a command killed half-way left (<see cref="Recover"/>).
    /// </summary>
    internal sealed class JournalPlanRecorder : IPlanRecorder
    {
        public JournalPlanRecorder(ChangeRecorder recorder)
        {
            Recorder = recorder;
        }

        /// <summary>The journal of the command's host, with the command's name and command line.</summary>
        public ChangeRecorder Recorder { get; }

        public void Starting(ChangePlan plan)
        {
            if (plan.Journal != null) Recorder.Check();
        }

        public void StepApplied(ChangePlan plan, PlanStep step)
        {
        }

        public void Finished(PlanOutcome outcome)
        {
            var plan = outcome.Plan;
            // The executor appended the record already (after the intent named it).
            if (!outcome.Succeeded || plan.Journal is null || outcome.Record != null) return;
            try
            {
                Recorder.Record(plan.Journal());
            }
            catch (GpuVirtException e)
            {
                plan.AppliedErrors.Add(e);
            }
        }

        /// <summary>
        /// Finishes or takes back the change a killed command left on the host (call under the host lock); what was
        /// done, one line each (none when nothing was pending).
        /// </summary>
        public IReadOnlyList<string> Recover(ChangeHost host, Action<string>? log, CancellationToken cancellationToken) =>
            ChangeRecovery.Recover(host.Root, new ProcessRunner(line => log?.Invoke("Running: " + line)), cancellationToken, log, Recorder.Journal.LockTimeout).Lines;
    }
}
