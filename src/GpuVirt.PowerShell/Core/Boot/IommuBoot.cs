using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Boot
{
    /// <summary>What Enable-IommuBoot is asked to configure.</summary>
    internal sealed class IommuBootRequest
    {
        /// <summary>Null: read from <c>/proc/cpuinfo</c>.</summary>
        public CpuVendor? CpuVendor { get; set; }

        /// <summary>Leave out <c>iommu=pt</c>.</summary>
        public bool NoIommuPt { get; set; }

        public StubDriver StubDriver { get; set; } = StubDriver.PciStub;

        /// <summary><c>vendor:device</c> ids to hold with the stub driver at boot.</summary>
        public IList<string> StubIds { get; } = new List<string>();

        /// <summary>Add <c>modprobe.blacklist=nouveau</c>.</summary>
        public bool BlacklistNouveau { get; set; }

        /// <summary>Null: detect under the root.</summary>
        public BootLoaderFamily? BootLoader { get; set; }
    }

    /// <summary>Everything a boot configuration command will do, worked out before anything is written.</summary>
    internal sealed class IommuBootPlan
    {
        internal IommuBootPlan(string action, BootConfiguration boot, BootTransaction transaction, string? before, string? after,
            IReadOnlyList<string> added, IReadOnlyList<string> removed, IReadOnlyList<string> warnings, bool rebootRequired)
        {
            Action = action;
            Boot = boot;
            Transaction = transaction;
            BeforeArguments = before;
            AfterArguments = after;
            ArgumentsAdded = added;
            ArgumentsRemoved = removed;
            Warnings = warnings;
            RebootRequired = rebootRequired;
        }

        public string Action { get; }
        public BootConfiguration Boot { get; }
        internal BootTransaction Transaction { get; }

        /// <summary>The kernel arguments of the edited file before and after.</summary>
        public string? BeforeArguments { get; }
        public string? AfterArguments { get; }

        public IReadOnlyList<string> ArgumentsAdded { get; }
        public IReadOnlyList<string> ArgumentsRemoved { get; }
        public IReadOnlyList<string> Warnings { get; }

        /// <summary>Whether the running kernel will differ from the configuration once the plan is carried out.</summary>
        public bool RebootRequired { get; }

        /// <summary>A boot change that was interrupted (killed) before it finished: Apply finishes or takes it back first.</summary>
        public BootIntent? Pending { get; internal set; }

        /// <summary>Something to do: files to write, or an interrupted change to settle first.</summary>
        public bool HasChanges => HasWrites || Pending != null;

        internal bool HasWrites => Transaction.Writes.Count > 0;

        /// <summary>Plans the same request again from the files as they are now (used under the host lock).</summary>
        internal Func<IommuBootPlan>? Replan { get; set; }

        public IReadOnlyList<string> Files => Transaction.Writes.Select(w => w.HostPath).ToList();
        public IReadOnlyList<string> Commands => Transaction.Commands.Select(c => c.ToString()).ToList();

        /// <summary>The text -WhatIf and -Confirm show: before and after, every file and every command.</summary>
        public string Describe(HostRoot root)
        {
            var sb = new StringBuilder();
            var file = Boot.LinkPath != null ? $"{Boot.File} (the target of {Boot.LinkPath})" : Boot.File;
            sb.Append(Action).Append(" (").Append(Boot.Family).Append(" boot loader): ");
            if (Boot.Kind == BootFileKind.Tool) sb.Append("the kernel arguments kept in ").Append(file);
            else sb.Append("edit ").Append(file);
            if (Boot.IsShellFile) sb.Append(", ").Append(BootConfiguration.GrubVariable).Append(" then ").Append(BootConfiguration.GrubDefaultVariable);
            sb.Append('\n');
            if (Pending != null) sb.Append("  first:  ").Append(Pending.Describe()).Append('\n');
            sb.Append("  before: ").Append(BeforeArguments ?? "(no file)").Append('\n');
            sb.Append("  after:  ").Append(AfterArguments ?? "(no file)").Append('\n');
            if (ArgumentsAdded.Count > 0) sb.Append("  add:    ").Append(string.Join(" ", ArgumentsAdded)).Append('\n');
            if (ArgumentsRemoved.Count > 0) sb.Append("  remove: ").Append(string.Join(" ", ArgumentsRemoved)).Append('\n');
            foreach (var w in Transaction.Writes)
            {
                sb.Append("  ").Append(w.Action == BootFileAction.Removed ? "delete " : "write  ").Append(w.HostPath)
                  .Append(w.Backup && w.Original != null ? " (backup next to it)" : string.Empty).Append('\n');
            }
            foreach (var c in Transaction.Commands)
            {
                sb.Append("  run    ").Append(root.IsLive ? c.ToString() : ProcessRunner.Render("chroot", new[] { root.Directory, c.Program }.Concat(c.Arguments))).Append('\n');
            }
            return sb.ToString().TrimEnd('\n');
        }
    }

    /// <summary>
    /// Enables the IOMMU and stub drivers on the kernel command line, and takes back exactly what it added, on the
    /// four boot loader families (RHEL 7 grub2-mkconfig, BLS with grubby, Debian update-grub, systemd-boot).
    /// </summary>
    internal static class IommuBoot
    {
        /// <summary>The arguments Enable-IommuBoot wants for a request (before looking at any file).</summary>
        internal static IReadOnlyList<ArgumentRequirement> Requirements(CpuVendor vendor, IommuBootRequest request, IReadOnlyList<string> ids)
        {
            var list = new List<ArgumentRequirement>();
            if (vendor == CpuVendor.Intel)
            {
                list.Add(new ArgumentRequirement(KernelArguments.IntelIommu, "on", new[] { "off" }));
            }
            else
            {
                list.Add(new ArgumentRequirement(KernelArguments.AmdIommu, null, new[] { "off" }));
            }
            // iommu=soft (software bounce buffers) fights the IOMMU as iommu=off does: both are replaced, and the change says so.
            list.Add(request.NoIommuPt
                ? new ArgumentRequirement(KernelArguments.Iommu, null, new[] { "off", "soft" })
                : new ArgumentRequirement(KernelArguments.Iommu, "pt", new[] { "off", "soft", "nopt" }));
            var key = KernelArguments.IdsKey(request.StubDriver);
            var otherKey = KernelArguments.IdsKey(KernelArguments.OtherDriver(request.StubDriver));
            foreach (var id in ids)
            {
                // An id on the other stub driver's list would be claimed twice: it moves.
                list.Add(new ArgumentRequirement(otherKey, null, new[] { id }, ignoreCase: true));
                list.Add(new ArgumentRequirement(key, id, null, ignoreCase: true));
            }
            if (request.BlacklistNouveau)
            {
                list.Add(new ArgumentRequirement(KernelArguments.ModprobeBlacklist, KernelArguments.Nouveau));
            }
            return list;
        }

        /// <summary>Normalizes and checks <c>vendor:device</c> ids, keeping their order and dropping repeats.</summary>
        public static IReadOnlyList<string> NormalizeIds(IEnumerable<string> ids)
        {
            var result = new List<string>();
            foreach (var raw in ids)
            {
                var id = KernelArguments.NormalizeId(raw) ?? throw new GpuVirtException(ErrorIds.InvalidStubId, ErrorKind.InvalidArgument,
                    $"'{raw}' is not a PCI vendor:device id such as 10de:11fa (as lspci -nn shows it).", raw);
                if (!result.Contains(id)) result.Add(id);
            }
            return result;
        }

        /// <summary>
        /// Checks stub ids against the host's devices. A stub id claims every function with that id at boot: taking
        /// a storage controller or a bridge from the host can leave it unbootable, so that is refused unless forced.
        /// Returns warnings for the rest (an id that claims more functions than were chosen, the console GPU).
        /// </summary>
        public static IReadOnlyList<string> CheckStubIds(PciInventory inventory, IReadOnlyList<string> ids, IReadOnlyCollection<PciAddress> chosen, bool force)
        {
            var warnings = new List<string>();
            foreach (var id in ids)
            {
                var matches = inventory.Devices.Where(d => string.Equals(d.Ids, id, StringComparison.OrdinalIgnoreCase)).ToList();
                if (matches.Count == 0 && inventory.Devices.Count > 0)
                {
                    warnings.Add($"No PCI function with id {id} is on this host: the stub id takes effect only where such a device is present.");
                }
                foreach (var d in matches.Where(d => d.BaseClass == 0x01 || d.BaseClass == 0x06))
                {
                    var what = $"{id} is the id of {d.Address} ({d.ClassName ?? "class " + d.ClassId}, {d.Description})";
                    if (!force)
                    {
                        throw new GpuVirtException(ErrorIds.StubDeviceUnsafe, ErrorKind.InvalidArgument,
                            $"{what}: a stub driver would take it from the host at boot, and the host may not boot. Nothing was changed. Give -Force only if that is really meant.", d.Address);
                    }
                    warnings.Add(what + ": it will be held by the stub driver at boot (-Force).");
                }
                var ofChosen = matches.Any(d => chosen.Contains(d.PciAddress));
                foreach (var d in matches.Where(d => ofChosen && !chosen.Contains(d.PciAddress)))
                {
                    warnings.Add($"The stub id {id} also claims {d.Address} ({d.Description}): ids match every function of the same model.");
                }
                foreach (var d in matches.Where(d => d.IsBootVga))
                {
                    warnings.Add($"{d.Address} is the host's console GPU (boot_vga): with its id on the stub list the host console has no display after the reboot.");
                }
            }
            return warnings;
        }

        public static IommuBootPlan PlanEnable(HostRoot root, IommuBootRequest request)
        {
            var boot = BootConfiguration.Detect(root, request.BootLoader);
            var vendor = request.CpuVendor ?? CpuInfo.ReadVendor(root);
            var ids = NormalizeIds(request.StubIds);
            var requirements = Requirements(vendor, request, ids);
            var transaction = new BootTransaction(root) { Action = "Enable-IommuBoot" };
            var warnings = new List<string>();
            var edits = new List<BootEdit>();
            string? beforeLine = null, afterLine = null;
            CmdlineDocument? after = null;

            if (boot.Kind != BootFileKind.Tool)
            {
                var full = root.Resolve(boot.File);
                string? original = null;
                string text;
                var created = new List<BootEdit>();
                if (!boot.IsShellFile && !System.IO.File.Exists(full) && !System.IO.Directory.Exists(full))
                {
                    // kernel-install falls back to /usr/lib/kernel/cmdline or /proc/cmdline: start from that, never from nothing.
                    text = BootConfiguration.KernelInstallDefault(root) ?? throw new GpuVirtException(ErrorIds.BootFileNotFound, ErrorKind.ObjectNotFound,
                        $"'{boot.File}' does not exist and neither '{BootConfiguration.UsrKernelCmdline}' nor '{HostPaths.ProcCmdline}' tells what it should hold (root=...). Create it first.", boot.File);
                    created.Add(new BootEdit { Kind = BootEditKind.CreatedFile, File = boot.File, Word = text });
                }
                else
                {
                    text = original = HostFiles.ReadText(full, boot.File);
                }

                var result = ArgumentEditor.Apply(text, boot.Parse, boot.File, requirements);
                var before = boot.Parse(text);
                after = boot.Parse(result.Text);
                beforeLine = original is null ? null : before.ArgumentLine;
                afterLine = after.ArgumentLine;
                foreach (var dropIn in boot.OverridingDropIns(root))
                {
                    warnings.Add($"'{dropIn}' sets {BootConfiguration.GrubVariable} or {BootConfiguration.GrubDefaultVariable} again after '{boot.File}': the arguments written here may be overridden. Check that file.");
                }
                if (result.Edits.Count > 0)
                {
                    edits.AddRange(created);
                    edits.AddRange(result.Edits);
                    transaction.Writes.Add(new FileWrite(boot.File, original, result.Text, backup: true, before: beforeLine, after: afterLine));
                    AddRegeneration(root, boot, transaction, warnings);
                }
            }

            // grubby-bls --update-kernel=ALL writes /etc/kernel/cmdline (the arguments kernel-install gives new kernels)
            // where one exists: the module edits it itself, byte for byte, and keeps that edit (see PlanTools).
            var kernelCmdline = root.ResolveLinks(BootConfiguration.KernelCmdline);
            if (boot.Family == BootLoaderFamily.Bls && System.IO.File.Exists(root.Resolve(kernelCmdline)))
            {
                var text = HostFiles.ReadText(root.Resolve(kernelCmdline), kernelCmdline);
                var result = ArgumentEditor.Apply(text, CmdlineDocument.ParsePlain, kernelCmdline, requirements);
                if (result.Edits.Count > 0)
                {
                    edits.AddRange(result.Edits);
                    transaction.Writes.Add(new FileWrite(kernelCmdline, text, result.Text, backup: true,
                        before: CmdlineDocument.ParsePlain(text).ArgumentLine, after: CmdlineDocument.ParsePlain(result.Text).ArgumentLine));
                }
            }

            var tools = PlanTools(root, boot, line => ArgumentEditor.Apply(line.Text, CmdlineDocument.ParsePlain, line.File, requirements), edits, transaction, warnings);
            if (boot.Kind == BootFileKind.Tool && tools.Count > 0)
            {
                beforeLine = tools[0].Before;
                afterLine = tools[0].After;
                after = CmdlineDocument.ParsePlain(tools[0].After);
            }

            if (edits.Count > 0)
            {
                var log = BootEditLog.Read(root).Concat(edits).ToList();
                transaction.Writes.Add(new FileWrite(BootEditLog.HostPath, ReadIfExists(root, BootEditLog.HostPath), BootEditLog.Format(log), backup: false));
            }
            warnings.AddRange(ReplacementNotes(edits));

            var keys = requirements.Select(r => r.Key).ToList();
            var reboot = after != null && RebootRequired(root, after, keys, edits.Count > 0);
            var (added, removed) = Summarize(edits);
            return new IommuBootPlan("Enable-IommuBoot", boot, transaction, beforeLine, afterLine, added, removed, warnings, reboot)
            {
                Pending = BootIntent.Read(root),
                Replan = () => PlanEnable(root, request),
            };
        }

        /// <summary>A conflicting argument that was replaced is said in words (iommu=soft, intel_iommu=off), where it was.</summary>
        private static IEnumerable<string> ReplacementNotes(IEnumerable<BootEdit> edits)
        {
            foreach (var e in edits.Where(e => e.Kind == BootEditKind.Replace || e.Kind == BootEditKind.Remove || e.Kind == BootEditKind.Drop)
                         .GroupBy(e => e.ToString()).Select(g => g.First()))
            {
                var old = e.Kind == BootEditKind.Drop ? e.Word : e.Key + "=" + e.OldItem;
                var where = e.Variable.Length > 0 ? e.Variable + " in " + e.File : e.File;
                yield return e.Kind == BootEditKind.Replace
                    ? $"'{old}' in {where} conflicts with '{e.Key}={e.Item}': it is replaced by it."
                    : $"'{old}' in {where} conflicts with the arguments asked for: it is taken out.";
            }
        }

        /// <summary>One tool-kept command line's planned change.</summary>
        private sealed class ToolChange
        {
            public ToolChange(ToolCmdline line, string after, HostCommand? command)
            {
                Line = line;
                After = after;
                Command = command;
            }

            public ToolCmdline Line { get; }
            public string Before => Line.Text;
            public string After { get; }
            public HostCommand? Command { get; }
        }

        /// <summary>
        /// Works out the change of every tool-kept command line (each BLS entry, kernelstub, rpm-ostree), records its
        /// edits, and adds the tool's commands: one <c>grubby --update-kernel=ALL</c> when every entry changes the same
        /// way, else one call per entry.
        /// </summary>
        private static IReadOnlyList<ToolChange> PlanTools(HostRoot root, BootConfiguration boot, Func<ToolCmdline, EditResult> edit,
            List<BootEdit> edits, BootTransaction transaction, List<string> warnings)
        {
            var lines = ToolCmdline.For(root, boot);
            var changes = new List<ToolChange>();
            foreach (var line in lines)
            {
                var result = edit(line);
                warnings.AddRange(result.Notes);
                edits.AddRange(result.Edits);
                var after = CmdlineDocument.ParsePlain(result.Text).ArgumentLine;
                changes.Add(new ToolChange(line, after, line.Command(line.Text, after)));
            }
            var changed = changes.Where(c => c.Command != null).ToList();
            if (changed.Count == 0) return changes;
            if (boot.Family == BootLoaderFamily.Bls && changed.Count == lines.Count && changed.Count > 1
                && changed.Select(c => string.Join("\0", c.Command!.Arguments.Skip(1))).Distinct().Count() == 1)
            {
                transaction.Commands.Add(changed[0].Line.Command(changed[0].Before, changed[0].After, allEntries: true)!);
            }
            else if (boot.Family == BootLoaderFamily.Bls && changed.Count == 1 && lines.Count == 1)
            {
                transaction.Commands.Add(changed[0].Line.Command(changed[0].Before, changed[0].After, allEntries: true)!);
            }
            else
            {
                transaction.Commands.AddRange(changed.Select(c => c.Command!));
            }
            transaction.Guarded.AddRange(ToolCmdline.Guarded(root, boot).Where(g => !transaction.Guarded.Contains(g)));
            if (boot.Family == BootLoaderFamily.Bls)
            {
                // grubby-bls (8.40-41 and later) rewrites GRUB_CMDLINE_LINUX in /etc/default/grub on --update-kernel=ALL
                // (losing a $(...), a CR, turning GRUB_CMDLINE_LINUX_DEFAULT into a second GRUB_CMDLINE_LINUX) and writes
                // /etc/kernel/cmdline: told not to where it knows how, and those files are kept as the module makes them.
                var noEtc = ToolCmdline.GrubbyKnowsNoEtcGrubUpdate(root);
                for (var i = 0; i < transaction.Commands.Count; i++)
                {
                    var c = transaction.Commands[i];
                    if (c.Program != "grubby" || !c.Arguments.Contains("--update-kernel=ALL") || !noEtc || c.Arguments.Contains(ToolCmdline.NoEtcGrubUpdate)) continue;
                    // Last: grubby-bls's option loop shifts twice for this flag, so an option after it would be lost.
                    transaction.Commands[i] = new HostCommand(c.Program, c.Arguments.Concat(new[] { ToolCmdline.NoEtcGrubUpdate }).ToArray());
                }
                foreach (var kept in new[] { boot.File, root.ResolveLinks(BootConfiguration.KernelCmdline) })
                {
                    if (!transaction.Kept.Contains(kept)) transaction.Kept.Add(kept);
                }
            }
            return changes;
        }

        public static IommuBootPlan PlanDisable(HostRoot root, BootLoaderFamily? family = null)
        {
            var boot = BootConfiguration.Detect(root, family);
            var log = BootEditLog.Read(root);
            var transaction = new BootTransaction(root) { Action = "Disable-IommuBoot" };
            var warnings = new List<string>();
            var undoneAll = new List<BootEdit>();
            string? beforeLine = null, afterLine = null;
            CmdlineDocument? beforeMain = null, afterMain = null;

            if (log.Count == 0)
            {
                warnings.Add($"There is no record of Enable-IommuBoot changes ('{BootEditLog.HostPath}' under '{root.Directory}'): nothing to undo. Arguments added by hand stay as they are.");
            }

            var toolFiles = new HashSet<string>(ToolCmdline.For(root, boot).Select(l => l.File), StringComparer.Ordinal);
            var fileChanged = false;
            foreach (var group in log.Where(e => !toolFiles.Contains(e.File)).GroupBy(e => e.File))
            {
                var file = group.Key;
                var full = root.Resolve(file);
                if (!System.IO.File.Exists(full))
                {
                    if (!file.StartsWith(BootConfiguration.BlsEntries + "/", StringComparison.Ordinal))
                        warnings.Add($"'{file}' no longer exists; its recorded edits were dropped.");
                    continue;
                }
                Func<string, CmdlineDocument> parse = file == boot.File ? boot.Parse
                    : file == root.ResolveLinks(BootConfiguration.KernelCmdline) ? CmdlineDocument.ParsePlain
                    : t => CmdlineDocument.ParseShell(t, BootConfiguration.GrubVariables);
                var text = HostFiles.ReadText(full, file);
                var edits = group.Where(e => e.Kind != BootEditKind.CreatedFile).ToList();
                var undo = ArgumentEditor.Undo(text, parse, file, edits);
                warnings.AddRange(undo.Notes);
                undoneAll.AddRange(undo.Edits);
                var createdWith = group.FirstOrDefault(e => e.Kind == BootEditKind.CreatedFile);
                var deleteFile = createdWith != null && undo.Text == createdWith.Word;
                var before = parse(text);
                var after = parse(undo.Text);
                if (file == boot.File)
                {
                    beforeMain = before;
                    afterMain = after;
                    beforeLine = before.ArgumentLine;
                    afterLine = deleteFile ? null : after.ArgumentLine;
                }
                if (undo.Text != text || deleteFile)
                {
                    fileChanged = true;
                    transaction.Writes.Add(new FileWrite(file, text, deleteFile ? null : undo.Text, backup: true, before: before.ArgumentLine, after: deleteFile ? null : after.ArgumentLine));
                }
            }
            if (fileChanged) AddRegeneration(root, boot, transaction, warnings);

            var tools = PlanTools(root, boot, line =>
            {
                var recorded = log.Where(e => e.File == line.File).ToList();
                var undo = ArgumentEditor.Undo(line.Text, CmdlineDocument.ParsePlain, line.File, recorded);
                undoneAll.AddRange(undo.Edits);
                return new EditResult(undo.Text, Array.Empty<BootEdit>(), undo.Notes);
            }, new List<BootEdit>(), transaction, warnings);
            if (boot.Kind == BootFileKind.Tool && tools.Count > 0)
            {
                beforeLine = tools[0].Before;
                afterLine = tools[0].After;
                beforeMain = CmdlineDocument.ParsePlain(tools[0].Before);
                afterMain = CmdlineDocument.ParsePlain(tools[0].After);
            }

            if (log.Count > 0)
            {
                transaction.Writes.Add(new FileWrite(BootEditLog.HostPath, ReadIfExists(root, BootEditLog.HostPath), null, backup: false));
            }
            if (beforeMain is null && boot.Kind != BootFileKind.Tool)
            {
                var full = root.Resolve(boot.File);
                if (System.IO.File.Exists(full))
                {
                    beforeMain = afterMain = boot.Parse(HostFiles.ReadText(full, boot.File));
                    beforeLine = afterLine = beforeMain.ArgumentLine;
                }
            }
            var userEdits = undoneAll.Where(e => e.Kind != BootEditKind.QuotedRun && e.Kind != BootEditKind.Assignment).ToList();
            var (added, removed) = Summarize(userEdits);
            var keys = userEdits.Select(e => e.Key).Where(k => k.Length > 0).ToList();
            var reboot = afterMain != null && RebootRequired(root, afterMain, keys, userEdits.Count > 0);
            // Undoing swaps the roles: what Enable added is removed now, and what it replaced comes back.
            return new IommuBootPlan("Disable-IommuBoot", boot, transaction, beforeLine, afterLine, removed, added, warnings, reboot)
            {
                Pending = BootIntent.Read(root),
                Replan = () => PlanDisable(root, family),
            };
        }

        /// <summary>
        /// Carries a plan out under the host lock; returns the change record. Under the lock the files are read
        /// again: when another command changed one since the plan was made (two Enable-IommuBoot at once), the same
        /// request is planned again from what is there now, so that nothing the other command wrote is lost, and the
        /// log is told why. <paramref name="lockTimeout"/> bounds the wait for the lock (null: the default).
        /// </summary>
        public static BootChange Apply(HostRoot root, IommuBootPlan plan, ProcessRunner runner, CancellationToken cancellationToken = default,
            ChangeRecorder? recorder = null, TimeSpan? lockTimeout = null, Action<string>? log = null, TimeSpan? regenerationTimeout = null)
        {
            // Nothing to write and no interrupted change to settle: nothing is touched, not even the lock's file
            // (-WhatIf and a read-only image alike).
            if (!plan.HasChanges) return new BootChange(plan.Action, plan.Boot.Family, null, Array.Empty<BootFileChange>(), Array.Empty<string>(), Array.Empty<string>(), Array.Empty<string>(), plan.RebootRequired);
            // What cannot be written (not root, a read-only image) is told about the file itself, before the lock.
            plan.Transaction.Preflight();
            using (HostLock.Acquire(root, "change the kernel command line", cancellationToken, lockTimeout, log))
            {
                var timeout = regenerationTimeout ?? BootTransaction.DefaultCommandTimeout;
                // A boot change killed half-way first: finished or taken back, then this one is planned from what that left.
                var recovered = BootTransaction.Recover(root, runner, cancellationToken, timeout);
                plan = Current(plan, log, recovered != null);
                plan.Transaction.CommandTimeout = timeout;
                var before = recovered?.Commands ?? Array.Empty<string>();
                if (!plan.HasWrites)
                {
                    var restored = recovered?.Restored.Select(p => new BootFileChange(p, BootFileAction.Modified, null, null, null)).ToList() ?? new List<BootFileChange>();
                    return new BootChange(plan.Action, plan.Boot.Family, null, restored, Array.Empty<string>(), Array.Empty<string>(), before, plan.RebootRequired)
                    {
                        Recovered = recovered?.ToString(),
                    };
                }
                var record = new ChangeRecord
                {
                    Target = plan.Boot.File,
                    Action = plan.Action == "Enable-IommuBoot" ? "Add kernel arguments and regenerate the boot configuration" : "Take back kernel arguments and regenerate the boot configuration",
                    RebootRequired = true,
                };
                record.Details.Add(new ChangeDetail("kernel arguments of " + plan.Boot.File, plan.BeforeArguments, plan.AfterArguments));
                var (files, commands) = plan.Transaction.Execute(runner, cancellationToken, recorder, record);
                return new BootChange(plan.Action, plan.Boot.Family, null, files, plan.ArgumentsAdded, plan.ArgumentsRemoved, before.Concat(commands).ToList(), plan.RebootRequired)
                {
                    Recovered = recovered?.ToString(),
                }.On(root);
            }
        }

        /// <summary>The plan, or the same request planned again when a file it was made from changed since.</summary>
        private static IommuBootPlan Current(IommuBootPlan plan, Action<string>? log, bool recovered)
        {
            if (plan.Replan is null) return plan;
            var changed = plan.Transaction.ChangedSincePlanned();
            // After an interrupted change was settled, always plan again: its programs (grubby, kernelstub, rpm-ostree)
            // change what the plan read besides the files it writes.
            if (changed.Count == 0 && plan.HasWrites && !recovered) return plan;
            var again = plan.Replan();
            if (changed.Count == 0 && !again.HasWrites) return again;
            var why = recovered ? "the interrupted change was settled" : "another command ran meanwhile";
            log?.Invoke($"{string.Join(", ", changed.DefaultIfEmpty(again.Boot.File))} changed since this command read it ({why}): planned again from the files as they are now. " +
                        $"Now: {(again.HasWrites ? again.Describe(again.Transaction.Root) : "nothing left to change")}");
            return again;
        }

        private static string? ReadIfExists(HostRoot root, string hostPath)
        {
            var full = root.Resolve(hostPath);
            return System.IO.File.Exists(full) ? HostFiles.ReadText(full, hostPath) : null;
        }

        private static void AddRegeneration(HostRoot root, BootConfiguration boot, BootTransaction transaction, List<string> warnings)
        {
            transaction.Commands.AddRange(boot.RegenerationCommands(root));
            if (boot.Family == BootLoaderFamily.SystemdBoot && transaction.Commands.Count == 0)
            {
                warnings.Add($"No installed kernel was found under /usr/lib/modules: only '{boot.File}' was changed. Kernels installed from now on get the new arguments.");
            }
        }

        /// <summary>
        /// True when, for the managed keys, the configured arguments differ from those the kernel runs with. Without a
        /// readable <c>/proc/cmdline</c> (an offline image) a change means a reboot.
        /// </summary>
        internal static bool RebootRequired(HostRoot root, CmdlineDocument configured, IEnumerable<string> keys, bool changed)
        {
            var running = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline));
            if (running is null) return changed;
            var runningArgs = KernelArguments.Split(running);
            var configuredArgs = configured.Words.Where(w => !w.IsOpaque).Select(w => w.Text).ToList();
            foreach (var key in keys.Distinct())
            {
                var a = new HashSet<string>(KernelArguments.EffectiveItems(configuredArgs, key), StringComparer.OrdinalIgnoreCase);
                var b = new HashSet<string>(KernelArguments.EffectiveItems(runningArgs, key), StringComparer.OrdinalIgnoreCase);
                if (!a.SetEquals(b)) return true;
            }
            return false;
        }

        private static (IReadOnlyList<string> Added, IReadOnlyList<string> Removed) Summarize(IEnumerable<BootEdit> edits)
        {
            var added = new List<string>();
            var removed = new List<string>();
            foreach (var e in edits)
            {
                switch (e.Kind)
                {
                    case BootEditKind.Add:
                        added.Add(e.Key + "=" + e.Item);
                        break;
                    case BootEditKind.Replace:
                        removed.Add(e.Key + "=" + e.OldItem);
                        added.Add(e.Key + "=" + e.Item);
                        break;
                    case BootEditKind.Remove:
                        removed.Add(e.Key + "=" + e.OldItem);
                        break;
                    case BootEditKind.Drop:
                        removed.Add(e.Word);
                        break;
                }
            }
            return (added.Distinct().ToList(), removed.Distinct().ToList());
        }
    }
}
