using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using GpuVirt.Core.Boot;

namespace GpuVirt.Core.Journal
{
    /// <summary>The journal file as stored: a format name, its version and the records, oldest first.</summary>
    internal sealed class JournalDocument
    {
        public string? Format { get; set; }
        public int Version { get; set; }
        public List<ChangeRecord>? Records { get; set; }
    }

    /// <summary>
    /// The one journal of every change the module applied to a host, kept under the host root in
    /// <c>/var/lib/gpuvirt/journal.json</c>. Each append takes an exclusive lock, reads the journal again, adds the
    /// record with the next id and replaces the file atomically (a reader sees the old journal or the new one), so two
    /// commands at once lose nothing. A journal that cannot be read, or one written by a newer version of the module,
    /// is a clear error and is never overwritten. Kernel argument edits recorded before the journal existed
    /// (<see cref="BootEditLog"/>) become its first record.
    /// </summary>
    internal sealed class ChangeJournal
    {
        public const string HostPath = "/var/lib/gpuvirt/journal.json";
        public const string FormatName = "GpuVirt change journal";

        /// <summary>The most a journal may hold when read (each record carries whole files and definitions): larger is <see cref="ErrorIds.HostFileTooLarge"/>.</summary>
        public const long MaxBytes = 256L * 1024 * 1024;

        /// <summary>The version this module writes; it reads this one and older ones.</summary>
        public const int FormatVersion = 1;

        private static readonly JsonSerializerOptions Options = CreateOptions();

        /// <summary>How the journal's records are written, for files that carry one (an interrupted boot change's intent).</summary>
        internal static JsonSerializerOptions SerializerOptions => Options;

        public ChangeJournal(HostRoot root)
        {
            Root = root ?? throw new ArgumentNullException(nameof(root));
        }

        public HostRoot Root { get; }

        /// <summary>How long to wait for the host lock when no command holds it yet (the cmdlets' <c>$GpuVirtLockTimeout</c>); null for the lock's default.</summary>
        public TimeSpan? LockTimeout { get; set; }

        /// <summary>The records, oldest first, each marked undone when an undo record took it back.</summary>
        public IReadOnlyList<ChangeRecord> Read() => Load(out _);

        /// <summary>Takes the journal's lock, for reading and appending records as one step; dispose to release it.</summary>
        public JournalSession Open(CancellationToken cancellationToken = default, Action<string>? waiting = null) => Open(true, cancellationToken, waiting);

        /// <summary>
        /// The same; <paramref name="importBootEdits"/> false leaves the boot edit record out of a journal that does not
        /// exist yet (the command that is being journaled wrote it).
        /// </summary>
        internal JournalSession Open(bool importBootEdits, CancellationToken cancellationToken, Action<string>? waiting)
        {
            // The host's one lock (re-entrant): a command that changes the host and journals it holds it already.
            var lockHandle = HostLock.Acquire(Root, "write the change journal", cancellationToken, LockTimeout, waiting);
            try
            {
                return new JournalSession(this, lockHandle, importBootEdits);
            }
            catch
            {
                lockHandle.Dispose();
                throw;
            }
        }

        /// <summary>Appends one record under the lock; returns it with its id.</summary>
        public ChangeRecord Append(ChangeRecord record, CancellationToken cancellationToken = default, Action<string>? waiting = null) =>
            Append(record, true, cancellationToken, waiting);

        internal ChangeRecord Append(ChangeRecord record, bool importBootEdits, CancellationToken cancellationToken, Action<string>? waiting)
        {
            using (var session = Open(importBootEdits, cancellationToken, waiting))
            {
                return session.Append(record);
            }
        }

        /// <summary>True when the journal file exists under the root.</summary>
        public bool Exists => File.Exists(Root.Resolve(HostPath));

        internal List<ChangeRecord> Load(out bool exists, bool importBootEdits = true)
        {
            var full = Root.Resolve(HostPath);
            exists = File.Exists(full);
            var records = exists ? Parse(Decode(FileReads.ReadBytes(full, HostPath, MaxBytes)), HostPath) : importBootEdits ? ImportBootEdits() : new List<ChangeRecord>();
            foreach (var r in records) r.Root = Root.Directory;
            Mark(records);
            return records;
        }

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        /// <summary>UTF-8 without a byte order mark, as the journal and the intent are written.</summary>
        internal static readonly UTF8Encoding Utf8 = HostFiles.Utf8;

