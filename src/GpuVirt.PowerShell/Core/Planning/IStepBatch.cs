using System.Collections.Generic;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Applies several steps at once (one virsh process for many attaches); each step succeeds or fails on its own.
    /// </summary>
    internal interface IStepBatch
    {
        /// <summary>Applies the steps; returns, for each step in order, null when it was applied or the error that stopped it.</summary>
        IReadOnlyList<GpuVirtException?> Apply(IReadOnlyList<PlanStep> steps, PlanContext context);
    }
}
