using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// One change to one target, built by a planner that reads the host and writes nothing: what it names
    /// (<see cref="Target"/>, <see cref="Action"/>), the steps that make it, what blocks it, what to warn about and what
    /// follows from it. The cmdlet shows it (ShouldProcess, -WhatIf) and <see cref="PlanExecutor"/> applies it.
    /// </summary>
    internal class ChangePlan
    {
        public ChangePlan(ChangeKind kind, ChangeHost host, string target, string action)
        {
            Kind = kind;
            Host = host ?? throw new ArgumentNullException(nameof(host));
            Target = target;
            Action = action;
        }

        public ChangeKind Kind { get; }

        /// <summary>The host root and, for libvirt changes, the connection URI.</summary>
        public ChangeHost Host { get; }

        /// <summary>What ShouldProcess names: <c>0000:02:00.0 (driver: nouveau)</c>, <c>guest 'vm1'</c>.</summary>
        public string Target { get; }

        /// <summary>The ShouldProcess action: <c>Bind to vfio-pci</c>.</summary>
        public string Action { get; }

        /// <summary>
        /// The first line of the -WhatIf text; by default PowerShell's own <c>Performing the operation "Action" on target "Target".</c>
        /// </summary>
        public string? Summary { get; set; }

        /// <summary>The PCI functions the change touches (plan checks look at them).</summary>
        public List<PciAddress> Devices { get; } = new List<PciAddress>();

        /// <summary>The guest the change touches, when it touches one.</summary>
        public string? Domain { get; set; }

        /// <summary>For a hostdev attach: the guest's definitions and the devices attached with it (plan checks look at them).</summary>
        public PlannedGuest? Guest { get; set; }

        /// <summary>
        /// The libvirt locks the change is applied under, after the host lock (<see cref="GuestLock"/>): the definition of
        /// each guest it reads and writes back, and for an attach the assignment of devices to the connection's guests.
        /// They are keyed by the connection and the guest, not by the root, and never taken under -WhatIf.
        /// </summary>
        public List<GuestLockKey> GuestLocks { get; } = new List<GuestLockKey>();

        /// <summary>The mediated devices (UUIDs) the change touches.</summary>
        public List<string> Mdevs { get; } = new List<string>();

        /// <summary>
        /// Reads which guests' definitions reference which devices, for the checks (read again under the host lock);
        /// null when libvirt is not the host's to ask.
        /// </summary>
        public Func<GuestReferences?>? ReadGuests { get; set; }

        public List<PlanStep> Steps { get; } = new List<PlanStep>();

        /// <summary>Shown with WriteWarning, also under -WhatIf.</summary>
        public List<string> Warnings { get; } = new List<string>();

        /// <summary>What blocks the plan; -Force lifts the overridable ones when <see cref="Force"/> is set.</summary>
        public List<PlanRefusal> Refusals { get; } = new List<PlanRefusal>();

        /// <summary>The change journal's record of the applied change (with its inverse); null for a change that is not journaled.</summary>
        public Func<ChangeRecord>? Journal { get; set; }

        /// <summary>Errors that turn up after the change was made (the journal could not take it); the cmdlet writes them.</summary>
        public List<GpuVirtException> AppliedErrors { get; } = new List<GpuVirtException>();

        /// <summary>Warnings that turn up while the plan is applied; the cmdlet shows them after the change.</summary>
        public List<string> AppliedWarnings { get; } = new List<string>();

        /// <summary>What follows from the change: a reboot is needed, a guest is affected.</summary>
        public List<string> Consequences { get; } = new List<string>();

        /// <summary>What the plan was built on, read again under the host lock before it is applied.</summary>
        public List<PlanPrecondition> Preconditions { get; } = new List<PlanPrecondition>();

        /// <summary>Checks that need no lock (write access, programs present), run before the lock is taken.</summary>
        public List<Action> Preflight { get; } = new List<Action>();

        /// <summary>The user asked for -Force: overridable refusals do not block.</summary>
        public bool Force { get; set; }

        /// <summary>Why there is nothing to do, when there is nothing to do (the verbose stream says it).</summary>
        public string? NothingToDo { get; set; }

        public bool HasChanges => Steps.Count > 0;

        /// <summary>The refusals that block the plan (-Force lifts the overridable ones).</summary>
        public IReadOnlyList<PlanRefusal> Blocking => Refusals.Where(r => !(Force && r.Overridable)).ToList();

        /// <summary>The refusals -Force lifted; the cmdlet shows their warnings.</summary>
        public IReadOnlyList<PlanRefusal> Overridden => Refusals.Where(r => Force && r.Overridable).ToList();

        /// <summary>The -WhatIf text: the summary, then one line per step and per consequence.</summary>
        public string Describe()
        {
            var text = new StringBuilder(Summary ?? $"Performing the operation \"{Action}\" on target \"{Target}\".");
            foreach (var step in Steps) text.Append(Environment.NewLine).Append("  ").Append(step.Description);
            foreach (var line in Consequences) text.Append(Environment.NewLine).Append("  ").Append(line);
            return text.ToString();
        }

        /// <summary>The -Confirm question.</summary>
        public string Question()
        {
            var text = new StringBuilder(Action).Append(" on ").Append(Target).Append('?');
            foreach (var step in Steps) text.Append(Environment.NewLine).Append("  ").Append(step.Description);
            foreach (var line in Consequences) text.Append(Environment.NewLine).Append("  ").Append(line);
            return text.ToString();
        }

        public override string ToString() => Action + " on " + Target;
    }

    /// <summary>A plan whose application gives a result the cmdlet writes out (the device as it is afterwards).</summary>
    internal sealed class ChangePlan<TResult> : ChangePlan
    {
        public ChangePlan(ChangeKind kind, ChangeHost host, string target, string action, Func<TResult> result)
            : base(kind, host, target, action)
        {
            if (result is null) throw new ArgumentNullException(nameof(result));
            Result = () => OnHost(result());
        }

        /// <summary>Reads the result after the steps were applied (or when there was nothing to do), marked with the plan's host.</summary>
        public Func<TResult> Result { get; }

        private TResult OnHost(TResult value)
        {
            if (value is HostObject item) item.From(Host.Root, Host.Connect);
            return value;
        }
    }
}
