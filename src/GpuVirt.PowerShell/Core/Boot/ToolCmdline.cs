using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace GpuVirt.Core.Boot
{
    /// <summary>
    /// A kernel command line that a tool keeps and only the tool changes: one BLS entry (grubby), kernelstub's
    /// configuration, the default rpm-ostree deployment. The module reads the arguments from the tool's files, works
    /// out the edit as on any command line, and turns the difference into the tool's own arguments.
    /// </summary>
    internal sealed class ToolCmdline
    {
        /// <summary>The record key of rpm-ostree's arguments (the default deployment's entry changes name with each deployment).</summary>
        public const string RpmOstreeKargs = "/ostree/deploy (rpm-ostree kargs)";

        private ToolCmdline(BootLoaderFamily family, string file, string text, string? kernel)
        {
            Family = family;
            File = file;
            Text = text;
            Kernel = kernel;
        }

        public BootLoaderFamily Family { get; }

        /// <summary>The host path (or record key) the edits are recorded under.</summary>
        public string File { get; }

        /// <summary>The arguments, one line.</summary>
        public string Text { get; }

        /// <summary>For a BLS entry: the kernel image grubby names it by (<c>/boot/vmlinuz-…</c>).</summary>
        public string? Kernel { get; }

        /// <summary>The command lines of a family that a tool keeps (none for files the module edits itself).</summary>
        public static IReadOnlyList<ToolCmdline> For(HostRoot root, BootConfiguration boot)
        {
            switch (boot.Family)
            {
                case BootLoaderFamily.Bls:
                    return BlsEntries(root);
                case BootLoaderFamily.Kernelstub:
                    return new[] { Kernelstub(root, boot.File) };
                case BootLoaderFamily.RpmOstree:
                    var options = BootConfiguration.BlsField(root, boot.File, "options") ?? string.Empty;
                    return new[] { new ToolCmdline(boot.Family, RpmOstreeKargs, options, null) };
                default:
                    return Array.Empty<ToolCmdline>();
            }
        }

        /// <summary>Every BLS entry, its <c>options</c> with <c>$kernelopts</c> read from grubenv (RHEL 8).</summary>
        public static IReadOnlyList<ToolCmdline> BlsEntries(HostRoot root)
        {
            var list = new List<ToolCmdline>();
            string? kernelopts = null;
            foreach (var entry in BootConfiguration.BlsEntryFiles(root))
            {
                var options = BootConfiguration.BlsField(root, entry, "options") ?? string.Empty;
                var words = KernelArguments.Split(options).SelectMany(w =>
                {
                    if (w != "$kernelopts") return new[] { w };
                    kernelopts ??= BootConfiguration.ReadGrubEnvKernelopts(root);
                    return KernelArguments.Split(kernelopts);
                });
                var linux = BootConfiguration.BlsField(root, entry, "linux") ?? string.Empty;
                var kernel = linux.StartsWith("/boot/", StringComparison.Ordinal) ? linux : "/boot" + (linux.StartsWith("/", StringComparison.Ordinal) ? linux : "/" + linux);
                list.Add(new ToolCmdline(BootLoaderFamily.Bls, entry, string.Join(" ", words), kernel));
            }
            return list;
        }

        private static ToolCmdline Kernelstub(HostRoot root, string file)
        {
            var text = HostFiles.ReadText(root.Resolve(file), file);
            try
            {
                using var doc = JsonDocument.Parse(text);
                var options = new List<string>();
                foreach (var section in new[] { "user", "default" })
                {
                    if (!doc.RootElement.TryGetProperty(section, out var s) || !s.TryGetProperty("kernel_options", out var o) || o.ValueKind != JsonValueKind.Array) continue;
                    options.AddRange(o.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!));
                    break;
                }
                return new ToolCmdline(BootLoaderFamily.Kernelstub, file, string.Join(" ", options), null);
            }
            catch (JsonException e)
            {
                throw new GpuVirtException(ErrorIds.BootFileMalformed, ErrorKind.InvalidData,
                    $"'{file}' is not the JSON kernelstub writes: {e.Message}", file, e);
            }
        }

        /// <summary>The words of the managed keys that differ: those only before, and those only after.</summary>
        public static (List<string> Removed, List<string> Added) Difference(string before, string after)
        {
            var a = KernelArguments.Split(before).ToList();
            var b = KernelArguments.Split(after).ToList();
            var removed = a.Where(w => !b.Contains(w, StringComparer.Ordinal)).Distinct().ToList();
            var added = b.Where(w => !a.Contains(w, StringComparer.Ordinal)).Distinct().ToList();
            return (removed, added);
        }

        /// <summary>The tool's arguments that bring this command line from <paramref name="before"/> to <paramref name="after"/>.</summary>
        public HostCommand? Command(string before, string after, bool allEntries = false)
        {
            var (removed, added) = Difference(before, after);
            if (removed.Count == 0 && added.Count == 0) return null;
            switch (Family)
            {
                case BootLoaderFamily.Bls:
                {
                    // grubby --args sets a key's value; --remove-args takes out keys that are left with none.
                    var remove = removed.Where(r => !added.Any(x => KernelArguments.SameKey(KernelArguments.KeyOf(x), KernelArguments.KeyOf(r)))).ToList();
                    var args = new List<string> { "--update-kernel=" + (allEntries ? "ALL" : Kernel) };
                    if (added.Count > 0) args.Add("--args=" + string.Join(" ", added));
                    if (remove.Count > 0) args.Add("--remove-args=" + string.Join(" ", remove));
                    return new HostCommand("grubby", args.ToArray());
                }
                case BootLoaderFamily.Kernelstub:
                {
                    var args = new List<string>();
                    if (removed.Count > 0) args.AddRange(new[] { "--delete-options", string.Join(" ", removed) });
                    if (added.Count > 0) args.AddRange(new[] { "--add-options", string.Join(" ", added) });
                    return new HostCommand("kernelstub", args.ToArray());
                }
                default:
                {
                    var args = new List<string> { "kargs" };
                    args.AddRange(removed.Select(r => "--delete=" + r));
                    args.AddRange(added.Select(x => "--append=" + x));
                    return new HostCommand("rpm-ostree", args.ToArray());
                }
            }
        }

        /// <summary>grubby-bls's flag (8.40-43 and later) that keeps it from rewriting <c>/etc/default/grub</c>.</summary>
        public const string NoEtcGrubUpdate = "--no-etc-grub-update";

        /// <summary>
        /// Whether the host's grubby knows <see cref="NoEtcGrubUpdate"/>: its <c>--help</c> lists it (a grubby that
        /// does not know it refuses it as an invalid option). False when grubby is not installed or does not answer.
        /// </summary>
        public static bool GrubbyKnowsNoEtcGrubUpdate(HostRoot root, ProcessRunner? runner = null)
        {
            if (!ProgramLocator.ExistsOnHost(root, "grubby")) return false;
            try
            {
                var help = (runner ?? new ProcessRunner()).RunOnHost(root, "grubby", new[] { "--help" }, check: false, timeout: TimeSpan.FromSeconds(30));
                return (help.StandardOutput + "\n" + help.StandardError).Contains(NoEtcGrubUpdate);
            }
            catch (GpuVirtException)
            {
                return false;
            }
        }

        /// <summary>The files a failed command may have left half-changed, restored on failure.</summary>
        public static IEnumerable<string> Guarded(HostRoot root, BootConfiguration boot)
        {
            if (boot.Family == BootLoaderFamily.Kernelstub) return new[] { boot.File };
            if (boot.Family != BootLoaderFamily.Bls) return Array.Empty<string>();
            var list = BootConfiguration.BlsEntryFiles(root).ToList();
            if (System.IO.File.Exists(root.Resolve(BootConfiguration.GrubEnv))) list.Add(BootConfiguration.GrubEnv);
            return list;
        }
    }
}
