using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Puts every applied plan that has a <see cref="ChangePlan.Journal"/> record into the change journal: the journal is
    /// checked before the first step (a journal that cannot take a record stops the change before anything is made),
    /// and the record appended when the plan succeeded.
    /// </summary>
    internal sealed class JournalPlanRecorder : IPlanRecorder
    {
        private readonly ChangeRecorder _recorder;

        public JournalPlanRecorder(ChangeRecorder recorder)
        {
            _recorder = recorder;
        }

        public void Starting(ChangePlan plan)
        {
            if (plan.Journal != null) _recorder.Check();
        }

        public void StepApplied(ChangePlan plan, PlanStep step)
        {
        }

        public void Finished(PlanOutcome outcome)
        {
            var plan = outcome.Plan;
            if (!outcome.Succeeded || plan.Journal is null) return;
            try
            {
                _recorder.Record(plan.Journal());
            }
            catch (GpuVirtException e)
            {
                plan.AppliedErrors.Add(e);
            }
        }
    }
}
