using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Planning
{
    /// <summary>One step of a plan in progress: what it does, and its inverse in the journal's own form.</summary>
    internal sealed class PendingStep
    {
        public string Description { get; set; } = string.Empty;

        /// <summary>How to take the step back (the same form the journal keeps); null where it has none that can be stored.</summary>
        public InverseStep? Inverse { get; set; }

        /// <summary>The step needs no inverse of its own: taking an earlier step back takes it back too (an mdev's attribute).</summary>
        public bool GoesWithEarlierStep { get; set; }
    }

    /// <summary>A journaled plan in progress: its steps, how many were applied, and the record it appends.</summary>
    internal sealed class PendingPlan
    {
        public string Target { get; set; } = string.Empty;
        public string Action { get; set; } = string.Empty;

        /// <summary>The libvirt connection URI of a guest change (its inverses talk to the same libvirt).</summary>
        public string? Connect { get; set; }

        public List<PendingStep> Steps { get; set; } = new List<PendingStep>();

        /// <summary>How many of <see cref="Steps"/> were applied (the next one may have been cut off half-way).</summary>
        public int StepsDone { get; set; }

        /// <summary>
        /// The journal record the plan appends: as planned before the first step, and the exact one (what the change
        /// left, read back) once every step was applied (<see cref="Complete"/>).
        /// </summary>
        public ChangeRecord? Record { get; set; }

        /// <summary>Every step was applied and <see cref="Record"/> is the record to journal: recovery journals it.</summary>
        public bool Complete { get; set; }

        /// <summary>Whether the journal, when it does not exist yet, starts with the boot edit record (see <see cref="ChangeRecorder"/>).</summary>
        public bool ImportBootEdits { get; set; }
    }

    /// <summary>An Undo-GpuVirtChange in progress: the record it takes back, its inverse steps done, and the undo record so far.</summary>
    internal sealed class PendingUndo
    {
        /// <summary>The id of the record being taken back.</summary>
        public long Undoes { get; set; }

        /// <summary>How many of that record's inverse steps (newest first) were applied.</summary>
        public int StepsDone { get; set; }

        /// <summary>The undo record to append once every step was applied (its details so far).</summary>
        public ChangeRecord Record { get; set; } = new ChangeRecord();

        /// <summary>The undo was run with -Force (a resumed undo is too).</summary>
        public bool Force { get; set; }

        /// <summary>-Force went over conflicts (a file edited since is kept in a backup when it is put back).</summary>
        public bool OverConflicts { get; set; }
    }

    /// <summary>The intent record as stored (JSON, like the change journal).</summary>
    internal sealed class PlanIntentDocument : IStateDocument
    {
        public string? Format { get; set; }
        public int Version { get; set; }

        /// <summary>The cmdlet whose change is in progress.</summary>
        public string Command { get; set; } = string.Empty;

        public List<PendingPlan> Plans { get; set; } = new List<PendingPlan>();

        public PendingUndo? Undo { get; set; }
    }

    /// <summary>
    /// The intent of a journaled change in progress (what <see cref="BootIntent"/> is for a boot edit, for every plan):
    /// written atomically (through <see cref="HostFiles"/>: temporary file, fsync, rename, directory fsync) by
    /// <see cref="PlanExecutor"/> before a plan's first step, naming the steps, their inverses (in the journal's form,
    /// <see cref="InverseStep"/>) and the record the plan appends; kept up to date after each step and removed once the
    /// change is journaled. Undo-GpuVirtChange writes one too, naming the record it takes back and the inverse steps
    /// done. A command killed half-way leaves it, and the next journaled command, under the host lock (so its writer is
    /// gone), finishes or takes the change back and journals it (<see cref="ChangeRecovery"/>).
    /// </summary>
    internal sealed class PlanIntent
    {
        public const string HostPath = "/var/lib/gpuvirt/change-pending.json";
        public const string FormatName = "GpuVirt change in progress";
        public const int FormatVersion = 1;

        /// <summary>
        /// The test hook: <c>GPUVIRT_TEST_KILL_AT</c> names a point (<c>after-step-N</c>, <c>before-journal</c>,
        /// <c>undo-after-step-N</c>, <c>undo-before-journal</c>) at which the process kills itself (SIGKILL), as a
        /// power cut or <c>kill -9</c> would, so that tests can check what the next command makes of what is left.
        /// </summary>
        public const string KillVariable = "GPUVIRT_TEST_KILL_AT";

        internal PlanIntent(PlanIntentDocument document)
        {
            Document = document;
        }

        internal PlanIntentDocument Document { get; }

        /// <summary>One sentence for a person: what was interrupted.</summary>
        public string Describe()
        {
            var parts = Document.Plans.Select(p => $"{p.Action} on {p.Target} ({p.StepsDone} of {p.Steps.Count} steps applied{(p.Complete ? ", not yet journaled" : string.Empty)})").ToList();
            if (Document.Undo is PendingUndo u) parts.Add($"the undo of change {u.Undoes} ({u.StepsDone} of its steps applied)");
            return $"{Document.Command} was interrupted: {string.Join("; ", parts)}";
        }

        public override string ToString() => Describe();

        /// <summary>The change in progress under the root, or null.</summary>
        public static PlanIntent? Read(HostRoot root)
        {
            var doc = ChangeJournal.ReadStateDocument<PlanIntentDocument>(root, HostPath, FormatName, FormatVersion, ErrorIds.ChangeRecordUnreadable, "change", Unreadable);
            if (doc is null) return null;
            if (doc.Plans is null || doc.Plans.Any(p => p is null || p.Steps is null || p.Steps.Any(s => s is null) || p.StepsDone < 0 || p.StepsDone > p.Steps.Count))
                throw Unreadable("its steps are missing or out of range", null);
            if (doc.Undo != null && (doc.Undo.Record is null || doc.Undo.StepsDone < 0))
                throw Unreadable("its undo is missing its record", null);
            return new PlanIntent(doc);
        }

        private static GpuVirtException Unreadable(string why, Exception? inner) =>
            new GpuVirtException(ErrorIds.ChangeRecordUnreadable, ErrorKind.InvalidData,
                $"The record of an interrupted change '{HostPath}' cannot be read: {why}. Nothing was changed. Compare the guests, vGPUs and " +
                "files it names with the change journal (Get-GpuVirtChange), put them right, and remove it.", HostPath, inner);

        /// <summary>Writes the intent atomically (the directory made when missing).</summary>
        internal void Write(HostRoot root)
        {
            Document.Format = FormatName;
            Document.Version = FormatVersion;
            // 0600: it holds guest definitions and the command line, as the journal does.
            HostFiles.WriteStateFile(root.Resolve(root.ResolveLinks(HostPath)), HostPath,
                JsonSerializer.Serialize(Document, ChangeJournal.SerializerOptions) + "\n", ErrorIds.JournalWriteFailed);
        }

        internal static void Remove(HostRoot root)
        {
            var hostPath = root.ResolveLinks(HostPath);
            HostFiles.Delete(root.Resolve(hostPath), HostPath);
        }

        /// <summary>The test hook (<see cref="KillVariable"/>): kills this process at the named point.</summary>
        internal static void KillPoint(string point)
        {
            var at = Environment.GetEnvironmentVariable(KillVariable);
            if (string.IsNullOrEmpty(at) || !string.Equals(at, point, StringComparison.Ordinal)) return;
            System.Diagnostics.Process.GetCurrentProcess().Kill();
            // Kill is asynchronous to the signal's delivery: nothing after this point may run.
            System.Threading.Thread.Sleep(System.Threading.Timeout.Infinite);
        }
    }
}
