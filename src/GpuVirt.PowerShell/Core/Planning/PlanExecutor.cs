using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// The one place plans are applied. For each plan: the preflight checks (no lock needed), then under the host's
    /// lock the plan's checks and preconditions again (refusing when the host changed since the plan was made), then
    /// the steps in order; when a step fails, the steps already applied are undone in reverse and the error says
    /// exactly what state was left. The recorders hear about every plan, step and outcome.
    /// </summary>
    internal sealed class PlanExecutor
    {
        private readonly Action<string>? _log;
        private readonly CancellationToken _cancellationToken;

        public PlanExecutor(Action<string>? log = null, CancellationToken cancellationToken = default)
        {
            _log = log;
            _cancellationToken = cancellationToken;
        }

        /// <summary>The lock every executor takes unless it is given another.</summary>
        public static IHostLockProvider DefaultLock { get; set; } = new HostLockProvider();

        /// <summary>The recorders every new executor starts with (the change journal adds itself here).</summary>
        public static IList<IPlanRecorder> DefaultRecorders { get; } = new List<IPlanRecorder>();

        public IHostLockProvider Lock { get; set; } = DefaultLock;

        /// <summary>
        /// How long to wait for another command that holds the host lock (the cmdlets' <c>$GpuVirtLockTimeout</c>, the
        /// same bound the boot and vGPU commands honour); null: <see cref="HostLock.DefaultTimeout"/>.
        /// </summary>
        public TimeSpan? LockTimeout { get; set; }

        public IList<IPlanRecorder> Recorders { get; } = new List<IPlanRecorder>(DefaultRecorders);

        /// <summary>The checks run again under the lock; <see cref="PlanChecks.All"/> unless set.</summary>
        public IEnumerable<IPlanCheck> Checks { get; set; } = PlanChecks.All;

        /// <summary>Applies the plan and reads its result; a failure is a <see cref="GpuVirtException"/> that says what was left.</summary>
        public TResult Apply<TResult>(ChangePlan<TResult> plan)
        {
            var outcome = Apply((ChangePlan)plan);
            if (outcome.Error != null) throw outcome.Error;
            return plan.Result();
        }

        /// <summary>Applies one plan; the outcome carries the error (nothing is thrown for a failed step).</summary>
        public PlanOutcome Apply(ChangePlan plan) => ApplyEach(new[] { plan })[0];

        /// <summary>
        /// Applies plans that are each their own change (one guest's hostdevs): one lock, each plan checked on its own,
        /// the plans whose one step shares a batch applied together, a failed plan not stopping the others.
        /// </summary>
        public IReadOnlyList<PlanOutcome> ApplyEach(IReadOnlyList<ChangePlan> plans)
        {
            var outcomes = new PlanOutcome?[plans.Count];
            var ready = new List<int>();
            for (var i = 0; i < plans.Count; i++)
            {
                var plan = plans[i];
                var blocking = plan.Blocking;
                if (blocking.Count > 0)
                {
                    outcomes[i] = Failed(plan, blocking[0].Error);
                    continue;
                }
                if (!plan.HasChanges)
                {
                    outcomes[i] = new PlanOutcome(plan, Array.Empty<PlanStep>(), Array.Empty<PlanStep>(), Array.Empty<string>(), null);
                    continue;
                }
                try
                {
                    foreach (var check in plan.Preflight) check();
                    ready.Add(i);
                }
                catch (GpuVirtException e)
                {
                    outcomes[i] = Failed(plan, e);
                }
            }
            if (ready.Count == 0) return outcomes.Select(o => o!).ToList();

            foreach (var host in ready.GroupBy(i => plans[i].Host.Root.Directory))
            {
                IDisposable held;
                try
                {
                    held = Lock.Acquire(plans[host.First()].Host, LockTimeout, _cancellationToken, _log);
                }
                catch (GpuVirtException e)
                {
                    foreach (var i in host) outcomes[i] = Failed(plans[i], e);
                    continue;
                }
                using (held)
                {
                    // What a command killed half-way left is finished or taken back (and journaled) first.
                    var journal = Recorders.OfType<JournalPlanRecorder>().FirstOrDefault();
                    if (journal != null)
                    {
                        IReadOnlyList<string> recovered;
                        try
                        {
                            recovered = journal.Recover(plans[host.First()].Host, _log, _cancellationToken);
                        }
                        catch (GpuVirtException e)
                        {
                            foreach (var i in host) outcomes[i] = Failed(plans[i], e);
                            continue;
                        }
                        foreach (var line in recovered)
                        {
                            _log?.Invoke(line);
                            plans[host.First()].AppliedWarnings.Add(line);
                        }
                    }
                    // The guests' own locks, wherever the root points: keyed by the libvirt connection and the guest.
                    IDisposable? guests = null;
                    var keys = host.SelectMany(i => plans[i].GuestLocks).ToList();
                    if (keys.Count > 0)
                    {
                        try
                        {
                            guests = GuestLock.Acquire(keys, LockTimeout, _cancellationToken, _log);
                        }
                        catch (GpuVirtException e)
                        {
                            foreach (var i in host) outcomes[i] = Failed(plans[i], e);
                            continue;
                        }
                    }
                    using (guests)
                    {
                        ApplyLocked(host.ToList(), plans, outcomes);
                    }
                }
            }
            return outcomes.Select(o => o!).ToList();
        }

        /// <summary>Under the locks: the re-check of each plan, then the batches and the plans on their own.</summary>
        private void ApplyLocked(IReadOnlyList<int> host, IReadOnlyList<ChangePlan> plans, PlanOutcome?[] outcomes)
        {
            var go = new List<int>();
            foreach (var i in host)
            {
                var stale = Recheck(plans[i]);
                if (stale != null) outcomes[i] = Failed(plans[i], stale);
                else go.Add(i);
            }
            var batched = go.Where(i => plans[i].Steps.Count == 1 && plans[i].Steps[0].Batch != null)
                .GroupBy(i => plans[i].Steps[0].Batch!).ToList();
            foreach (var batch in batched) ApplyBatch(batch.Key, batch.ToList(), plans, outcomes);
            foreach (var i in go.Except(batched.SelectMany(b => b)))
            {
                outcomes[i] = ApplySteps(plans[i]);
            }
        }

        /// <summary>Runs the checks and preconditions again; the error that refuses the plan, or null when it still holds.</summary>
        private GpuVirtException? Recheck(ChangePlan plan)
        {
            var changed = new List<string>();
            string? errorId = null;
            foreach (var precondition in plan.Preconditions)
            {
                if (precondition.IsRule)
                {
                    var broken = precondition.Refusal();
                    if (broken is null) continue;
                    return new GpuVirtException(broken.ErrorId, broken.Kind,
                        broken.Message + " (found when the change was about to be made; nothing was changed)", broken.Target, broken);
                }
                var now = precondition.Changed();
                if (now is null) continue;
                changed.Add(now);
                errorId ??= precondition.ErrorId;
            }
            if (changed.Count > 0)
            {
                return new GpuVirtException(errorId!, ErrorKind.InvalidOperation,
                    $"{plan.Action} on {plan.Target}: not done, because the host changed since the change was planned ({string.Join("; ", changed)}). Nothing was changed; run the command again.",
                    plan.Target);
            }
            var (_, refusals) = PlanChecks.Run(plan, Checks);
            var blocking = refusals.FirstOrDefault(r => !(plan.Force && r.Overridable));
            if (blocking is null) return null;
            return new GpuVirtException(blocking.Error.ErrorId, blocking.Error.Kind,
                blocking.Error.Message + " (found when the change was about to be made; nothing was changed)", blocking.Error.Target, blocking.Error);
        }

        /// <summary>The journal recorder that journals the plan, when it is journaled (then its intent is written).</summary>
        private JournalPlanRecorder? Journaling(ChangePlan plan) =>
            plan.Journal is null ? null : Recorders.OfType<JournalPlanRecorder>().FirstOrDefault();

        /// <summary>
        /// The intent of journaled plans about to be applied (<see cref="PlanIntent"/>): their steps with their inverses and
        /// the record each will append, as far as it can be said before the first step.
        /// </summary>
        private static PlanIntent Intent(IReadOnlyList<ChangePlan> plans, JournalPlanRecorder journal)
        {
            var doc = new PlanIntentDocument { Command = journal.Recorder.Command };
            foreach (var plan in plans)
            {
                ChangeRecord? planned;
                try
                {
                    planned = journal.Recorder.Stamp(plan.Journal!());
                }
                catch (Exception e) when (IsFailure(e) || e is InvalidOperationException || e is ArgumentException)
                {
                    // Some records read what the change left: the exact record is written once every step is applied.
                    planned = null;
                }
                doc.Plans.Add(new PendingPlan
                {
                    Target = plan.Target,
                    Action = plan.Action,
                    Connect = plan.Host.Connect ?? journal.Recorder.Connect,
                    Steps = plan.Steps.Select(s => new PendingStep { Description = s.Description, Inverse = s.Inverse, GoesWithEarlierStep = s.GoesWithEarlierStep }).ToList(),
                    Record = planned,
                    ImportBootEdits = journal.Recorder.ImportBootEdits,
                });
            }
            return new PlanIntent(doc);
        }

        /// <summary>Writes the intent before the first step; an error that stops the plan with nothing changed when it cannot.</summary>
        private static GpuVirtException? Begin(ChangePlan plan, PlanIntent intent)
        {
            try
            {
                if (PlanIntent.Read(plan.Host.Root) is PlanIntent pending)
                {
                    return new GpuVirtException(ErrorIds.ChangePending, ErrorKind.ResourceUnavailable,
                        pending.Describe() + " Nothing was changed.", PlanIntent.HostPath);
                }
                intent.Write(plan.Host.Root);
                return null;
            }
            catch (GpuVirtException e)
            {
                return new GpuVirtException(e.ErrorId, e.Kind,
                    $"{plan.Action} on {plan.Target}: not done, because the record of the change in progress cannot be written ({e.Message}). Nothing was changed.", e.Target, e);
            }
        }

        private PlanOutcome ApplySteps(ChangePlan plan)
        {
            var context = new PlanContext(plan, _cancellationToken, _log);
            try
            {
                foreach (var recorder in Recorders) recorder.Starting(plan);
            }
            catch (GpuVirtException e)
            {
                return Failed(plan, e);
            }
            var journal = Journaling(plan);
            PlanIntent? intent = null;
            if (journal != null)
            {
                intent = Intent(new[] { plan }, journal);
                var refused = Begin(plan, intent);
                if (refused != null)
                {
                    var failed = Failed(plan, refused);
                    foreach (var recorder in Recorders) recorder.Finished(failed);
                    return failed;
                }
            }
            var applied = new List<PlanStep>();
            GpuVirtException? error = null;
            foreach (var step in plan.Steps)
            {
                try
                {
                    _cancellationToken.ThrowIfCancellationRequested();
                    step.Apply(context);
                }
                catch (Exception e) when (IsFailure(e))
                {
                    error = AsError(e, step);
                    break;
                }
                applied.Add(step);
                if (intent != null)
                {
                    PlanIntent.KillPoint("after-step-" + applied.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    intent.Document.Plans[0].StepsDone = applied.Count;
                    try
                    {
                        intent.Write(plan.Host.Root);
                    }
                    catch (GpuVirtException e)
                    {
                        error = e;
                        break;
                    }
                }
                foreach (var recorder in Recorders) recorder.StepApplied(plan, step);
            }
            PlanOutcome outcome;
            if (error != null)
            {
                outcome = Undo(plan, applied, error, context);
                if (intent != null) Settle(plan, intent, outcome);
            }
            else if (intent != null)
            {
                outcome = Commit(new[] { plan }, new[] { (IReadOnlyList<PlanStep>)applied }, intent, journal!, context)[0];
            }
            else
            {
                outcome = new PlanOutcome(plan, applied, Array.Empty<PlanStep>(), Array.Empty<string>(), null);
            }
            foreach (var recorder in Recorders) recorder.Finished(outcome);
            return outcome;
        }

        /// <summary>
        /// After every step of the plans was applied: the exact records go into the intent, then into the journal, and
        /// the intent is removed. A plan whose record the journal cannot take is taken back (no change is left without a
        /// record); where that cannot be done either, the intent stays for the next command to take it back.
        /// </summary>
        private IReadOnlyList<PlanOutcome> Commit(IReadOnlyList<ChangePlan> plans, IReadOnlyList<IReadOnlyList<PlanStep>> applied, PlanIntent intent,
            JournalPlanRecorder journal, PlanContext context)
        {
            var root = plans[0].Host.Root;
            var records = new ChangeRecord?[plans.Count];
            var errors = new GpuVirtException?[plans.Count];
            for (var k = 0; k < plans.Count; k++)
            {
                try
                {
                    records[k] = journal.Recorder.Stamp(plans[k].Journal!());
                    var entry = intent.Document.Plans[k];
                    entry.Record = records[k];
                    entry.Complete = true;
                }
                catch (Exception e) when (IsFailure(e) || e is InvalidOperationException)
                {
                    errors[k] = e as GpuVirtException ?? new GpuVirtException(ErrorIds.JournalWriteFailed, ErrorKind.WriteError, e.Message, plans[k].Target, e);
                }
            }
            try
            {
                intent.Write(root);
            }
            catch (GpuVirtException e)
            {
                for (var k = 0; k < plans.Count; k++) errors[k] ??= e;
            }
            PlanIntent.KillPoint("before-journal");
            for (var k = 0; k < plans.Count; k++)
            {
                if (errors[k] != null) continue;
                try
                {
                    journal.Recorder.Record(records[k]!);
                }
                catch (GpuVirtException e)
                {
                    errors[k] = e;
                }
            }
            var outcomes = new PlanOutcome[plans.Count];
            var keep = false;
            for (var k = 0; k < plans.Count; k++)
            {
                var plan = plans[k];
                if (errors[k] is null)
                {
                    outcomes[k] = new PlanOutcome(plan, applied[k], Array.Empty<PlanStep>(), Array.Empty<string>(), null, records[k]);
                    continue;
                }
                var why = errors[k]!.InnerException is GpuVirtException inner ? inner.Message : errors[k]!.Message;
                var error = new GpuVirtException(ErrorIds.JournalWriteFailed, ErrorKind.WriteError,
                    $"{plan.Action} on {plan.Target}: the change journal cannot take the record of the change ({why}), so the change is taken back rather than left without a record.",
                    plan.Target, errors[k]);
                intent.Document.Plans[k].Complete = false;
                outcomes[k] = Undo(plan, applied[k].ToList(), error, context);
                if (outcomes[k].NotUndone.Count > 0) keep = true;
            }
            try
            {
                if (keep)
                {
                    // What could not be taken back now is taken back by the next command.
                    intent.Document.Plans.RemoveAll(p => p.Complete);
                    intent.Write(root);
                }
                else
                {
                    PlanIntent.Remove(root);
                }
            }
            catch (GpuVirtException e)
            {
                _log?.Invoke($"'{PlanIntent.HostPath}' could not be updated ({e.Message}); the next command finds it and settles it from the journal.");
            }
            return outcomes;
        }

        /// <summary>After a failed plan was undone: no intent when every step is back; one that takes the rest back next time otherwise.</summary>
        private void Settle(ChangePlan plan, PlanIntent intent, PlanOutcome outcome)
        {
            try
            {
                if (outcome.NotUndone.Count == 0) PlanIntent.Remove(plan.Host.Root);
            }
            catch (GpuVirtException e)
            {
                _log?.Invoke($"'{PlanIntent.HostPath}' could not be removed ({e.Message}); the next command finds nothing left to take back.");
            }
        }

        private void ApplyBatch(IStepBatch batch, IReadOnlyList<int> indexes, IReadOnlyList<ChangePlan> plans, PlanOutcome?[] outcomes)
        {
            var steps = indexes.Select(i => plans[i].Steps[0]).ToList();
            var context = new PlanContext(plans[indexes[0]], _cancellationToken, _log);
            try
            {
                foreach (var i in indexes)
                {
                    foreach (var recorder in Recorders) recorder.Starting(plans[i]);
                }
            }
            catch (GpuVirtException e)
            {
                foreach (var i in indexes) outcomes[i] = Failed(plans[i], e);
                return;
            }
            var batchPlans = indexes.Select(i => plans[i]).ToList();
            var journal = batchPlans.All(p => p.Journal != null) ? Journaling(batchPlans[0]) : null;
            PlanIntent? intent = null;
            if (journal != null)
            {
                intent = Intent(batchPlans, journal);
                var refused = Begin(batchPlans[0], intent);
                if (refused != null)
                {
                    foreach (var i in indexes)
                    {
                        outcomes[i] = Failed(plans[i], refused);
                        foreach (var recorder in Recorders) recorder.Finished(outcomes[i]!);
                    }
                    return;
                }
            }
            IReadOnlyList<GpuVirtException?> errors;
            try
            {
                _cancellationToken.ThrowIfCancellationRequested();
                errors = batch.Apply(steps, context);
            }
            catch (Exception e) when (IsFailure(e))
            {
                var error = AsError(e, steps[0]);
                errors = steps.Select(_ => (GpuVirtException?)error).ToList();
            }
            if (intent != null) PlanIntent.KillPoint("after-step-1");
            var done = new List<int>();
            for (var k = 0; k < indexes.Count; k++)
            {
                var plan = plans[indexes[k]];
                if (errors[k] is null)
                {
                    foreach (var recorder in Recorders) recorder.StepApplied(plan, steps[k]);
                    if (intent != null) intent.Document.Plans[k].StepsDone = 1;
                    done.Add(k);
                }
                else
                {
                    outcomes[indexes[k]] = Failed(plan, errors[k]!);
                }
            }
            if (intent != null)
            {
                // Only the plans whose step was applied are journaled; the others changed nothing.
                var applied = done.Select(k => batchPlans[k]).ToList();
                intent.Document.Plans = done.Select(k => intent.Document.Plans[k]).ToList();
                if (applied.Count == 0)
                {
                    Settle(batchPlans[0], intent, Failed(batchPlans[0], errors[0]!));
                }
                else
                {
                    var committed = Commit(applied, done.Select(k => (IReadOnlyList<PlanStep>)new[] { steps[k] }).ToList(), intent, journal!, context);
                    for (var n = 0; n < done.Count; n++) outcomes[indexes[done[n]]] = committed[n];
                }
            }
            else
            {
                foreach (var k in done) outcomes[indexes[k]] = new PlanOutcome(plans[indexes[k]], new[] { steps[k] }, Array.Empty<PlanStep>(), Array.Empty<string>(), null);
            }
            foreach (var i in indexes) foreach (var recorder in Recorders) recorder.Finished(outcomes[i]!);
        }

        /// <summary>Undoes the applied steps in reverse and puts what was left into the error.</summary>
        private PlanOutcome Undo(ChangePlan plan, List<PlanStep> applied, GpuVirtException error, PlanContext context)
        {
            if (applied.Count == 0) return Failed(plan, error);
            var undone = new List<PlanStep>();
            var notUndone = new List<string>();
            for (var i = applied.Count - 1; i >= 0; i--)
            {
                var step = applied[i];
                if (!step.CanUndo)
                {
                    notUndone.Add(step.Description + " (it has no inverse)");
                    continue;
                }
                try
                {
                    _log?.Invoke("Undoing: " + step.Description);
                    step.Undo(new PlanContext(plan, CancellationToken.None, _log));
                    undone.Add(step);
                }
                catch (Exception e) when (IsFailure(e))
                {
                    notUndone.Add(step.Description + " (undo failed: " + e.Message + ")");
                }
            }
            var state = notUndone.Count == 0
                ? " The steps already made were undone (" + string.Join("; ", undone.Select(s => s.Description)) + "): nothing was changed."
                : " Left as made: " + string.Join("; ", notUndone) + "." +
                  (undone.Count > 0 ? " Undone: " + string.Join("; ", undone.Select(s => s.Description)) + "." : string.Empty);
            var full = new GpuVirtException(error.ErrorId, error.Kind, error.Message + state, error.Target, error);
            return new PlanOutcome(plan, applied, undone, notUndone, full);
        }

        private static PlanOutcome Failed(ChangePlan plan, GpuVirtException error) =>
            new PlanOutcome(plan, Array.Empty<PlanStep>(), Array.Empty<PlanStep>(), Array.Empty<string>(), error);

        private static bool IsFailure(Exception e) =>
            e is GpuVirtException || e is IOException || e is UnauthorizedAccessException || e is OperationCanceledException;

        private static GpuVirtException AsError(Exception e, PlanStep step) => e switch
        {
            GpuVirtException g => g,
            OperationCanceledException _ => new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped,
                "Stopped before: " + step.Description + ".", step.Description, e),
            UnauthorizedAccessException _ => new GpuVirtException(ErrorIds.RootRequired, ErrorKind.PermissionDenied,
                e.Message + " (" + step.Description + ")", step.Description, e),
            _ => new GpuVirtException(ErrorIds.SysfsWriteFailed, ErrorKind.WriteError, e.Message + " (" + step.Description + ")", step.Description, e),
        };
    }
}
