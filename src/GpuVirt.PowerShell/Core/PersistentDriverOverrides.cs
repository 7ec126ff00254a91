using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Planning;

namespace GpuVirt.Core
{
    /// <summary>
    /// Boot-time driver overrides for single PCI addresses, in driverctl's format: <c>/etc/driverctl.d/pci-ADDRESS</c>
    /// holds the driver's name, and driverctl's udev rule and <c>driverctl@.service</c> apply it when the device
    /// appears at boot. This takes one of two identical cards where an id on the kernel command line would take both.
    /// On the live host with driverctl installed, driverctl itself binds and saves (<c>set-override</c>) or gives back
    /// and removes (<c>unset-override</c>); otherwise the file is written or removed under the root and the binding is
    /// changed through sysfs as usual. For vfio-pci, <c>/etc/modprobe.d/gpuvirt-vfio-pci.conf</c> holds
    /// <c>softdep HOSTDRIVER pre: vfio-pci</c> for the driver each address is taken from, so that vfio-pci is loaded
    /// before it at boot; a driver's line goes with the last address that needs it. Where the host builds an initramfs
    /// (dracut, initramfs-tools, mkinitcpio, <see cref="NouveauBlacklist.DetectTool"/>), vfio-pci is put in its module
    /// list too (<see cref="InitramfsModules"/>) while the softdep file has an address, and each change of the softdep
    /// file builds the initramfs again (it carries a copy of modprobe.d), through the boot code's transaction: bounded,
    /// every file put back when the program fails, finished or taken back after a kill.
    /// Where driverctl is not installed (on the live host or in the image), its record would bind nothing at boot: a udev
    /// rule of the module's own, <c>/etc/udev/rules.d/61-gpuvirt-driver-override-ADDRESS.rules</c>, sets
    /// <c>driver_override</c> for that address when the device appears, as driverctl's rule and service do; with the
    /// softdep (for vfio-pci and pci-stub alike) and the initramfs entry, the host driver then finds the function taken.
    /// </summary>
    internal sealed class PersistentDriverOverrides
    {
        public const string Directory = "/etc/driverctl.d";
        public const string SoftdepFile = "/etc/modprobe.d/gpuvirt-vfio-pci.conf";
        public const string Program = "driverctl";
        public const string UdevDirectory = "/etc/udev/rules.d";
        private const string RuleMarker = "# Written by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back):";
        private const string Header =
            "# Written by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back):\n" +
            "# load vfio-pci (or pci-stub) before the drivers it replaces at boot, for the addresses bound to it at boot\n" +
            "# (driverctl's record in /etc/driverctl.d, or the udev rule GpuVirt writes where driverctl is not installed).\n";
        private const string EntryPrefix = "# address ";

        private readonly HostRoot _root;

        public PersistentDriverOverrides(HostRoot root)
        {
            _root = root;
            Driverctl = root.IsLive ? ProgramLocator.Find(Program) : null;
        }

        /// <summary>Runs the initramfs tool.</summary>
        public ProcessRunner Runner { get; set; } = new ProcessRunner();

        /// <summary>The bound of the initramfs tool's run (<see cref="BootTransaction.DefaultCommandTimeout"/> when null).</summary>
        public TimeSpan? RegenerationTimeout { get; set; }

        private InitramfsTool? _tool;
        private bool _toolDetected;

        /// <summary>The host's initramfs tool, or null when it has none (vfio-pci then loads from the root filesystem).</summary>
        public InitramfsTool? Tool
        {
            get
            {
                if (_toolDetected) return _tool;
                _toolDetected = true;
                try { _tool = NouveauBlacklist.DetectTool(_root, null); }
                catch (GpuVirtException e) when (e.ErrorId == ErrorIds.InitramfsToolNotDetected) { _tool = null; }
                return _tool;
            }
            set
            {
                _tool = value;
                _toolDetected = true;
            }
        }

        /// <summary>driverctl when the root is the live host and it is installed; null: the files are written directly.</summary>
        public string? Driverctl { get; set; }

        /// <summary>The record of one address: <c>/etc/driverctl.d/pci-0000:02:00.0</c>.</summary>
        public static string PathOf(PciAddress address) => Directory + "/pci-" + address;

