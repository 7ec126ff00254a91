using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Mmio;
using GpuVirt.Core.Safety;

namespace GpuVirt.Core.Planning
{
    /// <summary>The checks every planner runs over its plans (and the executor runs again before applying them).</summary>
    internal static class PlanChecks
    {
        /// <summary>The module's checks, in the order they run.</summary>
        public static IReadOnlyList<IPlanCheck> All { get; } = new List<IPlanCheck>
        {
            // Issue 13: what the host needs, who holds what, parents with live vGPUs.
            new VgpuParentPlanCheck(),
            new DeviceHolderPlanCheck(),
            new HostCriticalPlanCheck(),
            // A guest's limits (Add-GpuHostdev): 32 assigned PCI devices, a 64-bit MMIO space that holds their BARs.
            new HostdevLimitCheck(),
            new GuestMmioCheck(),
            // vGPU removals: a process that holds the device, a guest whose definition still references it.
            new VgpuHolderPlanCheck(),
            new VgpuGuestReferencePlanCheck(),
        };

        /// <summary>
        /// Runs the checks over the plan; returns the warnings and refusals they added that the plan did not have yet
        /// (the same check run twice adds nothing new).
        /// </summary>
        public static (IReadOnlyList<string> Warnings, IReadOnlyList<PlanRefusal> Refusals) Run(ChangePlan plan, IEnumerable<IPlanCheck>? checks = null)
        {
            var warnings = new HashSet<string>(plan.Warnings);
            var refusals = new HashSet<string>(plan.Refusals.Select(Key));
            var w = plan.Warnings.Count;
            var r = plan.Refusals.Count;
            foreach (var check in checks ?? All) check.Check(plan);

            var newWarnings = new List<string>();
            foreach (var warning in plan.Warnings.Skip(w).ToList())
            {
                plan.Warnings.Remove(warning);
                if (warnings.Add(warning))
                {
                    plan.Warnings.Add(warning);
                    newWarnings.Add(warning);
                }
            }
            var newRefusals = new List<PlanRefusal>();
            foreach (var refusal in plan.Refusals.Skip(r).ToList())
            {
                plan.Refusals.Remove(refusal);
                if (refusals.Add(Key(refusal)))
                {
                    plan.Refusals.Add(refusal);
                    newRefusals.Add(refusal);
                }
            }
            return (newWarnings, newRefusals);
        }

        private static string Key(PlanRefusal refusal) => refusal.Error.ErrorId + "\n" + refusal.Error.Message;
    }
}