        /// <summary>
        /// Reads one of GpuVirt's own state documents (an intent) under the root: null when there is none; else the
        /// document, which must be JSON that names <paramref name="formatName"/> and a version this module reads. A
        /// document that is not is <paramref name="unreadable"/>'s error; one from a newer GpuVirt is <paramref name="newerId"/>.
        /// </summary>
        internal static T? ReadStateDocument<T>(HostRoot root, string hostPath, string formatName, int formatVersion, string newerId,
            string what, Func<string, Exception?, GpuVirtException> unreadable) where T : class, IStateDocument
        {
            var full = root.Resolve(root.ResolveLinks(hostPath));
            if (!File.Exists(full)) return null;
            var text = Decode(FileReads.ReadBytes(full, hostPath));
            T? doc;
            try
            {
                doc = JsonSerializer.Deserialize<T>(text, SerializerOptions);
            }
            catch (JsonException e)
            {
                throw unreadable($"it is not valid JSON ({e.Message})", e);
            }
            if (doc is null || doc.Format != formatName || doc.Version < 1) throw unreadable($"it does not start as a {formatName} does", null);
            if (doc.Version > formatVersion)
            {
                throw new GpuVirtException(newerId, ErrorKind.InvalidData,
                    $"'{hostPath}' was written by a newer GpuVirt (format version {doc.Version}): finish the interrupted {what} with that version.", hostPath);
            }
            return doc;
        }

        /// <summary>
        /// The text of a journal or intent file: UTF-8, as this module writes them. A file that is not valid UTF-8 was
        /// written by an older GpuVirt, which wrote one byte per character (Latin-1; characters above U+00FF were lost
        /// then already): read the same way, so that every character it kept reads back as it was.
        /// </summary>
        internal static string Decode(byte[] bytes)
        {
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                return HostFiles.Bytes.GetString(bytes);
            }
        }

        /// <summary>Reads a journal's text; a <see cref="ErrorIds.JournalUnreadable"/> or <see cref="ErrorIds.JournalVersionNotSupported"/> error otherwise.</summary>
        public static List<ChangeRecord> Parse(string text, string hostPath = HostPath)
        {
            JournalDocument? doc;
            try
            {
                doc = JsonSerializer.Deserialize<JournalDocument>(text, Options);
            }
            catch (JsonException e)
            {
                throw Unreadable(hostPath, $"it is not valid JSON ({e.Message})", e);
            }
            catch (NotSupportedException e)
            {
                throw Unreadable(hostPath, e.Message, e);
            }
            if (doc is null || doc.Format != FormatName)
                throw Unreadable(hostPath, $"it does not start as a {FormatName} does (\"Format\": \"{FormatName}\")", null);
            if (doc.Version > FormatVersion)
            {
                throw new GpuVirtException(ErrorIds.JournalVersionNotSupported, ErrorKind.InvalidData,
                    $"The change journal '{hostPath}' has format version {doc.Version.ToString(CultureInfo.InvariantCulture)}, newer than the " +
                    $"{FormatVersion.ToString(CultureInfo.InvariantCulture)} this GpuVirt reads: a newer GpuVirt wrote it. Use that version " +
                    "(Update-Module GpuVirt); this one leaves the journal as it is and changes nothing.", hostPath);
            }
            if (doc.Version < 1 || doc.Records is null)
                throw Unreadable(hostPath, "it has no version or no records", null);
            var seen = new HashSet<long>();
            foreach (var r in doc.Records)
            {
                if (r is null || r.Id < 1 || !seen.Add(r.Id))
                    throw Unreadable(hostPath, "a record has no id, or an id twice", null);
                r.Details ??= new List<ChangeDetail>();
                r.FileChanges ??= new List<ChangeFile>();
                r.Inverse ??= new List<InverseStep>();
            }
            return doc.Records.OrderBy(r => r.Id).ToList();
        }

        public static string Format(IEnumerable<ChangeRecord> records) =>
            JsonSerializer.Serialize(new JournalDocument { Format = FormatName, Version = FormatVersion, Records = records.OrderBy(r => r.Id).ToList() }, Options) + "\n";

        private static GpuVirtException Unreadable(string hostPath, string why, Exception? inner) =>
            new GpuVirtException(ErrorIds.JournalUnreadable, ErrorKind.InvalidData,
                $"The change journal '{hostPath}' cannot be read: {why}. It is left as it is and nothing was changed; " +
                "restore it from a backup, or move it aside to start a new journal.", hostPath, inner);

        private static void Mark(List<ChangeRecord> records)
        {
            var byId = records.ToDictionary(r => r.Id);
            foreach (var r in records.Where(r => r.Undoes.HasValue))
            {
                if (byId.TryGetValue(r.Undoes!.Value, out var undone)) undone.UndoneBy = r.Id;
            }
        }

