using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Boot
{
    /// <summary>The program that builds the initial ramdisk.</summary>
    internal enum InitramfsTool
    {
        /// <summary>RHEL, Fedora: <c>dracut --force</c> (all kernels: <c>dracut --regenerate-all --force</c>).</summary>
        Dracut,

        /// <summary>Debian, Ubuntu: <c>update-initramfs -u</c> (all kernels: <c>update-initramfs -u -k all</c>).</summary>
        InitramfsTools,

        /// <summary>Arch, Manjaro: <c>mkinitcpio -P</c> (every preset, that is every installed kernel).</summary>
        Mkinitcpio,
    }

    /// <summary>What Disable-NouveauDriver or Enable-NouveauDriver will do.</summary>
    internal sealed class NouveauPlan
    {
        internal NouveauPlan(string action, InitramfsTool tool, BootTransaction transaction, string? alreadyBy, IReadOnlyList<string> warnings, bool rebootRequired)
        {
            Action = action;
            Tool = tool;
            Transaction = transaction;
            AlreadyBlacklistedBy = alreadyBy;
            Warnings = warnings;
            RebootRequired = rebootRequired;
            Pending = BootIntent.Read(transaction.Root);
        }

        public string Action { get; }

        /// <summary>A boot change that was interrupted (killed) before it finished: Apply finishes or takes it back first.</summary>
        public BootIntent? Pending { get; }
        public InitramfsTool Tool { get; }
        internal BootTransaction Transaction { get; }

        /// <summary>A modprobe file that already blacklists nouveau (the NVIDIA installer's), when nothing is written.</summary>
        public string? AlreadyBlacklistedBy { get; }

        public IReadOnlyList<string> Warnings { get; }
        public bool RebootRequired { get; }
        /// <summary>Something to do: a file to write, or an interrupted change to settle first.</summary>
        public bool HasChanges => HasWrites || Pending != null;

        internal bool HasWrites => Transaction.Writes.Count > 0;

        /// <summary>Plans the same request again from the files as they are now (used under the host lock).</summary>
        internal Func<NouveauPlan>? Replan { get; set; }

        public string Describe(HostRoot root)
        {
            var lines = new List<string> { Action + ":" };
            if (Pending != null) lines.Add("  first:  " + Pending.Describe());
            foreach (var w in Transaction.Writes)
            {
                lines.Add((w.Content is null ? "  delete " : "  write  ") + w.HostPath + (w.Content is null ? string.Empty : ":"));
                if (w.Content != null) lines.AddRange(w.Content.TrimEnd('\n').Split('\n').Select(l => "           " + l));
            }
            foreach (var c in Transaction.Commands)
            {
                lines.Add("  run    " + (root.IsLive ? c.ToString() : ProcessRunner.Render("chroot", new[] { root.Directory, c.Program }.Concat(c.Arguments))));
            }
            return string.Join("\n", lines);
        }
    }

    /// <summary>
    /// Keeps nouveau off a vGPU host the way the RHEL procedure says (16.7.2.1): a file in <c>/etc/modprobe.d</c> with
    /// <c>blacklist nouveau</c> and <c>options nouveau modeset=0</c>, unless the NVIDIA installer's file already does
    /// it, then a new initramfs so that the blacklist holds from early boot.
    /// </summary>
    internal static class NouveauBlacklist
    {
        public const string ModprobeDirectory = "/etc/modprobe.d";
        public const string NvidiaInstallerFile = "nvidia-installer-disable-nouveau.conf";
        public const string DefaultName = "blacklist-nouveau";
        public const string Marker = "# Written by Disable-NouveauDriver (GpuVirt); Enable-NouveauDriver removes this file.";
        public const string Content = Marker + "\nblacklist nouveau\noptions nouveau modeset=0\n";

        private static readonly Regex NamePattern = new Regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant);

        /// <summary>The host path of the modprobe file for a name (<c>blacklist-nouveau</c> → <c>/etc/modprobe.d/blacklist-nouveau.conf</c>).</summary>
        public static string FileFor(string name)
        {
            var bare = name.EndsWith(".conf", StringComparison.Ordinal) ? name.Substring(0, name.Length - 5) : name;
            if (!NamePattern.IsMatch(bare))
            {
                throw new GpuVirtException(ErrorIds.InvalidModprobeFileName, ErrorKind.InvalidArgument,
                    $"'{name}' is not a modprobe file name: use letters, digits, '.', '_' and '-' (the file becomes {ModprobeDirectory}/<name>.conf).", name);
            }
            return ModprobeDirectory + "/" + bare + ".conf";
        }

        /// <summary>The first <c>/etc/modprobe.d/*.conf</c> with both <c>blacklist nouveau</c> and <c>options nouveau modeset=0</c>.</summary>
        public static string? FindBlacklist(HostRoot root, string? except = null)
        {
            var dir = root.Resolve(ModprobeDirectory);
            if (!Directory.Exists(dir)) return null;
            foreach (var file in Directory.GetFiles(dir, "*.conf").OrderBy(f => Path.GetFileName(f) == NvidiaInstallerFile ? 0 : 1).ThenBy(f => f, StringComparer.Ordinal))
            {
                var host = ModprobeDirectory + "/" + Path.GetFileName(file);
                if (host == except) continue;
                var lines = (Sysfs.TryReadText(file) ?? string.Empty).Split('\n')
                    .Select(l => Regex.Replace(l.Split('#')[0].Trim(), @"\s+", " "))
                    .ToList();
                if (lines.Contains("blacklist nouveau") && lines.Contains("options nouveau modeset=0")) return host;
            }
            return null;
        }

        /// <summary>Where mkinitcpio keeps its configuration: its presence says the host builds its initramfs with it.</summary>
        public const string MkinitcpioConf = "/etc/mkinitcpio.conf";

        /// <summary>
        /// The initramfs tool the host has, or the one given: mkinitcpio where it is configured
        /// (<c>/etc/mkinitcpio.conf</c>: Arch and Manjaro, which may have dracut installed beside it), then dracut,
        /// then update-initramfs, then mkinitcpio without its configuration.
        /// </summary>
        public static InitramfsTool DetectTool(HostRoot root, InitramfsTool? tool)
        {
            if (tool is InitramfsTool given) return given;
            var mkinitcpio = ProgramLocator.ExistsOnHost(root, "mkinitcpio");
            if (mkinitcpio && HostFiles.Exists(root, MkinitcpioConf)) return InitramfsTool.Mkinitcpio;
            if (ProgramLocator.ExistsOnHost(root, "dracut")) return InitramfsTool.Dracut;
            if (ProgramLocator.ExistsOnHost(root, "update-initramfs")) return InitramfsTool.InitramfsTools;
            if (mkinitcpio) return InitramfsTool.Mkinitcpio;
            throw new GpuVirtException(ErrorIds.InitramfsToolNotDetected, ErrorKind.NotInstalled,
                $"Neither dracut, update-initramfs nor mkinitcpio was found{(root.IsLive ? string.Empty : " under '" + root.Directory + "'")}. Install dracut (RHEL, Fedora), initramfs-tools (Debian, Ubuntu) or mkinitcpio (Arch, Manjaro), or give -InitramfsTool.",
                root.Directory);
        }

        /// <summary>The program name of a tool, as <c>-InitramfsTool</c> takes it.</summary>
        public static string ProgramOf(InitramfsTool tool) => tool switch
        {
            InitramfsTool.Dracut => "dracut",
            InitramfsTool.Mkinitcpio => "mkinitcpio",
            _ => "update-initramfs",
        };

        public static HostCommand Regenerate(InitramfsTool tool, bool allKernels) => tool switch
        {
            InitramfsTool.Dracut => allKernels ? new HostCommand("dracut", "--regenerate-all", "--force") : new HostCommand("dracut", "--force"),
            // mkinitcpio has no "the running kernel only" without naming its preset: -P builds every preset, as a kernel upgrade does.
            InitramfsTool.Mkinitcpio => new HostCommand("mkinitcpio", "-P"),
            _ => allKernels ? new HostCommand("update-initramfs", "-u", "-k", "all") : new HostCommand("update-initramfs", "-u"),
        };

        /// <summary>Plans the blacklist: a new file and a new initramfs, or nothing when nouveau is already blacklisted.</summary>
        public static NouveauPlan PlanDisable(HostRoot root, string name, bool allKernels, InitramfsTool? tool)
        {
            var file = FileFor(name);
            var chosen = DetectTool(root, tool);
            var transaction = new BootTransaction(root) { Action = "Disable-NouveauDriver" };
            var warnings = new List<string>();
            var full = root.Resolve(file);
            var existing = File.Exists(full) ? HostFiles.ReadText(full, file) : null;
            var already = FindBlacklist(root);
            if (already is null)
            {
                if (existing != null)
                {
                    throw new GpuVirtException(ErrorIds.ModprobeFileConflict, ErrorKind.ResourceBusy,
                        $"'{file}' exists and does not blacklist nouveau; it is left as it is. Give -Name another file name.", file);
                }
                transaction.Writes.Add(new FileWrite(file, null, Content, backup: true, after: "blacklist nouveau; options nouveau modeset=0"));
                transaction.Commands.Add(Regenerate(chosen, allKernels));
            }
            var loaded = Directory.Exists(root.Resolve(HostPaths.SysModule + "/nouveau"));
            return new NouveauPlan("Disable-NouveauDriver", chosen, transaction, already, warnings, transaction.Writes.Count > 0 || loaded)
            {
                Replan = () => PlanDisable(root, name, allKernels, tool),
            };
        }

        /// <summary>Plans the undo: removes the file Disable-NouveauDriver wrote (and nothing else), then a new initramfs.</summary>
        public static NouveauPlan PlanEnable(HostRoot root, string name, bool allKernels, InitramfsTool? tool)
        {
            var file = FileFor(name);
            var chosen = DetectTool(root, tool);
            var transaction = new BootTransaction(root) { Action = "Enable-NouveauDriver" };
            var warnings = new List<string>();
            var full = root.Resolve(file);
            if (File.Exists(full))
            {
                var text = HostFiles.ReadText(full, file);
                if (!text.StartsWith(Marker, StringComparison.Ordinal))
                {
                    throw new GpuVirtException(ErrorIds.ModprobeFileConflict, ErrorKind.ResourceBusy,
                        $"'{file}' was not written by Disable-NouveauDriver; it is left as it is.", file);
                }
                transaction.Writes.Add(new FileWrite(file, text, null, backup: true, before: "blacklist nouveau; options nouveau modeset=0"));
                transaction.Commands.Add(Regenerate(chosen, allKernels));
            }
            else
            {
                warnings.Add($"'{file}' does not exist: there is no blacklist of Disable-NouveauDriver to remove.");
            }
            var other = FindBlacklist(root, file);
            if (other != null) warnings.Add($"'{other}' blacklists nouveau too and is not changed: nouveau stays off until it is removed.");
            return new NouveauPlan("Enable-NouveauDriver", chosen, transaction, other, warnings, transaction.Writes.Count > 0)
            {
                Replan = () => PlanEnable(root, name, allKernels, tool),
            };
        }

        /// <summary>
        /// Carries a plan out under the host lock. A modprobe file that changed since the plan was made (another
        /// command) gets the request planned again from what is there now.
        /// </summary>
        public static BootChange Apply(HostRoot root, NouveauPlan plan, ProcessRunner runner, CancellationToken cancellationToken = default,
            Action<HostCommand, int, int>? progress = null, ChangeRecorder? recorder = null, TimeSpan? lockTimeout = null, Action<string>? log = null, TimeSpan? regenerationTimeout = null)
        {
            // Nothing to write and no interrupted change to settle: nothing is touched, not even the lock's file
            // (-WhatIf and a read-only image alike).
            if (!plan.HasChanges) return new BootChange(plan.Action, null, ProgramOf(plan.Tool), Array.Empty<BootFileChange>(), Array.Empty<string>(), Array.Empty<string>(), Array.Empty<string>(), plan.RebootRequired);
            // What cannot be written (not root, a read-only image) is told about the file itself, before the lock.
            plan.Transaction.Preflight();
            using (HostLock.Acquire(root, "change the nouveau blacklist", cancellationToken, lockTimeout, log))
            {
                var timeout = regenerationTimeout ?? BootTransaction.DefaultCommandTimeout;
                // A boot change killed half-way first: finished or taken back, then this one is planned from what that left.
                var recovered = BootTransaction.Recover(root, runner, cancellationToken, timeout);
                var changed = plan.Transaction.ChangedSincePlanned();
                if (plan.Replan != null && (changed.Count > 0 || !plan.HasWrites || recovered != null))
                {
                    var again = plan.Replan();
                    if (changed.Count > 0 || again.HasWrites || recovered != null)
                    {
                        if (changed.Count > 0) log?.Invoke($"{string.Join(", ", changed)} changed since this command read it ({(recovered != null ? "the interrupted change was settled" : "another command ran meanwhile")}): planned again from the files as they are now.");
                        plan = again;
                    }
                }
                var tool = ProgramOf(plan.Tool);
                var before = recovered?.Commands ?? Array.Empty<string>();
                if (!plan.HasWrites)
                {
                    var restored = recovered?.Restored.Select(p => new BootFileChange(p, BootFileAction.Modified, null, null, null)).ToList() ?? new List<BootFileChange>();
                    return new BootChange(plan.Action, null, tool, restored, Array.Empty<string>(), Array.Empty<string>(), before, plan.RebootRequired)
                    {
                        Recovered = recovered?.ToString(),
                    };
                }
                plan.Transaction.Progress = progress;
                plan.Transaction.CommandTimeout = timeout;
                var write = plan.Transaction.Writes[0];
                var record = new ChangeRecord
                {
                    Target = write.HostPath,
                    Action = (plan.Action == "Disable-NouveauDriver" ? "Blacklist nouveau" : "Remove the nouveau blacklist") + " and regenerate the initramfs",
                    RebootRequired = true,
                };
                record.Details.Add(new ChangeDetail(write.HostPath, write.Before, write.After));
                var (files, commands) = plan.Transaction.Execute(runner, cancellationToken, recorder, record);
                return new BootChange(plan.Action, null, tool, files, Array.Empty<string>(), Array.Empty<string>(), before.Concat(commands).ToList(), plan.RebootRequired)
                {
                    Recovered = recovered?.ToString(),
                }.On(root);
            }
        }
    }
}
