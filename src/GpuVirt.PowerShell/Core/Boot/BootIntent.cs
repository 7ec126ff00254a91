using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Boot
{
    /// <summary>How far an interrupted boot change got.</summary>
    internal enum BootIntentPhase
    {
        /// <summary>The files were being replaced: some may hold the new content, some the old. Recovery puts every one back.</summary>
        Files,

        /// <summary>Every file was written; the programs that make them take effect had not all finished. Recovery runs the rest again.</summary>
        Regenerate,
    }

    /// <summary>One file of a boot change in progress: what it held before and what the change writes.</summary>
    internal sealed class BootIntentFile
    {
        public string Path { get; set; } = string.Empty;

        /// <summary>The content before the change (base64 of the bytes); null: the file did not exist.</summary>
        public string? Before { get; set; }

        /// <summary>The content the change writes (base64); null: the change deletes the file.</summary>
        public string? After { get; set; }

        public int Mode { get; set; } = 0x1a4;

        /// <summary>The copy of the file made before the change, if one was.</summary>
        public string? Backup { get; set; }
    }

    /// <summary>The intent record as stored (JSON, like the change journal).</summary>
    internal sealed class BootIntentDocument : IStateDocument
    {
        public string? Format { get; set; }
        public int Version { get; set; }
        public string Action { get; set; } = string.Empty;
        public BootIntentPhase Phase { get; set; }

        /// <summary>How many of <see cref="Commands"/> had finished.</summary>
        public int CommandsDone { get; set; }

        public List<BootIntentFile> Files { get; set; } = new List<BootIntentFile>();

        /// <summary>Files the programs may change (BLS entries), as they were before: put back on a rollback.</summary>
        public List<FileState> Guarded { get; set; } = new List<FileState>();

        /// <summary>Files the programs must leave as the change made them (<c>/etc/default/grub</c> under grubby-bls): put back after they ran.</summary>
        public List<FileState>? Kept { get; set; }

        public List<List<string>> Commands { get; set; } = new List<List<string>>();

        /// <summary>The journal record the change appends once it is finished (null: the change is not journaled).</summary>
        public ChangeRecord? Record { get; set; }

        /// <summary>Whether the journal starts with the boot edit record when it does not exist yet (see <see cref="ChangeRecorder"/>).</summary>
        public bool ImportBootEdits { get; set; }
    }

    /// <summary>
    /// The intent of a boot change, written atomically (through <see cref="HostFiles"/>) before the first file is
    /// replaced and removed once the change is journaled: each file's content before and after, the programs that
    /// make them take effect and how many of them finished, and the journal record to append. When a change is killed
    /// half-way, the next boot command finds it under the host lock (so its writer is gone) and puts every file back
    /// (killed while the files were replaced) or runs the remaining programs again and journals the change (killed
    /// while they ran): a file edit and its record are one unit, and a regeneration is never silently lost.
    /// </summary>
    internal sealed class BootIntent
    {
        public const string HostPath = "/var/lib/gpuvirt/boot-pending.json";
        public const string FormatName = "GpuVirt boot change in progress";
        public const int FormatVersion = 1;

        internal BootIntent(BootIntentDocument document)
        {
            Document = document;
        }

        internal BootIntentDocument Document { get; }

        /// <summary>The cmdlet whose change was interrupted (<c>Enable-IommuBoot</c>).</summary>
        public string Action => Document.Action;

        public BootIntentPhase Phase => Document.Phase;

        /// <summary>The host paths of the files the change writes.</summary>
        public IReadOnlyList<string> Files => Document.Files.Select(f => f.Path).ToList();

        /// <summary>The programs not yet finished, as command lines.</summary>
        public IReadOnlyList<string> PendingCommands => Document.Commands.Skip(Document.CommandsDone).Select(c => ProcessRunner.Render(c[0], c.Skip(1))).ToList();

        private const string Next = "the next boot command (Enable-IommuBoot, Disable-IommuBoot, Disable-NouveauDriver, Enable-NouveauDriver)";

        /// <summary>One sentence for a person: what was interrupted and what the next boot command does about it.</summary>
        public string Describe()
        {
            var files = string.Join(", ", Files);
            if (Phase == BootIntentPhase.Files) return $"{Action} was interrupted while it replaced {files}: {Next} puts them back as they were.";
            var pending = PendingCommands;
            return pending.Count == 0
                ? $"{Action} was interrupted after it wrote {files} and ran its programs, before it was journaled: {Next} journals it."
                : $"{Action} was interrupted after it wrote {files} and before '{string.Join("; ", pending)}' finished: {Next} runs {(pending.Count == 1 ? "it" : "them")} again.";
        }

        public override string ToString() => Describe();

        /// <summary>The pending intent under the root, or null.</summary>
        public static BootIntent? Read(HostRoot root)
        {
            var doc = ChangeJournal.ReadStateDocument<BootIntentDocument>(root, HostPath, FormatName, FormatVersion, ErrorIds.BootChangeRecordUnreadable, "boot change", Unreadable);
            if (doc is null) return null;
            if (doc.Files is null || doc.Commands is null || doc.Guarded is null || doc.Commands.Any(c => c is null || c.Count == 0) || doc.CommandsDone < 0 || doc.CommandsDone > doc.Commands.Count)
                throw Unreadable("its files or programs are missing", null);
            CheckTrusted(doc);
            return new BootIntent(doc);
        }

        /// <summary>
        /// Refuses an intent that no GpuVirt wrote as it stands (edited, or damaged on disk): every path absolute and
        /// inside the root, every content valid base64, modes that are modes, programs with names. Recovery acts on
        /// nothing of a record it cannot trust: <see cref="ErrorIds.BootIntentDamaged"/>, naming what is wrong.
        /// </summary>
        private static void CheckTrusted(BootIntentDocument doc)
        {
            foreach (var f in doc.Files)
            {
                if (f is null) throw Damaged("a file entry is empty");
                CheckPath(f.Path, "a file");
                if (f.Backup != null) CheckPath(f.Backup, "the backup of " + f.Path);
                CheckContent(f.Before, "the content of " + f.Path + " before the change");
                CheckContent(f.After, "the content the change writes to " + f.Path);
                if (f.Mode < 0 || f.Mode > 0xfff) throw Damaged($"the mode of {f.Path} is {f.Mode}, which is no permission mode");
            }
            foreach (var g in doc.Guarded)
            {
                if (g is null) throw Damaged("a guarded file entry is empty");
                CheckPath(g.Path, "a guarded file");
                CheckContent(g.Content, "the content of " + g.Path);
            }
            if (doc.Commands.Any(c => c.Any(a => a is null) || string.IsNullOrWhiteSpace(c[0])))
                throw Damaged("a program has no name or an empty argument");
        }

        private static void CheckPath(string? path, string what)
        {
            if (string.IsNullOrEmpty(path)) throw Damaged($"{what} has no path");
            if (path![0] != '/' || path.IndexOf('\0') >= 0 || path.Split('/').Any(p => p == ".."))
                throw Damaged($"{what} is named '{path}', which is no absolute path inside the host root");
        }

        private static void CheckContent(string? base64, string what)
        {
            if (base64 is null) return;
            try
            {
                Convert.FromBase64String(base64);
            }
            catch (FormatException)
            {
                throw Damaged($"{what} is not valid base64");
            }
        }

        private static GpuVirtException Damaged(string why) =>
            new GpuVirtException(ErrorIds.BootIntentDamaged, ErrorKind.InvalidData,
                $"The record of an interrupted boot change '{HostPath}' is damaged: {why}. No recovery was made from it and nothing was changed. " +
                "Compare the files it names with their backups (*.gpuvirt-*.bak), put them right, and remove it.", HostPath);

        private static GpuVirtException Unreadable(string why, Exception? inner) =>
            new GpuVirtException(ErrorIds.BootChangeRecordUnreadable, ErrorKind.InvalidData,
                $"The record of an interrupted boot change '{HostPath}' cannot be read: {why}. Nothing was changed. Compare the files it names with their " +
                "backups (*.gpuvirt-*.bak), put them right, and remove it.", HostPath, inner);

        internal void Write(HostRoot root)
        {
            Document.Format = FormatName;
            Document.Version = FormatVersion;
            // 0600: it holds copies of boot files and the command line.
            HostFiles.WriteStateFile(root.Resolve(root.ResolveLinks(HostPath)), HostPath,
                JsonSerializer.Serialize(Document, ChangeJournal.SerializerOptions) + "\n", ErrorIds.BootFileWriteFailed);
        }

        internal static void Remove(HostRoot root)
        {
            var hostPath = root.ResolveLinks(HostPath);
            HostFiles.Delete(root.Resolve(hostPath), HostPath);
        }

        internal static string? Decode(string? base64) => base64 is null ? null : HostFiles.Bytes.GetString(Convert.FromBase64String(base64));

        internal static string? Encode(string? text) => text is null ? null : FileState.Encode(text);
    }

    /// <summary>What the recovery of an interrupted boot change did.</summary>
    internal sealed class BootRecovery
    {
        internal BootRecovery(BootIntent intent, IReadOnlyList<string> restored, IReadOnlyList<string> commands, IReadOnlyList<string> left)
        {
            Intent = intent;
            Restored = restored;
            Commands = commands;
            Left = left;
        }

        public BootIntent Intent { get; }

        /// <summary>Files put back as they were before the interrupted change.</summary>
        public IReadOnlyList<string> Restored { get; }

        /// <summary>Programs run again, as command lines.</summary>
        public IReadOnlyList<string> Commands { get; }

        /// <summary>Files that held neither the old nor the new content (edited by hand since): left as they are.</summary>
        public IReadOnlyList<string> Left { get; }

        public override string ToString()
        {
            if (Intent.Phase == BootIntentPhase.Files)
            {
                var text = $"Took back the interrupted {Intent.Action}: {(Restored.Count == 0 ? "no file had been changed yet" : "put back " + string.Join(", ", Restored))}.";
                return Left.Count == 0 ? text : text + $" Left as they are (changed since): {string.Join(", ", Left)}.";
            }
            return $"Finished the interrupted {Intent.Action}: {(Commands.Count == 0 ? "journaled it" : "ran " + string.Join("; ", Commands))}.";
        }
    }
}
