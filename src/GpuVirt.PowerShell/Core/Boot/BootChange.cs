using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Boot
{
    /// <summary>What happened to one file.</summary>
    internal enum BootFileAction
    {
        Modified,
        Created,
        Removed,
    }

    /// <summary>One file a boot configuration command changed, and where its previous content is kept.</summary>
    internal sealed class BootFileChange
    {
        public BootFileChange(string path, BootFileAction action, string? backupPath, string? before, string? after)
        {
            Path = path;
            Action = action;
            BackupPath = backupPath;
            Before = before;
            After = after;
        }

        /// <summary>The host path of the file.</summary>
        public string Path { get; }

        public BootFileAction Action { get; }

        /// <summary>The host path of the copy made before the change (null for a file that did not exist).</summary>
        public string? BackupPath { get; }

        /// <summary>The kernel arguments (or the content, for a modprobe file) before and after.</summary>
        public string? Before { get; }
        public string? After { get; }

        public override string ToString() => Path;
    }

    /// <summary>The record of one boot configuration command: files, arguments, programs run, and whether to reboot.</summary>
    public sealed class BootChange : HostObject
    {
        internal BootChange(string action, BootLoaderFamily? bootLoader, string? initramfsTool, IReadOnlyList<BootFileChange> files,
            IReadOnlyList<string> added, IReadOnlyList<string> removed, IReadOnlyList<string> commands, bool rebootRequired)
        {
            Action = action;
            BootLoader = bootLoader;
            InitramfsTool = initramfsTool;
            FileChanges = files;
            ArgumentsAdded = added;
            ArgumentsRemoved = removed;
            Commands = commands;
            RebootRequired = rebootRequired;
        }

        /// <summary>The cmdlet that made the change (<c>Enable-IommuBoot</c>).</summary>
        public string Action { get; }

        public BootLoaderFamily? BootLoader { get; }

        /// <summary><c>dracut</c>, <c>update-initramfs</c> or <c>mkinitcpio</c> for the nouveau commands.</summary>
        public string? InitramfsTool { get; }

        /// <summary>What was written to each file: its path, action, backup and text before and after.</summary>
        internal IReadOnlyList<BootFileChange> FileChanges { get; }

        /// <summary>The files created, changed or removed (host paths).</summary>
        public IReadOnlyList<string> Files => FileChanges.Select(f => f.Path).ToList();

        /// <summary>The backups kept of the files that were replaced (host paths).</summary>
        public IReadOnlyList<string> Backups => FileChanges.Where(f => f.BackupPath != null).Select(f => f.BackupPath!).ToList();
        public IReadOnlyList<string> ArgumentsAdded { get; }
        public IReadOnlyList<string> ArgumentsRemoved { get; }

        /// <summary>The command lines that were run, in order.</summary>
        public IReadOnlyList<string> Commands { get; }

        /// <summary>What was done about an earlier boot change that had been interrupted (files put back, programs run again), or null.</summary>
        public string? Recovered { get; internal set; }

        /// <summary>True when anything was written or run.</summary>
        public bool Changed => FileChanges.Count > 0 || Recovered != null;

        /// <summary>True when the running kernel does not yet have what is configured.</summary>
        public bool RebootRequired { get; }

        /// <summary>For stub ids: every function they claim at the next boot (see <see cref="BootClaims"/>).</summary>
        public IReadOnlyList<string> ClaimedDevices => ClaimedDeviceList.Select(d => d.Address).ToList();

        internal IReadOnlyList<PciDevice> ClaimedDeviceList { get; set; } = Array.Empty<PciDevice>();
    }

    /// <summary>One file to write (or delete) as part of a <see cref="BootTransaction"/>.</summary>
    internal sealed class FileWrite
    {
        public FileWrite(string hostPath, string? original, string? content, bool backup, string? before = null, string? after = null, int newFileMode = 0x1a4)
        {
            HostPath = hostPath;
            Original = original;
            Content = content;
            Backup = backup;
            Before = before;
            After = after;
            NewFileMode = newFileMode;
        }

        public string HostPath { get; }

        /// <summary>The content now (null: the file does not exist).</summary>
        public string? Original { get; }

        /// <summary>The content to write (null: delete the file).</summary>
        public string? Content { get; }

        /// <summary>Whether to keep a copy of the original next to it (user files yes, the module's own record no).</summary>
        public bool Backup { get; }

        public string? Before { get; }
        public string? After { get; }
        public int NewFileMode { get; }

        public BootFileAction Action => Original is null ? BootFileAction.Created : Content is null ? BootFileAction.Removed : BootFileAction.Modified;
    }

    /// <summary>
    /// Changes boot files and runs the programs that make them take effect, all or nothing: every directory is
    /// checked for write access and every program for presence first; each file that holds user content is copied
    /// to a backup; files are replaced atomically; if a program fails (or the command is stopped) every file is put
    /// back as it was, files the program may have touched included, and the error says so.
    /// </summary>
    internal sealed class BootTransaction
    {
        private readonly HostRoot _root;

        public BootTransaction(HostRoot root)
        {
            _root = root;
        }

        public HostRoot Root => _root;

        /// <summary>The cmdlet the change is for, named in the intent record an interrupted change leaves.</summary>
        public string Action { get; set; } = "A boot change";

        /// <summary>The bound of each regeneration program (grub2-mkconfig, update-grub, grubby, dracut, update-initramfs, kernel-install).</summary>
        public static readonly TimeSpan DefaultCommandTimeout = TimeSpan.FromMinutes(30);

        /// <summary>How long one command may run before it is stopped with its process group and every file put back.</summary>
        public TimeSpan CommandTimeout { get; set; } = DefaultCommandTimeout;

        public List<FileWrite> Writes { get; } = new List<FileWrite>();
        public List<HostCommand> Commands { get; } = new List<HostCommand>();

        /// <summary>Host paths the commands may change (BLS entries): restored if a command fails.</summary>
        public List<string> Guarded { get; } = new List<string>();

        /// <summary>
        /// Host paths the commands must leave as this transaction makes them: written (or not written) by the module
        /// itself, and put back to that after the commands ran. grubby-bls rewrites <c>GRUB_CMDLINE_LINUX</c> in
        /// <c>/etc/default/grub</c> (8.40-41 and 8.40-42 with no way to stop it) and writes <c>/etc/kernel/cmdline</c>
        /// on <c>--update-kernel=ALL</c>; the module edits those files byte for byte and keeps its own edit.
        /// </summary>
        public List<string> Kept { get; } = new List<string>();

        /// <summary>What each kept path must hold after the commands (null: no file), fixed when the transaction starts.</summary>
        private Dictionary<string, string?> _kept = new Dictionary<string, string?>(StringComparer.Ordinal);

        /// <summary>Called before each command with a line for a progress display.</summary>
        public Action<HostCommand, int, int>? Progress { get; set; }

        public bool IsEmpty => Writes.Count == 0 && Commands.Count == 0;

        /// <summary>
        /// The files this transaction was planned from that hold something else now (another command changed them
        /// since they were read). Called under the host lock, right before <see cref="Execute"/>.
        /// </summary>
        public IReadOnlyList<string> ChangedSincePlanned()
        {
            var changed = new List<string>();
            foreach (var w in Writes)
            {
                var full = _root.Resolve(w.HostPath);
                var now = File.Exists(full) ? HostFiles.ReadText(full, w.HostPath) : null;
                if (!string.Equals(now, w.Original, StringComparison.Ordinal)) changed.Add(w.HostPath);
            }
            return changed;
        }

        /// <summary>Fails, changing nothing, when a file cannot be written or a program is missing.</summary>
        public void Preflight()
        {
            foreach (var w in Writes)
            {
                var full = _root.Resolve(w.HostPath);
                var dir = Path.GetDirectoryName(full) ?? "/";
                if (Directory.Exists(dir)) HostFiles.CheckWritable(full, w.HostPath);
                else HostFiles.CheckWritable(NearestExisting(dir) + "/x", w.HostPath);
            }
            foreach (var c in Commands)
            {
                if (!ProgramLocator.ExistsOnHost(_root, c.Program)) throw ProcessRunner.ProgramMissing(_root, c.Program);
            }
            if (Commands.Count > 0 && !_root.IsLive && !ProgramLocator.ExistsOnHost(HostRoot.Live, "chroot"))
                throw ProcessRunner.ProgramMissing(HostRoot.Live, "chroot");
        }

        private static string NearestExisting(string dir)
        {
            var d = dir;
            while (!Directory.Exists(d)) d = Path.GetDirectoryName(d) ?? "/";
            return d;
        }

        /// <summary>
        /// Carries the writes and commands out; with a <paramref name="recorder"/>, journals <paramref name="record"/>
        /// (what the command planned, in words) with every file and its inverse: the files put back, the regeneration run again.
        /// Before the first file is replaced, the intent (<see cref="BootIntent"/>) is recorded, and it is kept up to date
        /// until the change is journaled: a kill at any point leaves what the next boot command needs to finish it or
        /// take it back (<see cref="Recover"/>). Call under the host lock, after <see cref="Recover"/>.
        /// </summary>
        public (IReadOnlyList<BootFileChange> Files, IReadOnlyList<string> Commands) Execute(ProcessRunner runner, CancellationToken cancellationToken,
            ChangeRecorder? recorder = null, ChangeRecord? record = null)
        {
            Preflight();
            recorder?.Check();
            if (BootIntent.Read(_root) is BootIntent pending)
            {
                throw new GpuVirtException(ErrorIds.BootChangePending, ErrorKind.ResourceUnavailable,
                    pending.Describe() + " Nothing was changed.", BootIntent.HostPath);
            }
            var stamp = DateTime.Now;
            var guarded = Guarded.Where(p => File.Exists(_root.Resolve(p)))
                .ToDictionary(p => p, p => HostFiles.ReadText(_root.Resolve(p), p));
            _kept = Kept.Distinct(StringComparer.Ordinal).ToDictionary(p => p,
                p => Writes.LastOrDefault(x => x.HostPath == p) is FileWrite written ? written.Content : ReadNow(p), StringComparer.Ordinal);
            var backups = new Dictionary<FileWrite, string>();
            var applied = new List<FileWrite>();
            var createdDirs = new List<string>();
            var ran = new List<string>();
            if (recorder != null) record = recorder.Stamp(record ?? new ChangeRecord());
            BootIntent? intent = null;

            try
            {
                foreach (var w in Writes.Where(w => w.Backup && w.Original != null))
                {
                    backups[w] = HostFiles.Backup(_root, w.HostPath, stamp);
                }
                // The intent goes first: from here on a kill leaves a record the next run finishes or takes back.
                var intentDir = Path.GetDirectoryName(_root.Resolve(_root.ResolveLinks(BootIntent.HostPath))) ?? "/";
                if (!Directory.Exists(intentDir)) createdDirs.Add(NearestMissing(intentDir));
                intent = Intent(guarded, backups, recorder, record);
                intent.Write(_root);
                foreach (var w in Writes)
                {
                    var full = _root.Resolve(w.HostPath);
                    if (w.Content is null)
                    {
                        HostFiles.Delete(full, w.HostPath);
                    }
                    else
                    {
                        var dir = Path.GetDirectoryName(full) ?? "/";
                        if (!Directory.Exists(dir))
                        {
                            createdDirs.Add(NearestMissing(dir));
                            Directory.CreateDirectory(dir);
                        }
                        HostFiles.WriteAtomically(full, w.HostPath, w.Content, w.NewFileMode);
                    }
                    applied.Add(w);
                }
                intent.Document.Phase = BootIntentPhase.Regenerate;
                intent.Write(_root);
            }
            catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException)
            {
                var problems = Rollback(applied, guarded, backups, createdDirs);
                Settle(intent, problems, createdDirs);
                if (e is GpuVirtException g && problems.Count == 0) throw g;
                throw new GpuVirtException(ErrorIds.BootFileWriteFailed, ErrorKind.WriteError,
                    e.Message + RestoreText(problems, backups), e is GpuVirtException ge ? ge.Target : null, e);
            }

            for (var i = 0; i < Commands.Count; i++)
            {
                var c = Commands[i];
                Progress?.Invoke(c, i, Commands.Count);
                try
                {
                    runner.RunOnHost(_root, c.Program, c.Arguments, cancellationToken, timeout: CommandTimeout);
                    ran.Add(c.ToString());
                    intent.Document.CommandsDone = i + 1;
                    intent.Write(_root);
                }
                catch (GpuVirtException e)
                {
                    throw Failed(c, e, applied, guarded, backups, createdDirs, intent, string.Empty);
                }
            }
            PutBackKept(applied, guarded, backups, createdDirs, intent);

            var files = Writes.Select(w => new BootFileChange(w.HostPath, w.Action, backups.TryGetValue(w, out var b) ? b : null, w.Before, w.After)).ToList();
            if (recorder != null) recorder.Record(Journaled(record!, guarded, backups));
            BootIntent.Remove(_root);
            return (files, ran);
        }

        /// <summary>The intent of this transaction, before its first file is written.</summary>
        private BootIntent Intent(Dictionary<string, string> guarded, Dictionary<FileWrite, string> backups, ChangeRecorder? recorder, ChangeRecord? record) =>
            new BootIntent(new BootIntentDocument
            {
                Action = Action,
                Phase = BootIntentPhase.Files,
                Files = Writes.Select(w => new BootIntentFile
                {
                    Path = w.HostPath,
                    Before = BootIntent.Encode(w.Original),
                    After = BootIntent.Encode(w.Content),
                    Mode = w.NewFileMode,
                    Backup = backups.TryGetValue(w, out var b) ? b : null,
                }).ToList(),
                Guarded = guarded.Select(g => new FileState { Path = g.Key, Content = FileState.Encode(g.Value) }).ToList(),
                Kept = _kept.Select(k => new FileState { Path = k.Key, Content = k.Value is null ? null : FileState.Encode(k.Value) }).ToList(),
                Commands = Commands.Select(c => new List<string> { c.Program }.Concat(c.Arguments).ToList()).ToList(),
                Record = recorder is null ? null : record,
                ImportBootEdits = recorder?.ImportBootEdits ?? false,
            });

        /// <summary>A program failed (or was stopped): every file is put back, and the error says what it did and what was restored.</summary>
        private GpuVirtException Failed(HostCommand c, GpuVirtException e, List<FileWrite> applied, Dictionary<string, string> guarded,
            Dictionary<FileWrite, string> backups, List<string> createdDirs, BootIntent? intent, string prefix)
        {
            var problems = Rollback(applied, guarded, backups, createdDirs);
            Settle(intent, problems, createdDirs);
            var result = e.Target as CommandResult;
            var timedOut = e.ErrorId == ErrorIds.ProgramTimedOut;
            var what = result != null
                ? $"'{c}' failed with exit code {result.ExitCode}: {FirstText(result.StandardError, result.StandardOutput)}"
                : timedOut
                    ? $"'{c}' did not finish within {CommandTimeout.TotalSeconds:0} s and was stopped with every process it had started (a longer bound: $GpuVirtRegenerationTimeout, in seconds)."
                    : e.Message;
            var id = e.ErrorId == ErrorIds.OperationStopped ? ErrorIds.OperationStopped : timedOut ? ErrorIds.BootRegenerationTimedOut : ErrorIds.BootRegenerationFailed;
            var kind = e.ErrorId == ErrorIds.OperationStopped || timedOut ? ErrorKind.OperationStopped : ErrorKind.InvalidOperation;
            return new GpuVirtException(id, kind, prefix + what + RestoreText(problems, backups), (object?)result ?? c.ToString(), e);
        }

        /// <summary>After a rollback: no intent left when every file is back; one that takes them back next time when some are not.</summary>
        private void Settle(BootIntent? intent, List<string> problems, List<string> createdDirs)
        {
            if (intent is null) return;
            try
            {
                if (problems.Count == 0)
                {
                    BootIntent.Remove(_root);
                    RemoveEmpty(createdDirs);
                }
                else
                {
                    intent.Document.Phase = BootIntentPhase.Files;
                    intent.Write(_root);
                }
            }
            catch (GpuVirtException e)
            {
                problems.Add(BootIntent.HostPath + ": " + e.Message);
            }
        }

        /// <summary>
        /// Finishes or takes back a boot change that was killed half-way (call under the host lock, before planning
        /// from the files): killed while its files were replaced, each file that holds the new content gets the old one
        /// back (its backups, now the same as the file, are removed); killed while its programs ran, the programs not
        /// finished run again (the interrupted one included: they build from the files, and rpm-ostree is asked
        /// <c>--append-if-missing</c>/<c>--delete-if-present</c>), and the change is journaled as it would have been. A
        /// program that fails again puts every file back, as a failing program does in <see cref="Execute"/>.
        /// Returns null when nothing was pending.
        /// </summary>
        internal static BootRecovery? Recover(HostRoot root, ProcessRunner runner, CancellationToken cancellationToken, TimeSpan? commandTimeout = null)
        {
            // What a command killed half-way left of its atomic writes beside the intent and the journal first.
            HostFiles.RemoveLeftovers(root, new[] { BootIntent.HostPath, ChangeJournal.HostPath, BootEditLog.HostPath });
            var intent = BootIntent.Read(root);
            if (intent is null) return null;
            // ... and beside the files the interrupted change wrote (its record is trusted by now).
            HostFiles.RemoveLeftovers(root, intent.Document.Files.SelectMany(f => new[] { f.Path, f.Backup }).Concat(intent.Document.Guarded.Select(g => g.Path)).Where(p => p != null)!);
            var doc = intent.Document;
            var t = new BootTransaction(root) { Action = doc.Action, CommandTimeout = commandTimeout ?? DefaultCommandTimeout };
            var backups = new Dictionary<FileWrite, string>();
            foreach (var f in doc.Files)
            {
                var w = new FileWrite(f.Path, BootIntent.Decode(f.Before), BootIntent.Decode(f.After), backup: f.Backup != null, newFileMode: f.Mode);
                t.Writes.Add(w);
                if (f.Backup != null) backups[w] = f.Backup;
            }
            foreach (var c in doc.Commands) t.Commands.Add(new HostCommand(c[0], c.Skip(1).ToArray()));
            var guarded = doc.Guarded.ToDictionary(g => g.Path, g => g.Text ?? string.Empty);
            t._kept = (doc.Kept ?? new List<FileState>()).ToDictionary(k => k.Path, k => k.Text, StringComparer.Ordinal);

            if (doc.Phase == BootIntentPhase.Files)
            {
                var written = new List<FileWrite>();
                var left = new List<string>();
                foreach (var w in t.Writes)
                {
                    var now = t.ReadNow(w.HostPath);
                    if (string.Equals(now, w.Original, StringComparison.Ordinal)) continue;
                    if (string.Equals(now, w.Content, StringComparison.Ordinal)) written.Add(w);
                    else left.Add(w.HostPath);
                }
                var problems = t.Rollback(written, new Dictionary<string, string>(), left.Count == 0 ? backups : new Dictionary<FileWrite, string>(), new List<string>());
                if (problems.Count > 0)
                {
                    throw new GpuVirtException(ErrorIds.BootFileWriteFailed, ErrorKind.WriteError,
                        $"{intent.Describe()} Putting them back failed: {string.Join("; ", problems)}. '{BootIntent.HostPath}' is kept for the next run; the previous content is in: {string.Join(", ", backups.Values)}.", BootIntent.HostPath);
                }
                BootIntent.Remove(root);
                return new BootRecovery(intent, written.Select(w => w.HostPath).ToList(), Array.Empty<string>(), left);
            }

            var ran = new List<string>();
            for (var i = doc.CommandsDone; i < t.Commands.Count; i++)
            {
                var c = i == doc.CommandsDone ? Resumable(t.Commands[i]) : t.Commands[i];
                try
                {
                    runner.RunOnHost(root, c.Program, c.Arguments, cancellationToken, timeout: t.CommandTimeout);
                    ran.Add(c.ToString());
                    doc.CommandsDone = i + 1;
                    intent.Write(root);
                }
                catch (GpuVirtException e)
                {
                    throw t.Failed(c, e, t.Writes.ToList(), guarded, backups, new List<string>(), intent,
                        $"{doc.Action} had been interrupted before its programs finished, and running them again failed: ");
                }
            }
            t.PutBackKept(t.Writes.ToList(), guarded, backups, new List<string>(), intent);
            if (doc.Record != null)
            {
                var journal = new ChangeJournal(root);
                // A kill after the journal took the record and before the intent was removed: it is not journaled twice.
                var already = journal.Read().Any(r => r.Time == doc.Record.Time && r.Command == doc.Record.Command && r.CommandLine == doc.Record.CommandLine);
                if (!already)
                {
                    try
                    {
                        journal.Append(t.Journaled(doc.Record, guarded, backups), doc.ImportBootEdits, cancellationToken, null);
                    }
                    catch (GpuVirtException e)
                    {
                        throw new GpuVirtException(ErrorIds.JournalWriteFailed, ErrorKind.WriteError,
                            $"The interrupted {doc.Action} was finished but could not be journaled: {e.Message} '{BootIntent.HostPath}' is kept; the next boot command journals it.", e.Target, e);
                    }
                }
            }
            BootIntent.Remove(root);
            return new BootRecovery(intent, Array.Empty<string>(), ran, Array.Empty<string>());
        }

        /// <summary>
        /// The interrupted program as it is run again: a program that builds from the files runs as it was; rpm-ostree,
        /// which edits the deployment, is asked for only what is missing (<c>--append-if-missing</c>, <c>--delete-if-present</c>).
        /// </summary>
        private static HostCommand Resumable(HostCommand c)
        {
            if (c.Program != "rpm-ostree") return c;
            return new HostCommand(c.Program, c.Arguments.Select(a =>
                a.StartsWith("--append=", StringComparison.Ordinal) ? "--append-if-missing=" + a.Substring("--append=".Length)
                : a.StartsWith("--delete=", StringComparison.Ordinal) ? "--delete-if-present=" + a.Substring("--delete=".Length)
                : a).ToArray());
        }

        private string? ReadNow(string hostPath)
        {
            var full = _root.Resolve(hostPath);
            return File.Exists(full) ? HostFiles.ReadText(full, hostPath) : null;
        }

        /// <summary>The journal record of the executed transaction: each file before and after, and how to put it back.</summary>
        private ChangeRecord Journaled(ChangeRecord record, Dictionary<string, string> guarded, Dictionary<FileWrite, string> backups)
        {
            var restore = new List<FileState>();
            foreach (var w in Writes)
            {
                record.FileChanges.Add(new ChangeFile
                {
                    Path = w.HostPath,
                    Action = w.Action,
                    Backup = backups.TryGetValue(w, out var b) ? b : null,
                    BeforeSha256 = FileState.Hash(w.Original),
                    AfterSha256 = FileState.Hash(w.Content),
                });
                restore.Add(new FileState { Path = w.HostPath, Content = w.Original is null ? null : FileState.Encode(w.Original), Expected = FileState.Hash(w.Content), Mode = w.NewFileMode });
            }
            // Files a program changed (BLS entries, grubenv): put back as they were, instead of running the program backwards.
            foreach (var pair in guarded)
            {
                var full = _root.Resolve(pair.Key);
                var now = File.Exists(full) ? HostFiles.ReadText(full, pair.Key) : null;
                if (now == pair.Value) continue;
                record.FileChanges.Add(new ChangeFile { Path = pair.Key, Action = now is null ? BootFileAction.Removed : BootFileAction.Modified, BeforeSha256 = FileState.Hash(pair.Value), AfterSha256 = FileState.Hash(now) });
                restore.Add(new FileState { Path = pair.Key, Content = FileState.Encode(pair.Value), Expected = FileState.Hash(now) });
            }
            var regenerate = Commands.Where(Regenerates).ToList();
            var description = "put back " + string.Join(", ", restore.Select(f => f.Path)) +
                (regenerate.Count > 0 ? "; run " + string.Join("; ", regenerate.Select(c => c.ToString())) : string.Empty);
            record.Inverse.Add(new InverseStep
            {
                Kind = InverseKind.RestoreFiles,
                Description = description,
                Files = restore,
                Commands = regenerate.Select(c => new List<string> { c.Program }.Concat(c.Arguments).ToList()).ToList(),
            });
            return record;
        }

        /// <summary>
        /// A program that builds its output from the files (grub2-mkconfig, dracut), not one that edits its entries itself
        /// (grubby, kernelstub, rpm-ostree): running one of those again on undo would add the arguments back.
        /// </summary>
        private static bool Regenerates(HostCommand command) => command.Program != "grubby" && command.Program != "kernelstub" && command.Program != "rpm-ostree";

        private static string NearestMissing(string dir)
        {
            var d = dir;
            while (true)
            {
                var parent = Path.GetDirectoryName(d);
                if (parent is null || Directory.Exists(parent)) return d;
                d = parent;
            }
        }

        /// <summary>Puts every applied file back; returns what could not be restored.</summary>
        private List<string> Rollback(List<FileWrite> applied, Dictionary<string, string> guarded, Dictionary<FileWrite, string> backups, List<string> createdDirs)
        {
            var problems = new List<string>();
            for (var i = applied.Count - 1; i >= 0; i--)
            {
                var w = applied[i];
                try
                {
                    var full = _root.Resolve(w.HostPath);
                    if (w.Original is null) HostFiles.Delete(full, w.HostPath);
                    else HostFiles.WriteAtomically(full, w.HostPath, w.Original, w.NewFileMode);
                }
                catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException)
                {
                    problems.Add(w.HostPath + ": " + e.Message);
                }
            }
            foreach (var pair in guarded)
            {
                try
                {
                    var full = _root.Resolve(pair.Key);
                    var now = File.Exists(full) ? HostFiles.ReadText(full, pair.Key) : null;
                    if (now != pair.Value) HostFiles.WriteAtomically(full, pair.Key, pair.Value);
                }
                catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException)
                {
                    problems.Add(pair.Key + ": " + e.Message);
                }
            }
            // A kept file this transaction does not write holds what it had: a program that wrote it is undone too.
            foreach (var pair in _kept.Where(k => !Writes.Any(w => w.HostPath == k.Key) && !guarded.ContainsKey(k.Key)))
            {
                problems.AddRange(PutBack(pair.Key, pair.Value));
            }
            if (problems.Count == 0)
            {
                // Nothing changed in the end: the backups would only mislead.
                foreach (var b in backups.Values)
                {
                    try
                    {
                        HostFiles.Delete(_root.Resolve(b), b);
                    }
                    catch (GpuVirtException)
                    {
                    }
                }
                RemoveEmpty(createdDirs);
            }
            return problems;
        }

        /// <summary>
        /// After the commands: each kept path put back to what the transaction made it (a program that rewrote it, such
        /// as grubby-bls rewriting <c>/etc/default/grub</c>, is undone for that file). When that fails, the whole change
        /// is taken back as for a failing program.
        /// </summary>
        private void PutBackKept(List<FileWrite> applied, Dictionary<string, string> guarded, Dictionary<FileWrite, string> backups, List<string> createdDirs, BootIntent? intent)
        {
            var problems = new List<string>();
            foreach (var pair in _kept) problems.AddRange(PutBack(pair.Key, pair.Value));
            if (problems.Count == 0) return;
            var undone = Rollback(applied, guarded, backups, createdDirs);
            Settle(intent, undone, createdDirs);
            throw new GpuVirtException(ErrorIds.BootFileWriteFailed, ErrorKind.WriteError,
                $"The programs rewrote {string.Join(", ", _kept.Keys)} and putting back what this change wrote failed: {string.Join("; ", problems)}." + RestoreText(undone, backups),
                _kept.Keys.First());
        }

        /// <summary>Makes a file hold <paramref name="content"/> (null: no file) when it holds something else; returns what failed.</summary>
        private IEnumerable<string> PutBack(string hostPath, string? content)
        {
            try
            {
                var now = ReadNow(hostPath);
                if (string.Equals(now, content, StringComparison.Ordinal)) return Array.Empty<string>();
                var full = _root.Resolve(hostPath);
                if (content is null) HostFiles.Delete(full, hostPath);
                else HostFiles.WriteAtomically(full, hostPath, content);
                return Array.Empty<string>();
            }
            catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException)
            {
                return new[] { hostPath + ": " + e.Message };
            }
        }

        /// <summary>Removes the directories this transaction created that hold no file (after a rollback).</summary>
        private static void RemoveEmpty(List<string> createdDirs)
        {
            foreach (var d in createdDirs)
            {
                try
                {
                    if (Directory.Exists(d) && !Directory.EnumerateFileSystemEntries(d, "*", SearchOption.AllDirectories).Any(p => File.Exists(p)))
                        Directory.Delete(d, true);
                }
                catch (IOException)
                {
                }
            }
        }

        private static string RestoreText(List<string> problems, Dictionary<FileWrite, string> backups)
        {
            if (problems.Count == 0) return " Every edited file was restored; nothing was changed.";
            return " Some files could not be restored: " + string.Join("; ", problems) +
                   (backups.Count > 0 ? ". Their previous content is in: " + string.Join(", ", backups.Values) : string.Empty) + ".";
        }

        private static string FirstText(string stderr, string stdout)
        {
            var text = (string.IsNullOrWhiteSpace(stderr) ? stdout : stderr).Trim();
            return text.Length == 0 ? "(no output)" : text;
        }
    }
}
