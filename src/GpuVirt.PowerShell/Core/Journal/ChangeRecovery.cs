using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core.Journal
{
    /// <summary>What the recovery of an interrupted change did.</summary>
    internal sealed class ChangeRecoveryResult
    {
        internal ChangeRecoveryResult(IReadOnlyList<string> lines, ChangeRecord? undo)
        {
            Lines = lines;
            Undo = undo;
        }

        /// <summary>What was finished or taken back, one line each; empty when nothing was pending.</summary>
        public IReadOnlyList<string> Lines { get; }

        /// <summary>The undo record of an interrupted Undo-GpuVirtChange that was finished, if one was.</summary>
        public ChangeRecord? Undo { get; }

        public static readonly ChangeRecoveryResult Nothing = new ChangeRecoveryResult(Array.Empty<string>(), null);
    }

    /// <summary>
    /// Settles what a journaled command killed half-way left (<see cref="PlanIntent"/>), under the host lock (so the
    /// command that wrote it is gone): a plan whose every step was applied is journaled with the record it named (once:
    /// a record already in the journal is not appended again); a plan cut off before that is taken back, each applied
    /// step (and the one that may have been half-made) through its stored inverse, by the same planners and checks
    /// Undo-GpuVirtChange uses, where the host still shows the step's effect; an interrupted undo is resumed from the
    /// step it had reached and journaled. The intent is kept up to date as each part is settled, so a recovery that is
    /// itself killed goes on where it stopped.
    /// </summary>
    internal static class ChangeRecovery
    {
        public static ChangeRecoveryResult Recover(HostRoot root, ProcessRunner runner, CancellationToken cancellationToken, Action<string>? log, TimeSpan? lockTimeout)
        {
            var intent = PlanIntent.Read(root);
            if (intent is null) return ChangeRecoveryResult.Nothing;
            var doc = intent.Document;
            var undo = new ChangeUndo(root, runner, cancellationToken, log);
            var journal = new ChangeJournal(root) { LockTimeout = lockTimeout };
            var lines = new List<string>();
            ChangeRecord? undone = null;
            while (doc.Plans.Count > 0)
            {
                lines.Add(Settle(doc.Command, doc.Plans[0], undo, journal, cancellationToken, log));
                doc.Plans.RemoveAt(0);
                if (doc.Plans.Count > 0 || doc.Undo != null) intent.Write(root);
            }
            if (doc.Undo != null)
            {
                using (var session = journal.Open(cancellationToken, log))
                {
                    undone = undo.Resume(intent, session);
                }
                lines.Add($"Finished the interrupted undo of change {undone.Undoes} (journaled as change {undone.Id}).");
            }
            PlanIntent.Remove(root);
            return new ChangeRecoveryResult(lines, undone);
        }

        private static string Settle(string command, PendingPlan plan, ChangeUndo undo, ChangeJournal journal, CancellationToken cancellationToken, Action<string>? log)
        {
            var what = $"{plan.Action} on {plan.Target}";
            if (plan.Complete && plan.Record != null)
            {
                var record = plan.Record;
                var already = journal.Read().FirstOrDefault(r => r.Time == record.Time && r.Command == record.Command && r.CommandLine == record.CommandLine
                    && r.Target == record.Target && r.Action == record.Action);
                if (already != null) return $"The interrupted {command} ({what}) had been journaled as change {already.Id}.";
                try
                {
                    var appended = journal.Append(record, plan.ImportBootEdits, cancellationToken, log);
                    return $"Finished the interrupted {command}: {what} was made and is now journaled as change {appended.Id}.";
                }
                catch (GpuVirtException e)
                {
                    throw new GpuVirtException(ErrorIds.JournalWriteFailed, ErrorKind.WriteError,
                        $"The interrupted {command} ({what}) was made but cannot be journaled: {e.Message} '{PlanIntent.HostPath}' is kept; the next command journals it.", e.Target, e);
                }
            }

            // Cut off before every step was applied: each step that was (and the one that may have been half-made) is
            // taken back where the host still shows it, newest first.
            var context = plan.Record ?? new ChangeRecord { Target = plan.Target, Action = plan.Action, Command = command };
            context.Connect ??= plan.Connect;
            var taken = new List<string>();
            var left = new List<string>();
            var problems = new List<string>();
            for (var i = Math.Min(plan.StepsDone, plan.Steps.Count - 1); i >= 0; i--)
            {
                var step = plan.Steps[i];
                if (step.Inverse is null)
                {
                    if (i < plan.StepsDone && !step.GoesWithEarlierStep) left.Add(step.Description);
                    continue;
                }
                try
                {
                    if (undo.InEffect(context, step.Inverse)) continue;
                    undo.RunInverse(context, step.Inverse);
                    taken.Add(step.Inverse.Description);
                }
                catch (GpuVirtException e)
                {
                    problems.Add($"{step.Inverse.Description}: {e.Message}");
                }
            }
            if (problems.Count > 0)
            {
                throw new GpuVirtException(ErrorIds.ChangePending, ErrorKind.ResourceUnavailable,
                    $"{command} was interrupted while it made {what}, and taking it back failed: {string.Join("; ", problems)}. '{PlanIntent.HostPath}' is kept: " +
                    "the next command tries again. Nothing else was changed.", PlanIntent.HostPath);
            }
            var text = $"Took back the interrupted {command} ({what}): " +
                (taken.Count == 0 ? "none of its steps had taken effect." : string.Join("; ", taken) + ".");
            if (left.Count > 0)
            {
                text += " Left as made (no inverse could be stored): " + string.Join("; ", left) + ".";
                log?.Invoke(text);
            }
            return text;
        }
    }
}