        /// <summary>The boot edit record of a host that had no journal yet, as the journal's first record.</summary>
        private List<ChangeRecord> ImportBootEdits()
        {
            var full = Root.Resolve(BootEditLog.HostPath);
            if (!File.Exists(full)) return new List<ChangeRecord>();
            // The edit record of a boot change that was interrupted before it was journaled is that change's own,
            // not an older one: the change is journaled when the next boot command finishes it.
            if (BootIntent.Read(Root) is BootIntent pending && !pending.Document.ImportBootEdits && pending.Files.Contains(BootEditLog.HostPath))
                return new List<ChangeRecord>();
            var edits = BootEditLog.Read(Root);
            if (edits.Count == 0) return new List<ChangeRecord>();
            var files = edits.Select(e => e.File).Distinct(StringComparer.Ordinal).ToList();
            var words = edits.Where(e => e.Kind == BootEditKind.Add || e.Kind == BootEditKind.Replace)
                .Select(e => e.Key + "=" + e.Item).ToList();
            var record = new ChangeRecord
            {
                Id = 1,
                Time = File.GetLastWriteTimeUtc(full),
                User = "(unknown)",
                Command = "Enable-IommuBoot",
                CommandLine = $"(made before the journal; kept in {BootEditLog.HostPath})",
                Target = string.Join(", ", files),
                Action = "Edit the kernel command line",
                RebootRequired = true,
            };
            record.Details.Add(new ChangeDetail("kernel arguments added", null, words.Count > 0 ? string.Join(" ", words) : null));
            record.FileChanges.AddRange(files.Select(f => new ChangeFile { Path = f, Action = BootFileAction.Modified }));
            record.FileChanges.Add(new ChangeFile { Path = BootEditLog.HostPath, Action = BootFileAction.Created });
            record.Inverse.Add(new InverseStep
            {
                Kind = InverseKind.UndoBootEdits,
                Description = $"take back the kernel argument edits recorded in {BootEditLog.HostPath} (as Disable-IommuBoot does) and regenerate the boot configuration",
            });
            return new List<ChangeRecord> { record };
        }

        /// <summary>
        /// Removes the temporary files of atomic writes that a killed command left beside the journal, the intent and the
        /// files the recorded changes wrote (<see cref="HostFiles.RemoveLeftovers"/>). Call under the host lock.
        /// </summary>
        internal IReadOnlyList<string> RemoveLeftovers(IEnumerable<ChangeRecord> records)
        {
            var paths = new List<string> { HostPath, BootIntent.HostPath, BootEditLog.HostPath };
            foreach (var r in records)
            {
                paths.AddRange(r.FileChanges.Select(f => f.Path));
                paths.AddRange(r.FileChanges.Where(f => f.Backup != null).Select(f => f.Backup!));
                paths.AddRange(r.Inverse.SelectMany(i => i.Files ?? new List<FileState>()).Select(f => f.Path));
            }
            return HostFiles.RemoveLeftovers(Root, paths);
        }

        internal void Write(IEnumerable<ChangeRecord> records) =>
            // 0600 where new: command lines can name secrets.
            HostFiles.WriteStateFile(Root.Resolve(HostPath), HostPath, Format(records), ErrorIds.JournalWriteFailed);

