using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json.Serialization;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Journal
{
    /// <summary>What an inverse does: the kinds of change the journal knows how to take back.</summary>
    internal enum InverseKind
    {
        /// <summary>Files put back as they were (deleted when they did not exist), then the recorded programs run again.</summary>
        RestoreFiles,

        /// <summary>The kernel argument edits of the boot edit record taken back (what Disable-IommuBoot does).</summary>
        UndoBootEdits,

        /// <summary>A PCI function given back to its host driver (what Mount-GpuHostDriver does).</summary>
        ReattachDriver,

        /// <summary>A PCI function bound to a driver again (what Dismount-GpuHostDriver does).</summary>
        BindDriver,

        /// <summary>A hostdev detached from a guest (what Remove-GpuHostdev does).</summary>
        DetachHostdev,

        /// <summary>A hostdev attached to a guest again (what Add-GpuHostdev does).</summary>
        AttachHostdev,

        /// <summary>A vGPU removed, with its mdevctl definition when the change made one.</summary>
        RemoveVgpu,

        /// <summary>A vGPU made again with its UUID and type.</summary>
        CreateVgpu,

        /// <summary>A guest's definition defined again as it was.</summary>
        DefineDomain,

        /// <summary>An NVIDIA GPU's SR-IOV virtual functions set back to the count they had (0: disabled).</summary>
        SetSriovFunctions,
    }

    /// <summary>One thing a change changed, in words: what, and its value before and after.</summary>
    internal sealed class ChangeDetail
    {
        public ChangeDetail()
        {
        }

        public ChangeDetail(string what, string? before, string? after)
        {
            What = what;
            Before = before;
            After = after;
        }

        public string What { get; set; } = string.Empty;
        public string? Before { get; set; }
        public string? After { get; set; }

        public override string ToString() => $"{What}: {Before ?? "(none)"} -> {After ?? "(none)"}";
    }

    /// <summary>A file a change wrote, created or deleted, and where a copy of its previous content was kept.</summary>
    internal sealed class ChangeFile
    {
        public string Path { get; set; } = string.Empty;
        public BootFileAction Action { get; set; }

        /// <summary>The backup made next to it (host path), when there is one.</summary>
        public string? Backup { get; set; }

        /// <summary>SHA-256 (hex) of the content before and after; null where the file did not exist.</summary>
        public string? BeforeSha256 { get; set; }
        public string? AfterSha256 { get; set; }

        public override string ToString() => Path;
    }

    /// <summary>A file's content to put back, and the content the change left (which must still be there to undo it).</summary>
    internal sealed class FileState
    {
        public string Path { get; set; } = string.Empty;

        /// <summary>The content to write back (base64 of the bytes); null: the file is to be deleted.</summary>
        public string? Content { get; set; }

        /// <summary>SHA-256 (hex) of what the change left; null: the change left no file.</summary>
        public string? Expected { get; set; }

        /// <summary>The owner's permission bits for a file that is created again.</summary>
        public int Mode { get; set; } = 0x1a4;

        internal string? Text => Content is null ? null : HostFiles.Bytes.GetString(Convert.FromBase64String(Content));

        internal static string Encode(string text) => Convert.ToBase64String(HostFiles.Bytes.GetBytes(text));

        internal static string? Hash(string? text)
        {
            if (text is null) return null;
            using (var sha = SHA256.Create())
            {
                return string.Concat(sha.ComputeHash(HostFiles.Bytes.GetBytes(text)).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
    }

    /// <summary>
    /// The inverse of a change, as data: which kind of undo, and what it needs. Read back from the journal it says
    /// everything the undo does, with no other input.
    /// </summary>
    internal sealed class InverseStep
    {
        public InverseKind Kind { get; set; }

        /// <summary>What the undo does, in one line a user can read.</summary>
        public string Description { get; set; } = string.Empty;

        /// <summary>RestoreFiles: the files to put back.</summary>
        public List<FileState>? Files { get; set; }

        /// <summary>RestoreFiles: the programs to run afterwards (program, then its arguments), as the change ran them.</summary>
        public List<List<string>>? Commands { get; set; }

        /// <summary>A PCI function (drivers, PCI hostdevs, SR-IOV vGPUs).</summary>
        public string? Address { get; set; }

        /// <summary>DetachHostdev of a PCI hostdev: the function's <c>vendor:device</c> when it was attached (what the guest was given).</summary>
        public string? Ids { get; set; }

        /// <summary>The driver to bind or to get back.</summary>
        public string? Driver { get; set; }

        /// <summary>The driver the change left (the function must still have it).</summary>
        public string? ExpectedDriver { get; set; }

        /// <summary>How the change moved the driver: Virsh or Sysfs.</summary>
        public HostDriverMethod? Method { get; set; }

        public string? Domain { get; set; }

        /// <summary>The device XML to detach or attach, or the guest definition to define.</summary>
        public string? Xml { get; set; }

        /// <summary>The guest definition the change left (DefineDomain), which must still be the definition.</summary>
        public string? ExpectedXml { get; set; }

        public DeviceChangeScope? Scope { get; set; }

        /// <summary>A mediated device's UUID.</summary>
        public string? Uuid { get; set; }

        public string? Parent { get; set; }
        public string? TypeId { get; set; }

        /// <summary>RemoveVgpu: also its mdevctl definition; CreateVgpu: define it again.</summary>
        public bool Persistent { get; set; }

        /// <summary>CreateVgpu: start the device (false: the change removed only its definition).</summary>
        public bool Active { get; set; } = true;

        /// <summary>SetSriovFunctions: how many virtual functions to set back (the count before the change).</summary>
        public int? VirtualFunctions { get; set; }

        /// <summary>SetSriovFunctions: how many the change left (the physical function must still have them).</summary>
        public int? ExpectedVirtualFunctions { get; set; }

        /// <summary>SetSriovFunctions: NVIDIA's sriov-manage when the change ran it (its <c>-d</c> takes it back); null: sriov_numvfs was written.</summary>
        public string? Program { get; set; }

        public override string ToString() => Description;
    }

    /// <summary>
    /// One applied change in the journal: who made it, when, on which host, with which command line, what it changed
    /// and how to take it back. An undo is a record too (<see cref="Undoes"/>); the record it took back is then
    /// <see cref="Undone"/>.
    /// </summary>
    public sealed class ChangeRecord
    {
        public long Id { get; set; }

        /// <summary>When the change was made (UTC).</summary>
        public DateTime Time { get; set; }

        /// <summary>The user that made it (and the one behind sudo).</summary>
        public string User { get; set; } = string.Empty;

        /// <summary>The host root the change was made under (<c>/</c> for the live host): the journal's own root when read.</summary>
        public string Root { get; set; } = "/";

        /// <summary>The libvirt connection URI of a guest change.</summary>
        public string? Connect { get; set; }

        /// <summary>The cmdlet that made the change.</summary>
        public string Command { get; set; } = string.Empty;

        /// <summary>The command line it was run with.</summary>
        public string CommandLine { get; set; } = string.Empty;

        /// <summary>What was changed (a file, a PCI function, a guest, a vGPU).</summary>
        public string Target { get; set; } = string.Empty;

        /// <summary>What was done, in words.</summary>
        public string Action { get; set; } = string.Empty;

        /// <summary>What changed, each with its value before and after (kept in the journal as <c>"Changes"</c>).</summary>
        internal List<ChangeDetail> Details { get; set; } = new List<ChangeDetail>();

        /// <summary>The files the change wrote, with their backups and hashes (kept in the journal as <c>"Files"</c>).</summary>
        internal List<ChangeFile> FileChanges { get; set; } = new List<ChangeFile>();

        /// <summary>What changed, one line each: <c>what: before -&gt; after</c>.</summary>
        [JsonIgnore]
        public string[] Changes => Details.Select(d => d.ToString()).ToArray();

        /// <summary>The files the change created, changed or removed (host paths).</summary>
        [JsonIgnore]
        public string[] Files => FileChanges.Select(f => f.Path).ToArray();

        /// <summary>The backups the change kept of the files it replaced (host paths).</summary>
        [JsonIgnore]
        public string[] Backups => FileChanges.Where(f => f.Backup != null).Select(f => f.Backup!).ToArray();

        /// <summary>How to take the change back, in order (kept in the journal as <c>"Inverse"</c>).</summary>
        internal List<InverseStep> Inverse { get; set; } = new List<InverseStep>();

        /// <summary>How Undo-GpuVirtChange takes the change back, step by step in words.</summary>
        [JsonIgnore]
        public string[] UndoSteps => Inverse.Select(s => s.Description).ToArray();

        /// <summary>True for changes of the boot configuration: the running kernel follows after a reboot.</summary>
        public bool RebootRequired { get; set; }

        /// <summary>For an undo: the id of the record it took back.</summary>
        public long? Undoes { get; set; }

        /// <summary>The id of the undo that took this change back; null while it stands.</summary>
        [JsonIgnore]
        public long? UndoneBy { get; internal set; }

        [JsonIgnore]
        public bool Undone => UndoneBy.HasValue;

        /// <summary>True when this record can be taken back: it stands, is no undo itself and has an inverse.</summary>
        [JsonIgnore]
        public bool CanUndo => !Undone && Undoes is null && Inverse.Count > 0;

        /// <summary>The time in the local time zone, for display.</summary>
        [JsonIgnore]
        public DateTime LocalTime => Time.ToLocalTime();

        public override string ToString() => $"{Id} {Command} {Target}";
    }
}
