using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Takes journaled changes back, newest first: records from the pipeline (Get-GpuVirtChange), by -Id, the -Last N
    /// that still stand, or those made -Since a time. Each record knows its host and libvirt URI. A target that
    /// changed since the record is refused, named; -Force undoes it anyway. Each undo is journaled.
    /// </summary>
    [Cmdlet("Undo", "GpuVirtChange", DefaultParameterSetName = IdSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(ChangeRecord))]
    public sealed class UndoGpuVirtChangeCommand : GpuVirtCmdlet
    {
        private const string IdSet = "Id";
        private const string LastSet = "Last";
        private const string SinceSet = "Since";

        private readonly List<(string Root, long Id, bool Explicit)> _asked = new List<(string, long, bool)>();

        /// <summary>The ids of the changes; piped records bind by their Id property.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = IdSet, ValueFromPipelineByPropertyName = true)]
        [ValidateRange(1L, long.MaxValue)]
        public long[] Id { get; set; } = Array.Empty<long>();

        /// <summary>The newest N changes that still stand.</summary>
        [Parameter(Mandatory = true, ParameterSetName = LastSet)]
        [ValidateRange(1, int.MaxValue)]
        public int Last { get; set; }

        /// <summary>Every change that still stands made at or after this time.</summary>
        [Parameter(Mandatory = true, ParameterSetName = SinceSet)]
        public DateTime Since { get; set; }

        /// <summary>The host root whose journal holds the changes; piped records bind by their Root property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Root { get; set; } = "/";

        /// <summary>Undo even a change whose target was changed since (the later edit is kept in a backup where it is a file).</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            var root = GetUnresolvedProviderPathFromPSPath(Root);
            if (ParameterSetName != IdSet)
            {
                if (!_asked.Any(a => a.Root == root)) _asked.Add((root, 0, false));
                return;
            }
            foreach (var id in Id) _asked.Add((root, id, !MyInvocation.ExpectingInput));
        }

        protected override void EndProcessing()
        {
            foreach (var group in _asked.GroupBy(a => a.Root, StringComparer.Ordinal))
            {
                try
                {
                    UndoOn(new HostRoot(group.Key).EnsureExists(), group.ToList());
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }

        private void UndoOn(HostRoot root, List<(string Root, long Id, bool Explicit)> asked)
        {
            var journal = new ChangeJournal(root) { LockTimeout = LockTimeout };
            // A change or an undo killed half-way is settled first (an undo is finished, not planned again).
            var finished = Recover(root, journal);
            var records = journal.Read();
            var chosen = new List<ChangeRecord>();
            switch (ParameterSetName)
            {
                case LastSet:
                    chosen.AddRange(ChangeUndo.Undoable(records).Take(Last));
                    break;
                case SinceSet:
                    chosen.AddRange(ChangeUndo.Undoable(records).Where(r => r.Time >= Since.ToUniversalTime()));
                    break;
                default:
                    foreach (var a in asked.GroupBy(a => a.Id).Select(g => g.First()))
                    {
                        var record = records.FirstOrDefault(r => r.Id == a.Id);
                        if (record is null)
                        {
                            WriteError(GetGpuVirtChangeCommand.NotFound(a.Id));
                            continue;
                        }
                        if (!record.CanUndo && !a.Explicit)
                        {
                            WriteVerbose(record.Undone ? $"Change {record.Id} was already undone by change {record.UndoneBy}." : $"Change {record.Id} is an undo itself; it is left as it is.");
                            continue;
                        }
                        chosen.Add(record);
                    }
                    break;
            }

            var undo = new ChangeUndo(root, Runner, StopToken, WriteVerbose);
            foreach (var record in chosen.OrderByDescending(r => r.Id))
            {
                if (finished != null && finished.Undoes == record.Id)
                {
                    WriteObject(finished);
                    continue;
                }
                try
                {
                    var plan = undo.Plan(record);
                    if (Force)
                    {
                        foreach (var w in plan.ForcedWarnings) WriteWarning(w);
                    }
                    var description = plan.Describe();
                    if (!ShouldProcess(description, $"Undo change {record.Id}?\n{description}", "Undo-GpuVirtChange")) continue;
                    using (var session = journal.Open(StopToken, WriteVerbose))
                    {
                        // Under the lock, from the journal and the host as they are now.
                        var current = session.Find(record.Id) ?? throw GetGpuVirtChangeCommand.NotFound(record.Id);
                        var done = undo.Apply(undo.Plan(current), session, MyInvocation.Line?.Trim() ?? "Undo-GpuVirtChange", Force);
                        if (done.RebootRequired)
                            WriteWarning($"Change {record.Id} was undone in the boot configuration: the running kernel keeps the old settings until the host is rebooted.");
                        WriteObject(done);
                    }
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }

        /// <summary>
        /// Finishes or takes back, under the lock, what a killed command left (<see cref="PlanIntent"/>), saying so as
        /// a warning; under -WhatIf only says what it would do. Returns the undo record of a killed undo it finished.
        /// </summary>
        private ChangeRecord? Recover(HostRoot root, ChangeJournal journal)
        {
            var pending = PlanIntent.Read(root);
            if (pending is null) return null;
            var text = pending.Describe();
            if (!ShouldProcess(text + ". Finish it or take it back, and journal it.", $"{text}. Finish it or take it back?", "Undo-GpuVirtChange")) return null;
            using (journal.Open(StopToken, WriteVerbose))
            {
                var result = ChangeRecovery.Recover(root, Runner, StopToken, WriteVerbose, LockTimeout);
                foreach (var line in result.Lines) WriteWarning(line);
                return result.Undo;
            }
        }
    }
}
