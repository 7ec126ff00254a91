namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Told by <see cref="PlanExecutor"/> about every plan it applies: before the first step (under the host lock),
    /// after each step, and at the end with the outcome. The change journal records here, so that a change cut off
    /// by a kill can be finished or rolled back.
    /// </summary>
    internal interface IPlanRecorder
    {
        void Starting(ChangePlan plan);

        void StepApplied(ChangePlan plan, PlanStep step);

        void Finished(PlanOutcome outcome);
    }
}