        /// <summary>The persisted driver of an address in driverctl's record, or null.</summary>
        public string? Read(PciAddress address)
        {
            var text = Sysfs.TryReadText(_root.Resolve(PathOf(address)));
            return string.IsNullOrEmpty(text) ? null : text;
        }

        /// <summary>The module's udev rule of one address (where driverctl is not installed).</summary>
        public static string RulePathOf(PciAddress address) => UdevDirectory + "/61-gpuvirt-driver-override-" + address + ".rules";

        /// <summary>Whether driverctl is installed on the host (or in the image): only then does its record bind anything at boot.</summary>
        public bool DriverctlInstalled => Driverctl != null || ProgramLocator.ExistsOnHost(_root, Program);

        /// <summary>The rule that sets <c>driver_override</c> for one address when the device is added, as driverctl does at boot.</summary>
        public static string Rule(PciAddress address, string driver) =>
            RuleMarker + "\n" +
            $"# driverctl is not installed: this rule binds {address} to {driver} at every boot (driver_override, as driverctl does).\n" +
            $"ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"{address}\", ATTR{{driver_override}}=\"{driver}\"\n";

        /// <summary>The driver the module's udev rule binds an address to, or null.</summary>
        public string? ReadRule(PciAddress address)
        {
            var text = ReadFile(RulePathOf(address));
            if (text is null || !text.StartsWith(RuleMarker, StringComparison.Ordinal)) return null;
            var match = System.Text.RegularExpressions.Regex.Match(text, "ATTR\\{driver_override\\}=\"([^\"]+)\"");
            return match.Success ? match.Groups[1].Value : null;
        }

        /// <summary>The addresses the softdep file keeps vfio-pci early for, with the host driver of each.</summary>
        public IReadOnlyDictionary<PciAddress, string> SoftdepEntries() => ParseEntries(ReadFile(SoftdepFile));

        /// <summary>
        /// Adds to <paramref name="plan"/> the steps that keep <paramref name="address"/> bound to
        /// <paramref name="driver"/> at boot: the driverctl record (unless driverctl itself is the plan's bind step,
        /// <paramref name="viaDriverctl"/>) and, for vfio-pci taken from <paramref name="hostDriver"/>, its softdep.
        /// Each step restores the file as it was when undone; the journal record gets the same inverse, with the
        /// initramfs tool's command in <paramref name="regenerate"/> when the initramfs is built again.
        /// </summary>
        public void PlanPersist(ChangePlan plan, PciAddress address, string driver, string? hostDriver, bool viaDriverctl, List<FileState> journal, List<HostCommand> regenerate)
        {
            HostDriverBinding.CheckDriverName(driver);
            if (!viaDriverctl && DriverctlInstalled && Read(address) != driver)
            {
                AddFileStep(plan, PathOf(address), driver + "\n", $"write '{driver}' to {PathOf(address)} (driverctl's record: bound to {driver} at every boot)", journal);
            }
            else if (!viaDriverctl && !DriverctlInstalled && ReadRule(address) != driver)
            {
                AddFileStep(plan, RulePathOf(address), Rule(address, driver),
                    $"write {RulePathOf(address)} (driverctl is not installed: a udev rule that sets driver_override to {driver} for {address} at every boot)", journal);
            }
            var entries = ParseTargets(ReadFile(SoftdepFile));
            if ((driver == HostDriverBinding.VfioPci || driver == HostDriverBinding.PciStub) && hostDriver != null && !PciInventory.IsPassthroughDriver(hostDriver))
            {
                var module = hostDriver.Replace('-', '_');
                if (!(entries.TryGetValue(address, out var had) && had.Module == module && had.Target == driver))
                {
                    entries[address] = (module, driver);
                    AddFileStep(plan, SoftdepFile, Render(entries), $"add 'softdep {module} pre: {driver}' for {address} to {SoftdepFile} ({driver} loads before {module} at boot)", journal);
                    PlanInitramfs(plan, driver, wanted: true, journal, regenerate);
                }
            }
        }