        private static JsonSerializerOptions CreateOptions()
        {
            var options = new JsonSerializerOptions
            {
                WriteIndented = true,
                DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
                Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            };
            options.Converters.Add(new JsonStringEnumConverter());
            var records = new JsonSerializerOptions(options);
            records.Converters.Add(new ChangeRecordConverter(options));
            return records;
        }
    }

    /// <summary>The journal under its lock: the records as they are now, and appends that see every earlier one.</summary>
    internal sealed class JournalSession : IDisposable
    {
        private readonly ChangeJournal _journal;
        private readonly IDisposable _lock;
        private readonly List<ChangeRecord> _records;

        internal JournalSession(ChangeJournal journal, IDisposable lockHandle, bool importBootEdits)
        {
            _journal = journal;
            _lock = lockHandle;
            _records = journal.Load(out var exists, importBootEdits);
            // What a command killed half-way left of its atomic writes (under this lock no writer of the root is half-way).
            journal.RemoveLeftovers(_records);
            // A host with a boot edit record but no journal: the journal starts with that record, before any new change.
            if (!exists && _records.Count > 0) journal.Write(_records);
        }

        /// <summary>The records, oldest first.</summary>
        public IReadOnlyList<ChangeRecord> Records => _records;

        public ChangeRecord? Find(long id) => _records.FirstOrDefault(r => r.Id == id);

        /// <summary>Adds a record with the next id (the time and root filled in when missing) and writes the journal.</summary>
        public ChangeRecord Append(ChangeRecord record)
        {
            record.Id = NextId(_records);
            if (record.Time == default) record.Time = DateTime.UtcNow;
            record.Root = _journal.Root.Directory;
            var next = new List<ChangeRecord>(_records) { record };
            _journal.Write(next);
            _records.Add(record);
            if (record.Undoes is long undone && Find(undone) is ChangeRecord target) target.UndoneBy = record.Id;
            return record;
        }

        /// <summary>
        /// The id after the highest one. Ids are 64-bit: a journal never runs out of them in use; one whose highest id
        /// is already the last is refused (<see cref="ErrorIds.JournalIdsExhausted"/>) before anything is written, so
        /// that the journal stays one this module reads.
        /// </summary>
        internal static long NextId(IReadOnlyCollection<ChangeRecord> records)
        {
            var last = records.Count == 0 ? 0 : records.Max(r => r.Id);
            if (last == long.MaxValue)
            {
                throw new GpuVirtException(ErrorIds.JournalIdsExhausted, ErrorKind.InvalidData,
                    $"The change journal '{ChangeJournal.HostPath}' has a record with the id {last.ToString(CultureInfo.InvariantCulture)}, the last one there is: " +
                    "no record can follow it. It is left as it is; move it aside to start a new journal.", ChangeJournal.HostPath);
            }
            return last + 1;
        }

        public void Dispose() => _lock.Dispose();
    }

    /// <summary>
    /// What a changing command tells the core about itself so that the core can journal what it applies: the host,
    /// the libvirt URI, the cmdlet and its command line. <see cref="Check"/> before a change (an unreadable journal
    /// stops the command before anything is changed); <see cref="Record"/> after it.
    /// </summary>
    internal sealed class ChangeRecorder
    {
        private readonly CancellationToken _cancellationToken;
        private readonly Action<string>? _log;
        private bool _checked;
        private bool _importBootEdits = true;

        public ChangeRecorder(HostRoot root, string? connect, string command, string commandLine, CancellationToken cancellationToken = default, Action<string>? log = null, TimeSpan? lockTimeout = null)
        {
            Journal = new ChangeJournal(root) { LockTimeout = lockTimeout };
            Connect = connect;
            Command = command;
            CommandLine = commandLine;
            _cancellationToken = cancellationToken;
            _log = log;
        }

        public ChangeJournal Journal { get; }
        public string? Connect { get; set; }
        public string Command { get; }
        public string CommandLine { get; }

        /// <summary>The user as the journal names them: the login name, and who ran sudo.</summary>
        public static string CurrentUser()
        {
            var user = Environment.UserName;
            var sudo = Environment.GetEnvironmentVariable("SUDO_USER");
            return string.IsNullOrEmpty(sudo) || sudo == user ? user : $"{user} (sudo by {sudo})";
        }

        /// <summary>Fails, before anything is changed, when the journal cannot take a record (unreadable, or from a newer version). Writes nothing.</summary>
        public void Check()
        {
            if (_checked) return;
            // With neither a journal nor a boot edit record now, a boot edit record found later is this command's own.
            _importBootEdits = Journal.Exists || File.Exists(Journal.Root.Resolve(BootEditLog.HostPath));
            // A journal whose last id is the last one there is cannot take this change's record: said before the change.
            JournalSession.NextId(Journal.Read().ToList());
            _checked = true;
        }

        /// <summary>Whether the journal, when it does not exist yet, starts with the boot edit record (known after <see cref="Check"/>).</summary>
        internal bool ImportBootEdits => _importBootEdits;

        /// <summary>Fills in who, when, the command and its command line (the time only once: a record kept for later keeps it).</summary>
        internal ChangeRecord Stamp(ChangeRecord record)
        {
            record.User = CurrentUser();
            record.Command = Command;
            record.CommandLine = CommandLine;
            record.Connect ??= Connect;
            if (record.Time == default) record.Time = DateTime.UtcNow;
            return record;
        }

        /// <summary>Appends the record of an applied change: who, when, the host and the command line are filled in here.</summary>
        public ChangeRecord Record(ChangeRecord record)
        {
            Stamp(record);
            try
            {
                return Journal.Append(record, _importBootEdits, _cancellationToken, _log);
            }
            catch (GpuVirtException e)
            {
                throw new GpuVirtException(ErrorIds.JournalWriteFailed, ErrorKind.WriteError,
                    $"The change was made ({record.Action}: {record.Target}) but could not be journaled: {e.Message}", e.Target, e);
            }
        }
    }
}
