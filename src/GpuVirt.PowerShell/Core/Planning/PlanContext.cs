using System;
using System.Threading;

namespace GpuVirt.Core.Planning
{
    /// <summary>What a step gets when it is applied or undone: the plan, the stop token and the verbose log.</summary>
    internal sealed class PlanContext
    {
        public PlanContext(ChangePlan plan, CancellationToken cancellationToken, Action<string>? log)
        {
            Plan = plan;
            CancellationToken = cancellationToken;
            Log = log;
        }

        public ChangePlan Plan { get; }
        public CancellationToken CancellationToken { get; }
        public Action<string>? Log { get; }
    }
}
