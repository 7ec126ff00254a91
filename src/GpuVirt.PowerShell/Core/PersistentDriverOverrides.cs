using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
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
    /// before it at boot; a driver's line goes with the last address that needs it.
    /// </summary>
    internal sealed class PersistentDriverOverrides
    {
        public const string Directory = "/etc/driverctl.d";
        public const string SoftdepFile = "/etc/modprobe.d/gpuvirt-vfio-pci.conf";
        public const string Program = "driverctl";
        private const string Header =
            "# Written by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back):\n" +
            "# load vfio-pci before the drivers it replaces at boot, for the addresses /etc/driverctl.d binds to it.\n";
        private const string EntryPrefix = "# address ";

        private readonly HostRoot _root;

        public PersistentDriverOverrides(HostRoot root)
        {
            _root = root;
            Driverctl = root.IsLive ? ProgramLocator.Find(Program) : null;
        }

        /// <summary>driverctl when the root is the live host and it is installed; null: the files are written directly.</summary>
        public string? Driverctl { get; set; }

        /// <summary>The record of one address: <c>/etc/driverctl.d/pci-0000:02:00.0</c>.</summary>
        public static string PathOf(PciAddress address) => Directory + "/pci-" + address;

        /// <summary>The persisted driver of an address, or null.</summary>
        public string? Read(PciAddress address)
        {
            var text = Sysfs.TryReadText(_root.Resolve(PathOf(address)));
            return string.IsNullOrEmpty(text) ? null : text;
        }

        /// <summary>The addresses the softdep file keeps vfio-pci early for, with the host driver of each.</summary>
        public IReadOnlyDictionary<PciAddress, string> SoftdepEntries() => ParseEntries(ReadFile(SoftdepFile));

        /// <summary>
        /// Adds to <paramref name="plan"/> the steps that keep <paramref name="address"/> bound to
        /// <paramref name="driver"/> at boot: the driverctl record (unless driverctl itself is the plan's bind step,
        /// <paramref name="viaDriverctl"/>) and, for vfio-pci taken from <paramref name="hostDriver"/>, its softdep.
        /// Each step restores the file as it was when undone; the journal record gets the same inverse.
        /// </summary>
        public void PlanPersist(ChangePlan plan, PciAddress address, string driver, string? hostDriver, bool viaDriverctl, List<FileState> journal)
        {
            HostDriverBinding.CheckDriverName(driver);
            if (!viaDriverctl && Read(address) != driver)
            {
                AddFileStep(plan, PathOf(address), driver + "\n", $"write '{driver}' to {PathOf(address)} (driverctl's record: bound to {driver} at every boot)", journal);
            }
            var entries = SoftdepEntries().ToDictionary(e => e.Key, e => e.Value);
            if (driver == HostDriverBinding.VfioPci && hostDriver != null && !PciInventory.IsPassthroughDriver(hostDriver))
            {
                var module = hostDriver.Replace('-', '_');
                if (!(entries.TryGetValue(address, out var had) && had == module))
                {
                    entries[address] = module;
                    AddFileStep(plan, SoftdepFile, Render(entries), $"add 'softdep {module} pre: vfio-pci' for {address} to {SoftdepFile} (vfio-pci loads before {module} at boot)", journal);
                }
            }
        }

        /// <summary>
        /// Adds the steps that drop the boot-time binding of <paramref name="address"/>: its driverctl record (unless
        /// driverctl's <c>unset-override</c> is the plan's step) and its softdep entry.
        /// </summary>
        public void PlanUnpersist(ChangePlan plan, PciAddress address, bool viaDriverctl, List<FileState> journal)
        {
            if (!viaDriverctl && File.Exists(_root.Resolve(PathOf(address))))
            {
                AddFileStep(plan, PathOf(address), null, $"remove {PathOf(address)} (driverctl's record of the boot-time binding)", journal);
            }
            var entries = SoftdepEntries().ToDictionary(e => e.Key, e => e.Value);
            if (entries.TryGetValue(address, out var module))
            {
                entries.Remove(address);
                var left = entries.Values.Contains(module) ? string.Empty : $": 'softdep {module} pre: vfio-pci' goes";
                AddFileStep(plan, SoftdepFile, entries.Count == 0 ? null : Render(entries), $"take {address} out of {SoftdepFile}{left}", journal);
            }
        }

        /// <summary>Whether there is anything for <see cref="PlanUnpersist"/> to remove.</summary>
        public bool HasRecord(PciAddress address) =>
            File.Exists(_root.Resolve(PathOf(address))) || SoftdepEntries().ContainsKey(address);

        /// <summary>driverctl's command line that binds and saves (<c>set-override</c>) or gives back and removes (<c>unset-override</c>).</summary>
        public static IReadOnlyList<string> Arguments(PciAddress address, string? driver) =>
            driver is null ? new[] { "unset-override", address.ToString() } : new[] { "set-override", address.ToString(), driver };

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

        private static Dictionary<PciAddress, string> ParseEntries(string? text)
        {
            var entries = new Dictionary<PciAddress, string>();
            foreach (var line in (text ?? string.Empty).Split('\n'))
            {
                if (!line.StartsWith(EntryPrefix, StringComparison.Ordinal)) continue;
                var parts = line.Substring(EntryPrefix.Length).Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 3 && parts[1] == "from" && PciAddress.TryParse(parts[0], out var address)) entries[address] = parts[2];
            }
            return entries;
        }

        /// <summary>
        /// The file: one comment line per address (modprobe.d has no trailing comments), then one softdep line per
        /// host driver.
        /// </summary>
        private static string Render(IReadOnlyDictionary<PciAddress, string> entries)
        {
            var text = new System.Text.StringBuilder(Header);
            foreach (var e in entries.OrderBy(e => e.Key)) text.Append(EntryPrefix).Append(e.Key).Append(" from ").Append(e.Value).Append('\n');
            foreach (var module in entries.Values.Distinct(StringComparer.Ordinal).OrderBy(m => m, StringComparer.Ordinal))
            {
                text.Append("softdep ").Append(module).Append(" pre: vfio-pci\n");
            }
            return text.ToString();
        }
    }
}