        /// <summary>
        /// Adds the steps that drop the boot-time binding of <paramref name="address"/>: its driverctl record (unless
        /// driverctl's <c>unset-override</c> is the plan's step) and its softdep entry.
        /// </summary>
        public void PlanUnpersist(ChangePlan plan, PciAddress address, bool viaDriverctl, List<FileState> journal, List<HostCommand> regenerate)
        {
            if (!viaDriverctl && File.Exists(_root.Resolve(PathOf(address))))
            {
                AddFileStep(plan, PathOf(address), null, $"remove {PathOf(address)} (driverctl's record of the boot-time binding)", journal);
            }
            if (ReadRule(address) != null)
            {
                AddFileStep(plan, RulePathOf(address), null, $"remove {RulePathOf(address)} (the udev rule of the boot-time binding)", journal);
            }
            var entries = ParseTargets(ReadFile(SoftdepFile));
            if (entries.TryGetValue(address, out var entry))
            {
                var module = entry.Module;
                entries.Remove(address);
                var left = entries.Values.Any(e => e.Module == module && e.Target == entry.Target) ? string.Empty : $": 'softdep {module} pre: {entry.Target}' goes";
                AddFileStep(plan, SoftdepFile, entries.Count == 0 ? null : Render(entries), $"take {address} out of {SoftdepFile}{left}", journal);
                PlanInitramfs(plan, entry.Target, wanted: entries.Values.Any(e => e.Target == entry.Target), journal, regenerate);
            }
        }

        /// <summary>Whether there is anything for <see cref="PlanUnpersist"/> to remove.</summary>
        public bool HasRecord(PciAddress address) =>
            File.Exists(_root.Resolve(PathOf(address))) || ReadRule(address) != null || SoftdepEntries().ContainsKey(address);

        /// <summary>driverctl's command line that binds and saves (<c>set-override</c>) or gives back and removes (<c>unset-override</c>).</summary>
        public static IReadOnlyList<string> Arguments(PciAddress address, string? driver) =>
            driver is null ? new[] { "unset-override", address.ToString() } : new[] { "set-override", address.ToString(), driver };

        /// <summary>
        /// The initramfs step, after the softdep file changed: the driver (vfio-pci or pci-stub) put in (or, <paramref name="wanted"/> false, taken
        /// out of) the tool's module list, and the initramfs built again. Nothing on a host without an initramfs tool.
        /// </summary>
        private void PlanInitramfs(ChangePlan plan, string driver, bool wanted, List<FileState> journal, List<HostCommand> regenerate)
        {
            if (!(Tool is InitramfsTool tool)) return;
            var path = InitramfsModules.FileOf(tool, driver);
            var original = ReadFile(path);
            var content = wanted ? InitramfsModules.With(tool, original, driver) : InitramfsModules.Without(tool, original, driver);
            var command = NouveauBlacklist.Regenerate(tool, allKernels: false);
            var run = _root.IsLive ? command.ToString() : ProcessRunner.Render("chroot", new[] { _root.Directory, command.Program }.Concat(command.Arguments));
            var forward = Transaction(path, original, content, command);
            string description;
            if (content == original)
            {
                description = $"run {run} (the initramfs carries {SoftdepFile})";
            }
            else
            {
                var what = wanted ? $"put {driver} in" : $"take {driver} out of";
                description = $"{(content is null ? "remove" : "write")} {path} ({what} the initramfs: {InitramfsModules.Entry(tool, driver).Replace('\n', ' ')}), then run {run}";
                plan.Preconditions.Add(new PlanPrecondition($"{path} is as it was read", () =>
                    ReadFile(path) == original ? null : $"{path} was changed since"));
                journal.Add(new FileState { Path = path, Content = original is null ? null : FileState.Encode(original), Expected = FileState.Hash(content) });
            }
            plan.Preflight.Add(forward.Preflight);
            plan.Steps.Add(new PlanStep(description,
                c => RunTransaction(forward, c),
                c => RunTransaction(Transaction(path, content, original, command), c),
                (content == original ? string.Empty : $"put {path} back as it was, then ") + $"run {run}"));
            plan.Consequences.Add($"The new initramfs ({ProcessRunner.Render(command.Program, command.Arguments)}) is used from the next boot.");
            regenerate.Add(command);
        }

        private BootTransaction Transaction(string path, string? original, string? content, HostCommand command)
        {
            var transaction = new BootTransaction(_root) { Action = "Dismount-GpuHostDriver -Persistent" };
            if (content != original) transaction.Writes.Add(new FileWrite(path, original, content, backup: false));
            transaction.Commands.Add(command);
            return transaction;
        }

