using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Safety;

namespace GpuVirt.Core
{
    /// <summary>How a function is taken from (or given back to) its host driver.</summary>
    public enum HostDriverMethod
    {
        /// <summary>virsh when the host is the live one and libvirt answers; sysfs otherwise.</summary>
        Auto,

        /// <summary><c>virsh nodedev-detach</c> / <c>nodedev-reattach</c>.</summary>
        Virsh,

        /// <summary><c>driver_override</c>, <c>unbind</c>, <c>drivers_probe</c> under the host root.</summary>
        Sysfs,
    }

    /// <summary>What a detach or reattach did to one function.</summary>
    internal sealed class HostDriverChange
    {
        public HostDriverChange(PciAddress address, string? before, string? after, HostDriverMethod method)
        {
            Address = address;
            DriverBefore = before;
            DriverAfter = after;
            Method = method;
        }

        public PciAddress Address { get; }
        public string? DriverBefore { get; }
        public string? DriverAfter { get; }
        public HostDriverMethod Method { get; }
        public bool Changed => !string.Equals(DriverBefore, DriverAfter, StringComparison.Ordinal);
    }

    /// <summary>
    /// A driver move under way, written (under the host lock) before its first sysfs write and removed once the move
    /// is done or put back: a command killed between <c>unbind</c> and <c>drivers_probe</c> leaves the function with no
    /// driver, and this is what tells the next command which driver it had.
    /// </summary>
    internal sealed class DriverIntent
    {
        public string Address { get; set; } = string.Empty;

        /// <summary><c>Detach</c> (taken from its driver for <see cref="Target"/>) or <c>Reattach</c> (given back to the host).</summary>
        public string Operation { get; set; } = string.Empty;

        /// <summary>The driver the function had before the move (null: none).</summary>
        public string? Driver { get; set; }

        /// <summary>Its <c>driver_override</c> before the move (null: unset).</summary>
        public string? Override { get; set; }

        /// <summary>The driver a detach binds (vfio-pci, pci-stub).</summary>
        public string? Target { get; set; }
    }

    /// <summary>
    /// Rebinds PCI functions through sysfs, as the kernel documents it: the driver's name to <c>driver_override</c>,
    /// the address to the bound driver's <c>unbind</c>, then to <c>/sys/bus/pci/drivers_probe</c>. <c>drivers_probe</c>
    /// succeeds even when no driver takes the function, so the <c>driver</c> link is read again to decide. A detach
    /// that did not bind puts <c>driver_override</c> back and probes again so the old driver can return.
    /// </summary>
    internal sealed class HostDriverBinding
    {
        public const string VfioPci = "vfio-pci";
        public const string PciStub = "pci-stub";

        private readonly HostRoot _root;
        private readonly Action<string>? _log;

        public HostDriverBinding(HostRoot root, Action<string>? log = null)
        {
            _root = root;
            _log = log;
        }

        /// <summary>The function's directory; a <see cref="ErrorIds.PciDeviceNotFound"/> error when there is none.</summary>
        public string DeviceDirectory(PciAddress address)
        {
            var dir = Path.Combine(_root.Resolve(HostPaths.PciDevices), address.ToString());
            if (!Directory.Exists(dir))
            {
                throw PciInventory.NotFound(address);
            }
            return dir;
        }

        public string? CurrentDriver(PciAddress address) => Sysfs.TryReadLinkName(Path.Combine(DeviceDirectory(address), "driver"));

        public bool IsDriverLoaded(string driver) => Directory.Exists(Path.Combine(_root.Resolve(HostPaths.PciDrivers), driver));

        /// <summary>Where the intent of a driver move is kept: one file per function.</summary>
        public const string PendingDirectory = "/var/lib/gpuvirt/driver-pending";

        private static string PendingPath(PciAddress address) => PendingDirectory + "/" + address + ".json";

        /// <summary>The driver move a killed command left for this function, or null.</summary>
        public DriverIntent? Pending(PciAddress address)
        {
            var hostPath = PendingPath(address);
            var full = _root.Resolve(hostPath);
            if (!File.Exists(full)) return null;
            try
            {
                var intent = JsonSerializer.Deserialize<DriverIntent>(HostFiles.ReadText(full, hostPath));
                if (intent is null || intent.Address != address.ToString() || (intent.Operation != "Detach" && intent.Operation != "Reattach"))
                    throw new JsonException("it names another function or no operation");
                if (intent.Driver != null) CheckDriverName(intent.Driver);
                if (intent.Target != null) CheckDriverName(intent.Target);
                return intent;
            }
            catch (Exception e) when (e is JsonException || e is GpuVirtException && ((GpuVirtException)e).ErrorId == ErrorIds.InvalidDriverName)
            {
                throw new GpuVirtException(ErrorIds.JournalUnreadable, ErrorKind.InvalidData,
                    $"'{hostPath}' (the record of an interrupted driver move of {address}) cannot be read: {e.Message}. Check the function's driver, then remove the file.", hostPath, e);
            }
        }

