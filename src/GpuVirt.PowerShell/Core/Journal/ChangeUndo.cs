using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Journal
{
    /// <summary>What taking one record back will do, worked out against the host as it is now, before anything changes.</summary>
    internal sealed class UndoPlan
    {
        internal UndoPlan(ChangeRecord record, IReadOnlyList<string> steps, IReadOnlyList<GpuVirtException> conflicts,
            IReadOnlyList<GpuVirtException> unforceable, IReadOnlyList<string> forcedWarnings)
        {
            Record = record;
            Steps = steps;
            Conflicts = conflicts;
            Unforceable = unforceable;
            ForcedWarnings = forcedWarnings;
        }

        public ChangeRecord Record { get; }

        /// <summary>Each inverse step in words, newest change first, with the lines of the plans that make it: what -WhatIf shows.</summary>
        public IReadOnlyList<string> Steps { get; }

        /// <summary>
        /// Why the undo is refused now: a target that no longer is as the change left it
        /// (<see cref="ErrorIds.JournalTargetChanged"/>), or what the plan checks refuse. -Force goes on over all but
        /// <see cref="Unforceable"/>.
        /// </summary>
        public IReadOnlyList<GpuVirtException> Conflicts { get; }

        /// <summary>The conflicts -Force does not lift (a live vGPU that would be destroyed, a process that holds the device).</summary>
        public IReadOnlyList<GpuVirtException> Unforceable { get; }

        /// <summary>What the command warns about when -Force goes over the other conflicts.</summary>
        public IReadOnlyList<string> ForcedWarnings { get; }

        public bool RebootRequired => Record.RebootRequired;

        public string Describe() => $"Undo change {Record.Id} ({Record.Command}: {Record.Action}, {Record.Target}):\n  " + string.Join("\n  ", Steps);
    }

    /// <summary>
    /// Takes journaled changes back: plans each record's inverse against the host as it is now (a target that changed
    /// since the record is a conflict, named) and applies it with the same core the cmdlets use, and journals the undo.
    /// Boot files go through the boot transaction (all or nothing); drivers, hostdevs, vGPUs and SR-IOV virtual
    /// functions through their planners (<see cref="HostDriverPlanner"/>, <see cref="HostdevPlanner"/>,
    /// <see cref="VgpuPlanner"/>, <see cref="SriovPlanner"/>) and the <see cref="PlanExecutor"/>: the same plan checks,
    /// the same lock, the preconditions read again, the plan's own lines under -WhatIf.
    /// </summary>
    internal sealed class ChangeUndo
    {
        private readonly HostRoot _root;
        private readonly ProcessRunner _runner;
        private readonly CancellationToken _cancellationToken;
        private readonly Action<string>? _log;

        public ChangeUndo(HostRoot root, ProcessRunner runner, CancellationToken cancellationToken = default, Action<string>? log = null)
        {
            _root = root;
            _runner = runner;
            _cancellationToken = cancellationToken;
            _log = log;
        }

        /// <summary>Selects records to undo: those still standing with an inverse, newest first.</summary>
        public static IReadOnlyList<ChangeRecord> Undoable(IEnumerable<ChangeRecord> records) =>
            records.Where(r => r.CanUndo).OrderByDescending(r => r.Id).ToList();

        public UndoPlan Plan(ChangeRecord record)
        {
            if (record.Undone)
            {
                throw new GpuVirtException(ErrorIds.JournalChangeAlreadyUndone, ErrorKind.InvalidOperation,
                    $"Change {record.Id} ({record.Command}, {record.Target}) was already undone by change {record.UndoneBy}.", record.Id);
            }
            if (record.Undoes != null || record.Inverse.Count == 0)
            {
                throw new GpuVirtException(ErrorIds.JournalChangeNotUndoable, ErrorKind.InvalidOperation,
                    record.Undoes != null
                        ? $"Change {record.Id} is the undo of change {record.Undoes}; an undo is not taken back (make the change again instead)."
                        : $"Change {record.Id} ({record.Command}) has no recorded inverse.", record.Id);
            }
            var steps = new List<string>();
            var conflicts = new List<GpuVirtException>();
            var unforceable = new List<GpuVirtException>();
            var warnings = new List<string>();
            foreach (var step in record.Inverse.AsEnumerable().Reverse())
            {
                steps.Add(step.Description);
                var found = Check(record, step).ToList();
                conflicts.AddRange(found);
                warnings.AddRange(found.Select(ForcedWarning));
                if (found.Count == 0 && IsPlanned(step.Kind)) PlanThrough(record, step, steps, conflicts, unforceable, warnings);
            }
            return new UndoPlan(record, steps, conflicts, unforceable, warnings);
        }

        /// <summary>The inverses a planner plans (the others are boot files and whole guest definitions).</summary>
        private static bool IsPlanned(InverseKind kind) => kind switch
        {
            InverseKind.ReattachDriver => true,
            InverseKind.BindDriver => true,
            InverseKind.DetachHostdev => true,
            InverseKind.AttachHostdev => true,
            InverseKind.RemoveVgpu => true,
            InverseKind.CreateVgpu => true,
            InverseKind.SetSriovFunctions => true,
            _ => false,
        };

        /// <summary>
        /// Applies the plan's inverse and appends the undo record to the session's journal. With conflicts and no
        /// <paramref name="force"/>, refuses (the first conflict is the error) and changes nothing.
        /// </summary>
        public ChangeRecord Apply(UndoPlan plan, JournalSession session, string commandLine, bool force)
        {
            if (plan.Conflicts.Count > 0 && !force) throw plan.Conflicts[0];
            if (plan.Unforceable.Count > 0) throw plan.Unforceable[0];
            var record = plan.Record;
            var undo = new ChangeRecord
            {
                User = ChangeRecorder.CurrentUser(),
                Command = "Undo-GpuVirtChange",
                CommandLine = commandLine,
                Connect = record.Connect,
                Target = record.Target,
                Action = $"Undo change {record.Id} ({record.Command}: {record.Action})",
                RebootRequired = record.RebootRequired,
                Undoes = record.Id,
            };
            // The intent goes first: an undo killed half-way is resumed by the next command (or the same undo again).
            var intent = new PlanIntent(new PlanIntentDocument
            {
                Command = "Undo-GpuVirtChange",
                Undo = new PendingUndo { Undoes = record.Id, Record = undo, Force = force, OverConflicts = force && plan.Conflicts.Count > 0 },
            });
            if (PlanIntent.Read(_root) is PlanIntent pending)
            {
                throw new GpuVirtException(ErrorIds.ChangePending, ErrorKind.ResourceUnavailable, pending.Describe() + " Nothing was changed.", PlanIntent.HostPath);
            }
            intent.Write(_root);
            return Continue(record, intent, session, resuming: false);
        }

        /// <summary>
        /// Resumes an undo that was killed half-way (its intent under the root): the record it took back, from the step
        /// it had reached; the step that may have been half-made is finished (an interrupted boot transaction settled
        /// first) or found made already; then the undo is journaled, once. Call under the journal's lock.
        /// </summary>
        internal ChangeRecord Resume(PlanIntent intent, JournalSession session)
        {
            var pending = intent.Document.Undo!;
            var record = session.Find(pending.Undoes) ?? throw new GpuVirtException(ErrorIds.ChangeRecordUnreadable, ErrorKind.InvalidData,
                $"'{PlanIntent.HostPath}' names the undo of change {pending.Undoes}, which the journal does not hold. Nothing was changed; remove it once the host is right.", PlanIntent.HostPath);
            if (record.UndoneBy is long by)
            {
                PlanIntent.Remove(_root);
                return session.Find(by)!;
            }
            return Continue(record, intent, session, resuming: true);
        }

        private ChangeRecord Continue(ChangeRecord record, PlanIntent intent, JournalSession session, bool resuming)
        {
            var pending = intent.Document.Undo!;
            var undo = pending.Record;
            var steps = record.Inverse.AsEnumerable().Reverse().ToList();
            for (var i = pending.StepsDone; i < steps.Count; i++)
            {
                var step = steps[i];
                try
                {
                    if (resuming && i == pending.StepsDone)
                    {
                        // The step that was running: a boot transaction it left is settled, and a step already made is not made twice.
                        if (step.Kind == InverseKind.RestoreFiles || step.Kind == InverseKind.UndoBootEdits)
                            BootTransaction.Recover(_root, _runner, _cancellationToken);
                        if (InEffect(record, step))
                        {
                            undo.Details.Add(new ChangeDetail(step.Description, "as the change left it", "done (finished after an interruption)"));
                            Done(intent, i);
                            continue;
                        }
                    }
                    Run(record, step, undo, pending.OverConflicts, pending.Force);
                }
                catch (GpuVirtException e)
                {
                    // Nothing of this undo was made: no intent is left. Steps that were made stay in it, to be finished.
                    if (i == 0) RemoveIntent();
                    throw new GpuVirtException(e.ErrorId, e.Kind, $"Undoing change {record.Id} ({record.Command}, {record.Target}) failed: {e.Message}" +
                        (i > 0 ? $" {i} of its {steps.Count} steps were undone; '{PlanIntent.HostPath}' keeps the rest for the next run of Undo-GpuVirtChange." : string.Empty), e.Target, e);
                }
                PlanIntent.KillPoint("undo-after-step-" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
                Done(intent, i);
            }
            PlanIntent.KillPoint("undo-before-journal");
            var appended = session.Append(undo);
            RemoveIntent();
            return appended;
        }

        private void Done(PlanIntent intent, int index)
        {
            intent.Document.Undo!.StepsDone = index + 1;
            intent.Write(_root);
        }

        private void RemoveIntent()
        {
            try
            {
                PlanIntent.Remove(_root);
            }
            catch (GpuVirtException e)
            {
                _log?.Invoke($"'{PlanIntent.HostPath}' could not be removed ({e.Message}); the next command finds the undo journaled and removes it.");
            }
        }

        /// <summary>
        /// True when the host is as the inverse leaves it (the change it takes back is not, or no longer, in effect):
        /// recovery takes back only the steps the host still shows, and a resumed undo does not make a step twice.
        /// </summary>
        internal bool InEffect(ChangeRecord record, InverseStep step)
        {
            switch (step.Kind)
            {
                case InverseKind.RestoreFiles:
                    return (step.Files ?? new List<FileState>()).All(f => ReadIfExists(f.Path) == f.Text);
                case InverseKind.UndoBootEdits:
                    return BootEditLog.Read(_root).Count == 0;
                case InverseKind.ReattachDriver:
                case InverseKind.BindDriver:
                    return new HostDriverBinding(_root).CurrentDriver(PciAddress.Parse(step.Address!)) == step.Driver;
                case InverseKind.DetachHostdev:
                case InverseKind.AttachHostdev:
                {
                    var present = HasHostdev(record, step, out var problem);
                    if (problem != null) throw problem;
                    return step.Kind == InverseKind.AttachHostdev ? present : !present;
                }
                case InverseKind.RemoveVgpu:
                {
                    var device = FindVgpu(step);
                    if (device is null) return true;
                    if (step.Uuid is null) return device.TypeId != step.TypeId;
                    return !(step.Active && device.Active) && !(step.Persistent && device.Persistent);
                }
                case InverseKind.CreateVgpu:
                {
                    var device = FindVgpu(step);
                    return device != null && (step.Active ? device.Active : device.Persistent);
                }
                case InverseKind.SetSriovFunctions:
                    return Functions(PciAddress.Parse(step.Address!)) == (step.VirtualFunctions ?? 0);
                case InverseKind.DefineDomain:
                    return VirshFor(record).Run(VgpuConsole.DumpInactive(step.Domain!), step.Domain) == step.Xml;
                default:
                    return false;
            }
        }

        /// <summary>Applies one inverse (recovery taking back a step of a change that was cut off), over the conflicts a half-made change has.</summary>
        internal void RunInverse(ChangeRecord record, InverseStep step) => Run(record, step, new ChangeRecord(), forced: true, force: true);

        /// <summary>
        /// The planner's own lines for an inverse (what it writes, runs or attaches), and what its checks refuse now: a
        /// function the host needs, a process that holds the device, a live vGPU, a guest that references it, the UUID in
        /// use. The refusals -Force cannot lift when the plan is applied are <see cref="UndoPlan.Unforceable"/>.
        /// </summary>
        private void PlanThrough(ChangeRecord record, InverseStep step, List<string> steps, List<GpuVirtException> conflicts,
            List<GpuVirtException> unforceable, List<string> warnings)
        {
            ChangePlan plan;
            try
            {
                plan = Planned(record, step, force: false);
            }
            catch (GpuVirtException e)
            {
                var changed = Changed(record, Source(step), e.Message);
                conflicts.Add(changed);
                warnings.Add(ForcedWarning(changed));
                return;
            }
            // A step of several lines (a virsh command and the element it attaches) stays indented under its inverse.
            foreach (var s in plan.Steps) steps.Add("  " + s.Description.Replace("\n", "\n      "));
            if (!plan.HasChanges && plan.NothingToDo != null) steps.Add("  nothing to do: " + plan.NothingToDo);
            foreach (var w in plan.Warnings) steps.Add("  warning: " + w);
            foreach (var refusal in plan.Refusals)
            {
                var e = refusal.Error;
                var conflict = new GpuVirtException(e.ErrorId, e.Kind, $"Change {record.Id} ({record.Command}, {record.Target}) is not undone: {e.Message}", e.Target, e);
                conflicts.Add(conflict);
                if (refusal.Overridable) warnings.Add(refusal.OverriddenWarning!);
                else unforceable.Add(conflict);
            }
        }

        /// <summary>The plan of an inverse, made by the planner of its kind of change on the record's host and connection.</summary>
        private ChangePlan Planned(ChangeRecord record, InverseStep step, bool force)
        {
            switch (step.Kind)
            {
                case InverseKind.ReattachDriver:
                    return HostDriver(record).PlanReattach(PciAddress.Parse(step.Address!), DriverMethod(step, null), force, persistent: false);
                case InverseKind.BindDriver:
                {
                    var address = PciAddress.Parse(step.Address!);
                    if (step.Driver is null)
                    {
                        throw new GpuVirtException(ErrorIds.JournalChangeNotUndoable, ErrorKind.InvalidOperation,
                            $"{address} had no driver before the change: there is no driver to bind it to again.", address.ToString());
                    }
                    return HostDriver(record).PlanDetach(address, step.Driver, DriverMethod(step, step.Driver), force, persistent: false);
                }
                case InverseKind.DetachHostdev:
                    return Hostdevs(record).PlanDetach(step.Domain!, new[] { Request(step) }, step.Scope ?? DeviceChangeScope.Persistent)[0];
                case InverseKind.AttachHostdev:
                {
                    var request = Request(step);
                    var options = new HostdevAttachOptions { Scope = step.Scope ?? DeviceChangeScope.Persistent, Unmanaged = !request.Managed, Display = request.Display, Force = force };
                    return Hostdevs(record).PlanAttach(step.Domain!, new[] { request }, options)[0];
                }
                case InverseKind.RemoveVgpu:
                case InverseKind.CreateVgpu:
                    return Vgpu(record).PlanInverse(step, force);
                case InverseKind.SetSriovFunctions:
                    return Sriov(record).PlanInverse(step, force);
                default:
                    throw new ArgumentException("Not a planned inverse: " + step.Kind, nameof(step));
            }
        }

        /// <summary>virsh where the change used it and it can do this (the live host, vfio only), sysfs otherwise.</summary>
        private HostDriverMethod DriverMethod(InverseStep step, string? driver) =>
            _root.IsLive && step.Method == HostDriverMethod.Virsh && (driver is null || HostDriverBinding.VirshBackend(driver) != null)
                ? HostDriverMethod.Virsh
                : HostDriverMethod.Sysfs;

        /// <summary>The hostdev the record names, with the element as it recorded it.</summary>
        private static HostdevRequest Request(InverseStep step)
        {
            var source = step.Uuid != null ? HostdevSource.Mdev(MdevUuid.Parse(step.Uuid)) : HostdevSource.Pci(PciAddress.Parse(step.Address!));
            var recorded = step.Xml is null ? null : DomainXml.ParseHostdev(step.Domain!, step.Xml);
            return new HostdevRequest(step.Domain!, source, managed: recorded?.Managed ?? source.Kind == HostdevKind.Pci, display: recorded?.Display ?? false, xml: step.Xml);
        }

        private static string ForcedWarning(GpuVirtException conflict) =>
            conflict.Message.Split(new[] { " Nothing was changed" }, StringSplitOptions.None)[0] + " -Force undoes it anyway.";

        private IEnumerable<GpuVirtException> Check(ChangeRecord record, InverseStep step)
        {
            switch (step.Kind)
            {
                case InverseKind.RestoreFiles:
                    foreach (var f in step.Files ?? new List<FileState>())
                    {
                        var now = ReadIfExists(f.Path);
                        if (FileState.Hash(now) == f.Expected) continue;
                        yield return Changed(record, f.Path,
                            now is null ? $"'{f.Path}' was deleted since" : f.Expected is null ? $"'{f.Path}' was created since" : $"'{f.Path}' was edited since");
                    }
                    break;
                case InverseKind.UndoBootEdits:
                    if (BootEditLog.Read(_root).Count == 0)
                        yield return Changed(record, BootEditLog.HostPath, $"'{BootEditLog.HostPath}' holds no edits any more (Disable-IommuBoot took them back?)");
                    break;
                case InverseKind.ReattachDriver:
                case InverseKind.BindDriver:
                {
                    var address = PciAddress.Parse(step.Address!);
                    string? now;
                    GpuVirtException? missing = null;
                    now = null;
                    try
                    {
                        now = new HostDriverBinding(_root).CurrentDriver(address);
                    }
                    catch (GpuVirtException e)
                    {
                        missing = Changed(record, address.ToString(), e.Message);
                    }
                    if (missing != null) yield return missing;
                    else if (now != step.ExpectedDriver)
                        yield return Changed(record, address.ToString(), $"{address} is bound to {Name(now)} now, not to {Name(step.ExpectedDriver)} as the change left it");
                    break;
                }
                case InverseKind.DetachHostdev:
                case InverseKind.AttachHostdev:
                {
                    var present = HasHostdev(record, step, out var problem);
                    if (problem != null) yield return problem;
                    else if (step.Kind == InverseKind.DetachHostdev && !present)
                        yield return Changed(record, step.Domain!, $"guest '{step.Domain}' has no hostdev {Source(step)} any more (removed since)");
                    else if (step.Kind == InverseKind.AttachHostdev && present)
                        yield return Changed(record, step.Domain!, $"guest '{step.Domain}' has the hostdev {Source(step)} again (attached since)");
                    break;
                }
                case InverseKind.RemoveVgpu:
                {
                    var device = FindVgpu(step);
                    if (device is null)
                    {
                        yield return Changed(record, Source(step), $"the vGPU {Source(step)} is gone (removed since)");
                        break;
                    }
                    if (device.TypeId != step.TypeId)
                        yield return Changed(record, Source(step), $"the vGPU {Source(step)} is of type {device.TypeId} now, not {step.TypeId}");
                    foreach (var f in step.Files ?? new List<FileState>())
                    {
                        var now = ReadIfExists(f.Path);
                        if (FileState.Hash(now) != f.Expected)
                            yield return Changed(record, f.Path, now is null ? $"the mdevctl definition '{f.Path}' was removed since" : $"the mdevctl definition '{f.Path}' was changed since");
                    }
                    break;
                }
                case InverseKind.CreateVgpu:
                {
                    var device = FindVgpu(step);
                    if (device != null && (step.Active ? device.Active : device.Persistent))
                        yield return Changed(record, Source(step), $"the vGPU {Source(step)} exists again (type {device.TypeId})");
                    break;
                }
                case InverseKind.SetSriovFunctions:
                {
                    var pf = PciAddress.Parse(step.Address!);
                    var now = Functions(pf);
                    if (now != step.ExpectedVirtualFunctions)
                    {
                        yield return Changed(record, pf.ToString(),
                            $"{pf} has {N(now)} virtual functions now, not {N(step.ExpectedVirtualFunctions ?? 0)} as the change left it (sriov_numvfs was changed since)");
                    }
                    break;
                }
                case InverseKind.DefineDomain:
                {
                    string? now = null;
                    GpuVirtException? problem = null;
                    try
                    {
                        now = VirshFor(record).Run(VgpuConsole.DumpInactive(step.Domain!), step.Domain);
                    }
                    catch (GpuVirtException e)
                    {
                        problem = Changed(record, step.Domain!, e.Message);
                    }
                    if (problem != null) yield return problem;
                    else if (now != step.ExpectedXml)
                        yield return Changed(record, step.Domain!, $"the definition of guest '{step.Domain}' was changed since");
                    break;
                }
            }
        }

        private void Run(ChangeRecord record, InverseStep step, ChangeRecord undo, bool forced, bool force)
        {
            switch (step.Kind)
            {
                case InverseKind.RestoreFiles:
                    RestoreFiles(record, step, undo, forced);
                    break;
                case InverseKind.UndoBootEdits:
                {
                    var plan = IommuBoot.PlanDisable(_root);
                    var change = IommuBoot.Apply(_root, plan, _runner, _cancellationToken);
                    foreach (var f in change.FileChanges) undo.FileChanges.Add(new ChangeFile { Path = f.Path, Action = f.Action, Backup = f.BackupPath });
                    undo.Details.Add(new ChangeDetail("kernel arguments of " + plan.Boot.File, plan.BeforeArguments, plan.AfterArguments));
                    break;
                }
                case InverseKind.ReattachDriver:
                case InverseKind.BindDriver:
                {
                    var address = PciAddress.Parse(step.Address!);
                    var binding = new HostDriverBinding(_root, _log);
                    var before = binding.CurrentDriver(address);
                    Execute(Planned(record, step, force));
                    var after = binding.CurrentDriver(address);
                    undo.Details.Add(new ChangeDetail(address + " driver", before, after));
                    if (after != step.Driver)
                    {
                        throw new GpuVirtException(ErrorIds.JournalUndoFailed, ErrorKind.InvalidOperation,
                            $"{address} is bound to {Name(after)} after the undo, not to {Name(step.Driver)} as before the change.", address.ToString());
                    }
                    break;
                }
                case InverseKind.DetachHostdev:
                case InverseKind.AttachHostdev:
                {
                    var attach = step.Kind == InverseKind.AttachHostdev;
                    Execute(Planned(record, step, force));
                    undo.Details.Add(new ChangeDetail("hostdev " + Source(step) + " of guest '" + step.Domain + "'", attach ? null : "attached", attach ? "attached" : null));
                    break;
                }
                case InverseKind.RemoveVgpu:
                case InverseKind.CreateVgpu:
                {
                    // The undo record is this one: the plan's own journal record is not written.
                    Execute(Planned(record, step, force));
                    var remove = step.Kind == InverseKind.RemoveVgpu;
                    undo.Details.Add(new ChangeDetail("vGPU " + Source(step), remove ? step.TypeId : null, remove ? null : step.TypeId));
                    foreach (var f in step.Files ?? new List<FileState>())
                    {
                        undo.FileChanges.Add(new ChangeFile { Path = f.Path, Action = f.Content is null ? BootFileAction.Removed : BootFileAction.Created, BeforeSha256 = f.Expected, AfterSha256 = FileState.Hash(f.Text) });
                    }
                    break;
                }
                case InverseKind.SetSriovFunctions:
                {
                    var pf = PciAddress.Parse(step.Address!);
                    var before = Functions(pf);
                    Execute(Planned(record, step, force));
                    undo.Details.Add(new ChangeDetail("virtual functions of " + pf + " (sriov_numvfs)", N(before), N(Functions(pf))));
                    break;
                }
                case InverseKind.DefineDomain:
                {
                    // Read again and defined under the guest's own lock, wherever -Root points: a hostdev another
                    // command attached since the check is never defined away.
                    var virsh = VirshFor(record);
                    using (GuestLock.Acquire(new[] { GuestLockKey.Definition(virsh, step.Domain!) }, null, _cancellationToken, _log))
                    {
                        if (!forced && Check(record, step).FirstOrDefault() is GpuVirtException changed) throw changed;
                        VgpuConsole.Define(virsh, step.Domain!, step.Xml!);
                    }
                    undo.Details.Add(new ChangeDetail("definition of guest '" + step.Domain + "'", "as the change left it", "as it was before"));
                    break;
                }
            }
        }

        private void RestoreFiles(ChangeRecord record, InverseStep step, ChangeRecord undo, bool forced)
        {
            var transaction = new BootTransaction(_root);
            foreach (var f in step.Files ?? new List<FileState>())
            {
                var now = ReadIfExists(f.Path);
                var back = f.Text;
                if (now == back) continue;
                // Forced over a hand edit: that edit is kept next to the file.
                transaction.Writes.Add(new FileWrite(f.Path, now, back, backup: forced && now != null && FileState.Hash(now) != f.Expected, newFileMode: f.Mode));
            }
            foreach (var c in step.Commands ?? new List<List<string>>())
            {
                if (c.Count > 0) transaction.Commands.Add(new HostCommand(c[0], c.Skip(1).ToArray()));
            }
            if (transaction.IsEmpty) return;
            var (files, _) = transaction.Execute(_runner, _cancellationToken);
            foreach (var f in files) undo.FileChanges.Add(new ChangeFile { Path = f.Path, Action = f.Action, Backup = f.BackupPath });
            undo.Details.AddRange(record.Details.Select(c => new ChangeDetail(c.What, c.After, c.Before)));
            // The change's own backups hold what the files hold again now: they would only mislead.
            foreach (var f in record.FileChanges.Where(f => f.Backup != null))
            {
                var backup = ReadIfExists(f.Backup!);
                var restored = ReadIfExists(f.Path);
                if (backup != null && backup == restored) HostFiles.Delete(_root.Resolve(f.Backup!), f.Backup!);
            }
        }

        private bool HasHostdev(ChangeRecord record, InverseStep step, out GpuVirtException? problem)
        {
            problem = null;
            try
            {
                var inactive = (step.Scope ?? DeviceChangeScope.Persistent).ReachesDefinition();
                var definition = VirshFor(record).ReadDefinition(step.Domain!, inactive);
                return definition.Hostdevs.Any(h => Matches(h, step));
            }
            catch (GpuVirtException e)
            {
                problem = Changed(record, step.Domain ?? string.Empty, e.Message);
                return false;
            }
        }

        private static bool Matches(Hostdev h, InverseStep step) =>
            step.Uuid != null ? h.Uuid is Guid g && MdevUuid.Format(g) == step.Uuid : h.Address?.ToString() == step.Address;

        private VgpuDevice? FindVgpu(InverseStep step)
        {
            var inventory = new VgpuInventory(_root, new PciInventory(_root));
            if (step.Uuid != null) return inventory.Devices().FirstOrDefault(d => d.Uuid == step.Uuid);
            return inventory.FindSriov(PciAddress.Parse(step.Address!));
        }

        /// <summary>Applies an inverse's plan through the executor (the lock, the checks and preconditions again); a failure throws.</summary>
        private void Execute(ChangePlan plan)
        {
            var outcome = new PlanExecutor(_log, _cancellationToken).Apply(plan);
            if (outcome.Error != null) throw outcome.Error;
        }

        private HostDriverPlanner HostDriver(ChangeRecord record)
        {
            var planner = new HostDriverPlanner(new ChangeHost(_root, record.Connect), () => VirshFor(record), _log) { Runner = _runner };
            planner.Binding.Cancellation = _cancellationToken;
            return planner;
        }

        private HostdevPlanner Hostdevs(ChangeRecord record) =>
            new HostdevPlanner(new ChangeHost(_root, record.Connect), VirshFor(record), () => new PciInventory(_root));

        private SriovPlanner Sriov(ChangeRecord record) =>
            new SriovPlanner(new ChangeHost(_root, record.Connect), _runner, () => VirshFor(record), _log);

        /// <summary>How many virtual functions the physical function has enabled now.</summary>
        private int Functions(PciAddress pf) => new PciInventory(_root).Find(pf)?.VirtualFunctionAddresses.Count ?? 0;

        private static string N(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>The vGPU planner of the record's host; its guests are read through the record's connection.</summary>
        private VgpuPlanner Vgpu(ChangeRecord record)
        {
            var manager = new VgpuManager(new VgpuInventory(_root, new PciInventory(_root)), _runner, _log);
            return new VgpuPlanner(new ChangeHost(_root, record.Connect), manager, () => VirshFor(record), _log);
        }

        private Virsh VirshFor(ChangeRecord record) => new Virsh(_runner, record.Connect, _cancellationToken);

        private string? ReadIfExists(string hostPath)
        {
            var full = _root.Resolve(hostPath);
            return File.Exists(full) ? HostFiles.ReadText(full, hostPath) : null;
        }

        private static string Source(InverseStep step) => step.Uuid ?? step.Address ?? string.Empty;

        private static string Name(string? driver) => driver is null ? "no driver" : "'" + driver + "'";

        private static GpuVirtException Changed(ChangeRecord record, string target, string why) =>
            new GpuVirtException(ErrorIds.JournalTargetChanged, ErrorKind.ResourceBusy,
                $"Change {record.Id} ({record.Command}, {record.Target}) is not undone: {why}. Nothing was changed; give -Force to undo it anyway.", target);
    }
}