        /// <summary>
        /// Runs the boot code's transaction (under the plan's host lock): an interrupted boot change settled first,
        /// then the file written and the tool run within its bound; a failing tool puts the file back and fails the step.
        /// </summary>
        private void RunTransaction(BootTransaction transaction, PlanContext context)
        {
            var timeout = RegenerationTimeout ?? BootTransaction.DefaultCommandTimeout;
            BootTransaction.Recover(_root, Runner, context.CancellationToken, timeout);
            var changed = transaction.ChangedSincePlanned();
            if (changed.Count > 0)
            {
                throw new GpuVirtException(ErrorIds.HostChangedSincePlan, ErrorKind.ResourceBusy,
                    $"{string.Join(", ", changed)} changed since this command read it; nothing of it was written.", changed[0]);
            }
            transaction.CommandTimeout = timeout;
            foreach (var c in transaction.Commands) context.Log?.Invoke("Running " + c);
            transaction.Execute(Runner, context.CancellationToken);
        }

        private void AddFileStep(ChangePlan plan, string hostPath, string? content, string description, List<FileState> journal)
        {
            var original = ReadFile(hostPath);
            var full = _root.Resolve(hostPath);
            plan.Steps.Add(new PlanStep(description,
                c => Put(full, hostPath, content, c.Log),
                c => Put(full, hostPath, original, c.Log),
                original is null ? $"remove {hostPath}" : $"put {hostPath} back as it was"));
            plan.Preconditions.Add(new PlanPrecondition($"{hostPath} is as it was read", () =>
                ReadFile(hostPath) == original ? null : $"{hostPath} was changed since"));
            journal.Add(new FileState { Path = hostPath, Content = original is null ? null : FileState.Encode(original), Expected = FileState.Hash(content) });
        }

        private static void Put(string full, string hostPath, string? content, Action<string>? log)
        {
            if (content is null)
            {
                if (!File.Exists(full)) return;
                log?.Invoke($"Removing {hostPath}");
                HostFiles.Delete(full, hostPath);
                return;
            }
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            log?.Invoke($"Writing {hostPath}");
            HostFiles.WriteAtomically(full, hostPath, content);
        }

        private string? ReadFile(string hostPath)
        {
            var full = _root.Resolve(hostPath);
            return File.Exists(full) ? HostFiles.ReadText(full, hostPath) : null;
        }

        private static Dictionary<PciAddress, string> ParseEntries(string? text) =>
            ParseTargets(text).ToDictionary(e => e.Key, e => e.Value.Module);

        /// <summary>Each address's entry: the host driver's module and the driver that loads before it (vfio-pci when the line names none).</summary>
        private static Dictionary<PciAddress, (string Module, string Target)> ParseTargets(string? text)
        {
            var entries = new Dictionary<PciAddress, (string Module, string Target)>();
            foreach (var line in (text ?? string.Empty).Split('\n'))
            {
                if (!line.StartsWith(EntryPrefix, StringComparison.Ordinal)) continue;
                var parts = line.Substring(EntryPrefix.Length).Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 3 || parts[1] != "from" || !PciAddress.TryParse(parts[0], out var address)) continue;
                var target = parts.Length >= 5 && parts[3] == "to" ? parts[4] : HostDriverBinding.VfioPci;
                entries[address] = (parts[2], target);
            }
            return entries;
        }

        /// <summary>
        /// The file: one comment line per address (modprobe.d has no trailing comments), then one softdep line per
        /// host driver.
        /// </summary>
        private static string Render(IReadOnlyDictionary<PciAddress, (string Module, string Target)> entries)
        {
            var text = new System.Text.StringBuilder(Header);
            foreach (var e in entries.OrderBy(e => e.Key))
            {
                text.Append(EntryPrefix).Append(e.Key).Append(" from ").Append(e.Value.Module);
                if (e.Value.Target != HostDriverBinding.VfioPci) text.Append(" to ").Append(e.Value.Target);
                text.Append('\n');
            }
            foreach (var module in entries.Values.GroupBy(e => e.Module, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                // vfio-pci first, as files written before pci-stub had it.
                var pre = module.Select(e => e.Target).Distinct(StringComparer.Ordinal).OrderBy(t => t == HostDriverBinding.VfioPci ? 0 : 1).ThenBy(t => t, StringComparer.Ordinal);
                text.Append("softdep ").Append(module.Key).Append(" pre: ").Append(string.Join(" ", pre)).Append('\n');
            }
            return text.ToString();
        }
    }
}