        /// <summary>
        /// The driver the function really had: the one a pending move took it from, else the one it has now. A rerun of
        /// a killed Dismount-GpuHostDriver records this as the original, not "no driver".
        /// </summary>
        public string? OriginalDriver(PciAddress address) =>
            Pending(address) is DriverIntent p && p.Operation == "Detach" ? p.Driver : CurrentDriver(address);

        private void WriteIntent(DriverIntent intent)
        {
            var hostPath = PendingPath(PciAddress.Parse(intent.Address));
            var full = _root.Resolve(hostPath);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            HostFiles.WriteAtomically(full, hostPath, JsonSerializer.Serialize(intent) + "\n");
        }

        private void RemoveIntent(PciAddress address)
        {
            var hostPath = PendingPath(address);
            var full = _root.Resolve(hostPath);
            if (File.Exists(full)) HostFiles.Delete(full, hostPath);
            var dir = Path.GetDirectoryName(full)!;
            try
            {
                if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).GetEnumerator().MoveNext()) Directory.Delete(dir);
            }
            catch (IOException)
            {
            }
        }

        /// <summary>
        /// Settles a driver move a killed command left (call under the host lock): a detach is taken back (its
        /// <c>driver_override</c> as it was, a probe, so the driver it had takes the function again), a reattach is
        /// finished (the override cleared, a probe). Returns what was done, or null when nothing was pending.
        /// </summary>
        public string? Settle(PciAddress address)
        {
            var intent = Pending(address);
            if (intent is null) return null;
            var dir = DeviceDirectory(address);
            var overridePath = Path.Combine(dir, "driver_override");
            var now = CurrentDriver(address);
            string done;
            if (intent.Operation == "Detach")
            {
                Write(overridePath, intent.Override is null || intent.Override == "(null)" ? "\n" : intent.Override);
                if (now != null && now != intent.Driver) Unbind(dir, address);
                if (CurrentDriver(address) is null) Write(_root.Resolve(HostPaths.PciDriversProbe), address.ToString());
                var after = WaitForDriver(address, d => d == intent.Driver);
                done = $"an interrupted move of {address} to {intent.Target} was taken back: it is bound to {Describe(after)}" +
                       (after == intent.Driver ? string.Empty : $", not to its driver {Describe(intent.Driver)} (is it loaded?)");
            }
            else
            {
                if (Override(address) != null) Write(overridePath, "\n");
                if (now != null && PciInventory.IsPassthroughDriver(now)) Unbind(dir, address);
                if (CurrentDriver(address) is null) Write(_root.Resolve(HostPaths.PciDriversProbe), address.ToString());
                var after = WaitForDriver(address, d => d != null && !PciInventory.IsPassthroughDriver(d));
                done = $"an interrupted return of {address} to its host driver was finished: it is bound to {Describe(after)}";
            }
            RemoveIntent(address);
            _log?.Invoke(done);
            return done;
        }

        /// <summary>Binds the function to <paramref name="driver"/> (vfio-pci or pci-stub) through sysfs.</summary>
        public HostDriverChange Detach(PciAddress address, string driver)
        {
            var dir = DeviceDirectory(address);
            Settle(address);
            var before = CurrentDriver(address);
            if (before == driver) return new HostDriverChange(address, before, before, HostDriverMethod.Sysfs);
            if (!IsDriverLoaded(driver))
            {
                throw new GpuVirtException(ErrorIds.HostDriverNotLoaded, ErrorKind.NotEnabled,
                    $"The driver '{driver}' is not loaded ('{Path.Combine(HostPaths.PciDrivers, driver)}' does not exist). Load it first: modprobe {driver}.",
                    driver);
            }

            var overridePath = Path.Combine(dir, "driver_override");
            var originalOverride = Sysfs.TryReadText(overridePath);
            // The driver it has is recorded before the first write: a kill from here on is taken back by the next command.
            WriteIntent(new DriverIntent { Address = address.ToString(), Operation = "Detach", Driver = before, Override = originalOverride, Target = driver });
            Write(overridePath, driver);
            try
            {
                if (before != null) Unbind(dir, address);
                Write(_root.Resolve(HostPaths.PciDriversProbe), address.ToString());
            }
            catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException || e is OperationCanceledException)
            {
                // unbind or drivers_probe failed (or was stopped): driver_override and the binding go back as they were.
                var failure = e as GpuVirtException;
                throw PutBack(address, overridePath, originalOverride, before,
                    failure?.ErrorId ?? ErrorIds.SysfsWriteFailed, failure?.Kind ?? ErrorKind.WriteError,
                    $"{address} was not bound to '{driver}': {e.Message.TrimEnd('.')}.", e);
            }

            var after = WaitForDriver(address, d => d == driver);
            if (after == driver)
            {
                RemoveIntent(address);
                return new HostDriverChange(address, before, after, HostDriverMethod.Sysfs);
            }

            // Nothing bound as asked: undo what this did, so the old driver can take the function again.
            throw PutBack(address, overridePath, originalOverride, before, ErrorIds.HostDriverNotBound, ErrorKind.InvalidOperation,
                $"{address} did not bind to '{driver}': after drivers_probe its driver is {Describe(after)}.", null);
        }

        /// <summary>
        /// Puts back what a failed <see cref="Detach"/> did: <c>driver_override</c> as it read before, and, when the
        /// function was left with no driver, a probe so that its old driver takes it again. The error says what failed
        /// and the state the function was left in, each step of the putting back that failed included.
        /// </summary>
        private GpuVirtException PutBack(PciAddress address, string overridePath, string? originalOverride, string? before,
            string errorId, ErrorKind kind, string reason, Exception? cause)
        {
            var problems = new List<string>();
            try
            {
                Write(overridePath, originalOverride is null || originalOverride == "(null)" ? "\n" : originalOverride);
            }
            catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException)
            {
                problems.Add($"driver_override could not be put back ({e.Message.TrimEnd('.')})");
            }
            if (CurrentDriver(address) is null && before != null)
            {
                try
                {
                    Write(_root.Resolve(HostPaths.PciDriversProbe), address.ToString());
                }
                catch (Exception e) when (e is GpuVirtException || e is IOException || e is UnauthorizedAccessException)
                {
                    problems.Add($"drivers_probe to give it back to '{before}' failed ({e.Message.TrimEnd('.')})");
                }
            }
            var now = CurrentDriver(address);
            var left = Override(address);
            if (problems.Count == 0)
            {
                try
                {
                    RemoveIntent(address);
                }
                catch (GpuVirtException e)
                {
                    problems.Add(e.Message.TrimEnd('.'));
                }
            }
            var state = problems.Count == 0
                ? $"driver_override was put back; the function is now bound to {Describe(now)}."
                : $"{string.Join("; ", problems)}. The function is left bound to {Describe(now)}, driver_override {(left is null ? "unset" : "'" + left + "'")}" +
                  $" (Mount-GpuHostDriver {address} gives it back to its host driver).";
            return new GpuVirtException(errorId, kind, reason + " " + state, address, cause);
        }

        /// <summary>
        /// True when the function was taken from the host: bound to vfio-pci or pci-stub, bound to no driver, or held
        /// by a <c>driver_override</c> (which also covers any other driver a function was moved to).
        /// </summary>
        public bool IsRedirected(PciAddress address) =>
            PciInventory.IsPassthroughDriver(CurrentDriver(address)) || Override(address) != null;

        /// <summary>The function's <c>driver_override</c>, null when it reads <c>(null)</c> or is empty.</summary>
        public string? Override(PciAddress address)
        {
            var text = Sysfs.TryReadText(Path.Combine(DeviceDirectory(address), "driver_override"));
            return string.IsNullOrEmpty(text) || text == "(null)" ? null : text;
        }

        /// <summary>
        /// Gives the function back to the host: clears <c>driver_override</c>, unbinds the driver it was moved to and
        /// probes. Returns the change; <see cref="HostDriverChange.DriverAfter"/> is null when no host driver took it.
        /// </summary>
        public HostDriverChange Reattach(PciAddress address)
        {
            var dir = DeviceDirectory(address);
            Settle(address);
            var before = CurrentDriver(address);
            var redirect = Override(address);
            if (!PciInventory.IsPassthroughDriver(before) && redirect is null)
            {
                // A host driver holds it and nothing holds it back: nothing to give back.
                return new HostDriverChange(address, before, before, HostDriverMethod.Sysfs);
            }

            // Recorded before the first write: a kill between unbind and drivers_probe is finished by the next command.
            WriteIntent(new DriverIntent { Address = address.ToString(), Operation = "Reattach", Driver = before, Override = redirect });
            if (redirect != null) Write(Path.Combine(dir, "driver_override"), "\n");
            if (before != null) Unbind(dir, address);
            Write(_root.Resolve(HostPaths.PciDriversProbe), address.ToString());
            RemoveIntent(address);

            var after = WaitForDriver(address, d => d != null && !PciInventory.IsPassthroughDriver(d) && d != redirect);
            if (after != null && (PciInventory.IsPassthroughDriver(after) || after == redirect))
            {
                throw new GpuVirtException(ErrorIds.HostDriverNotBound, ErrorKind.InvalidOperation,
                    $"{address} is still bound to '{after}' after unbind and drivers_probe: the host driver did not take it back.", address);
            }
            return new HostDriverChange(address, before, after, HostDriverMethod.Sysfs);
        }

        /// <summary>How long a probe may take to show in the <c>driver</c> link (a driver that probes asynchronously).</summary>
        public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

        /// <summary>The function's driver once <paramref name="done"/> holds for it, or as it is when <see cref="ProbeTimeout"/> has passed.</summary>
        private string? WaitForDriver(PciAddress address, Func<string?, bool> done)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                var driver = CurrentDriver(address);
                if (done(driver) || watch.Elapsed >= ProbeTimeout) return driver;
                System.Threading.Thread.Sleep(20);
            }
        }

        /// <summary>A kernel driver name as sysfs shows it under <c>/sys/bus/pci/drivers</c>; anything else is refused.</summary>
        public static void CheckDriverName(string driver)
        {
            var ok = !string.IsNullOrEmpty(driver) && driver.Length <= 64;
            foreach (var c in driver ?? string.Empty)
            {
                if (!(char.IsLetterOrDigit(c) && c < 128) && c != '_' && c != '-' && c != '.') ok = false;
            }
            if (!ok || driver == "." || driver == "..")
            {
                throw new GpuVirtException(ErrorIds.InvalidDriverName, ErrorKind.InvalidArgument,
                    $"'{driver}' is not a kernel driver name (letters, digits, '_', '-', '.'), such as vfio-pci or pci-stub.", driver);
            }
        }

        /// <summary>Says, while a blocked unbind waits in the kernel, who it waits for (called on the caller's thread).</summary>
        public Action<string>? Notice { get; set; }

        /// <summary>Stops waiting for a blocked unbind.</summary>
        public System.Threading.CancellationToken Cancellation { get; set; }

        /// <summary>
        /// The write to the bound driver's <c>unbind</c>: vfio-pci's waits in the kernel while a process holds the
        /// device, so it is watched and never waits silently (see <see cref="KernelWait"/>).
        /// </summary>
        private void Unbind(string dir, PciAddress address)
        {
            var path = Path.Combine(dir, "driver", "unbind");
            _log?.Invoke($"Writing '{address}' to '{path}'");
            var hostPath = _root.ToHostPath(path);
            var wait = new KernelWait { Notice = Notice };
            var errno = wait.Write(path, hostPath, address.ToString(), address.ToString(),
                () => DeviceHolders.OfPci(_root, address, hostDriverNodes: true), Cancellation);
            if (errno != 0) throw Sysfs.WriteFailure(path, address.ToString(), errno);
        }

        /// <summary>
        /// Called with each sysfs path right before it is written (on the writing thread only): a test stops the process
        /// there (an exception the binding does not catch) to leave what a kill at that point leaves.
        /// </summary>
        internal static Action<string>? BeforeWrite
        {
            get => _beforeWrite;
            set => _beforeWrite = value;
        }

        [ThreadStatic]
        private static Action<string>? _beforeWrite;

        private void Write(string path, string value)
        {
            BeforeWrite?.Invoke(path);
            _log?.Invoke($"Writing '{value.Trim()}' to '{path}'");
            Sysfs.WriteAttribute(path, value);
        }

        private static string Describe(string? driver) => driver is null ? "none" : "'" + driver + "'";

        /// <summary>
        /// The journal record of a driver move: <paramref name="detach"/> for Dismount-GpuHostDriver (undone by giving the
        /// function back), else Mount-GpuHostDriver (undone by binding the driver it had again).
        /// </summary>
        public static ChangeRecord Journaled(PciAddress address, string? before, string? after, HostDriverMethod method, bool detach)
        {
            var record = new ChangeRecord
            {
                Target = address.ToString(),
                Action = detach ? $"Detach from the host driver and bind to {after ?? "none"}" : "Give back to the host driver",
            };
            record.Details.Add(new ChangeDetail(address + " driver", before, after));
            var via = method == HostDriverMethod.Virsh ? "virsh nodedev-" + (detach ? "reattach" : "detach") : "sysfs";
            record.Inverse.Add(detach
                ? new InverseStep
                {
                    Kind = InverseKind.ReattachDriver,
                    Description = $"give {address} back to its host driver {Describe(before)} ({via})",
                    Address = address.ToString(), Driver = before, ExpectedDriver = after, Method = method,
                }
                : new InverseStep
                {
                    Kind = InverseKind.BindDriver,
                    Description = $"bind {address} to {Describe(before)} again ({via})",
                    Address = address.ToString(), Driver = before, ExpectedDriver = after, Method = method,
                });
            return record;
        }

        /// <summary>virsh's <c>nodedev-detach --driver</c> backend for a kernel driver; null when virsh has none.</summary>
        public static string? VirshBackend(string driver) => driver == VfioPci ? "vfio" : null;
    }
}
