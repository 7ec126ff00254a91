using System.Collections.Generic;

namespace GpuVirt.Core.Planning
{
    /// <summary>What applying a plan did: the steps applied, and on failure the error and what was undone.</summary>
    internal sealed class PlanOutcome
    {
        internal PlanOutcome(ChangePlan plan, IReadOnlyList<PlanStep> applied, IReadOnlyList<PlanStep> undone, IReadOnlyList<string> notUndone, GpuVirtException? error,
            Journal.ChangeRecord? record = null)
        {
            Record = record;
            Plan = plan;
            Applied = applied;
            Undone = undone;
            NotUndone = notUndone;
            Error = error;
        }

        public ChangePlan Plan { get; }

        /// <summary>The steps applied, in order (on failure, before the undo).</summary>
        public IReadOnlyList<PlanStep> Applied { get; }

        /// <summary>The applied steps whose inverse ran after a later step failed.</summary>
        public IReadOnlyList<PlanStep> Undone { get; }

        /// <summary>Applied steps left applied after a failure, each with why.</summary>
        public IReadOnlyList<string> NotUndone { get; }

        /// <summary>Null when every step was applied.</summary>
        public GpuVirtException? Error { get; }

        public bool Succeeded => Error is null;

        /// <summary>The journal record the executor appended for the plan (null: the plan was not journaled by it).</summary>
        public Journal.ChangeRecord? Record { get; }
    }
}
