using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;

namespace GpuVirt.Core
{
    /// <summary>
    /// Creates and removes vGPUs: mediated devices (a UUID written to the type's <c>create</c>, <c>1</c> to the device's
    /// <c>remove</c>) and NVIDIA SR-IOV vGPUs (a type id written to a virtual function's <c>nvidia/current_vgpu_type</c>,
    /// <c>0</c> to clear it), and keeps mdevctl definitions for persistent devices — through mdevctl on a live host that
    /// has it, else by writing mdevctl's files directly. Every change is checked after it is made; a change that fails
    /// leaves nothing behind.
    /// </summary>
    public sealed class VgpuManager
    {
        private readonly ProcessRunner _runner;
        private readonly Action<string>? _log;

        public VgpuManager(VgpuInventory inventory, ProcessRunner runner, Action<string>? log = null)
        {
            Inventory = inventory ?? throw new ArgumentNullException(nameof(inventory));
            _runner = runner ?? throw new ArgumentNullException(nameof(runner));
            _log = log;
            Mdevctl = inventory.Root.IsLive ? ProgramLocator.Find("mdevctl") : null;
        }

        public VgpuInventory Inventory { get; }

        private HostRoot Root => Inventory.Root;

        /// <summary>mdevctl, used for definitions when the root is the live host and it is installed; null otherwise.</summary>
        public string? Mdevctl { get; set; }

        /// <summary>Says, while a blocked remove waits in the kernel, who it waits for (called on the caller's thread).</summary>
        public Action<string>? Notice { get; set; }

        /// <summary>How long to wait for another command that holds the host lock (null: <see cref="HostLock.DefaultTimeout"/>).</summary>
        public TimeSpan? LockTimeout { get; set; }

        /// <summary>How long to wait for the kernel to show a created device (or drop a removed one).</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(3);

        /// <summary>Creates one vGPU of a type. For a mediated device, <paramref name="uuid"/> or a new one; with <paramref name="persistent"/>, defined to start at boot.</summary>
        public VgpuDevice Create(VgpuType type, string? uuid, bool persistent, CancellationToken cancellationToken = default)
        {
            Recorder?.Check();
            var defined = false;
            var device = type.Kind == VgpuKind.SriovVf
                ? CreateSriov(type, uuid, persistent, cancellationToken)
                : CreateMdev(type, uuid, persistent, cancellationToken, out defined);
            if (Recorder != null)
            {
                var record = new ChangeRecord { Target = device.ToString(), Action = $"Create a vGPU of type {type.Id} on {type.Parent}" + (defined ? " and define it to start at boot" : string.Empty) };
                record.Changes.Add(new ChangeDetail("vGPU " + device, null, type.Id + (defined ? " (defined, start auto)" : string.Empty)));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.RemoveVgpu,
                    Description = device.Uuid != null
                        ? $"remove mediated device {device.Uuid}" + (defined ? " and its mdevctl definition" : string.Empty)
                        : $"clear the vGPU type of {device.Address}",
                    Uuid = device.Uuid, Address = device.Uuid is null ? device.Address?.ToString() : null,
                    Parent = type.Parent, TypeId = type.Id, Persistent = defined,
                });
                Recorder.Record(record);
            }
            return device;
        }

        /// <summary>Journals each create and remove when set (the cmdlets set it; an undo does not).</summary>
        public ChangeRecorder? Recorder { get; set; }

        /// <summary>A UUID in the kernel's form (lower case), or an <see cref="ErrorIds.InvalidMdevUuid"/> error.</summary>
        public static string ParseUuid(string text) => MdevUuid.Format(MdevUuid.Parse(text));

        private VgpuDevice CreateMdev(VgpuType type, string? uuidText, bool persistent, CancellationToken ct, out bool defined)
        {
            defined = false;
            var uuid = uuidText is null ? Guid.NewGuid().ToString("D") : ParseUuid(uuidText);
            var definitions = Inventory.Definitions.Find(uuid);
            var other = definitions.FirstOrDefault(d => d.Parent != type.Parent || d.TypeId != type.Id);
            if (other != null)
            {
                throw new GpuVirtException(ErrorIds.VgpuDefinitionConflict, ErrorKind.InvalidOperation,
                    $"UUID {uuid} is already defined as type '{other.TypeId}' on parent {other.Parent} ('{other.Path}'). " +
                    "Use another UUID, or remove that definition with Remove-VgpuDevice -Persistent.", uuid);
            }
            var existing = Inventory.FindLive(uuid);
            if (existing != null)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceExists, ErrorKind.ResourceBusy,
                    $"A mediated device {uuid} already exists (type '{existing.TypeId}' on {existing.Parent}).", uuid);
            }
            var typeDir = type.Directory ?? Path.Combine(Inventory.TypesDirectory(type.Parent), type.Id);
            var create = Path.Combine(typeDir, "create");
            var createHostPath = Root.ToHostPath(create);

            using (HostLock.Acquire(Root, "create a vGPU", ct, LockTimeout, _log))
            {
                // Re-read under the lock: another command may have taken the last instance since the type was read.
                var available = Sysfs.TryReadInt(Path.Combine(typeDir, "available_instances"));
                if (available is null)
                {
                    throw new GpuVirtException(ErrorIds.VgpuTypeNotFound, ErrorKind.ObjectNotFound,
                        $"The vGPU type '{type.Id}' is no longer offered by {type.Parent} ('{Root.ToHostPath(typeDir)}' has no available_instances).", type.Id);
                }
                if (available < 1) throw NoInstance(type, typeDir, available.Value, null);

                _log?.Invoke($"Writing {uuid} to {createHostPath}");
                var errno = SysfsWriter.Write(create, uuid + "\n");
                if (errno != 0) throw CreateFailure(type, typeDir, uuid, createHostPath, errno);
                if (!WaitFor(() => Directory.Exists(Path.Combine(Root.Resolve(HostPaths.MdevDevices), uuid)), ct))
                {
                    throw new GpuVirtException(ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable,
                        $"Wrote {uuid} to '{createHostPath}', but '{HostPaths.MdevDevices}/{uuid}' did not appear within " +
                        $"{Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s, so no device was made and nothing was defined. " +
                        "Check the kernel log (dmesg) and that the vGPU manager (nvidia-vgpu-mgr.service) is running (Test-VgpuHost).", uuid);
                }
            }

            var matching = definitions.FirstOrDefault();
            if (persistent && (matching is null || matching.StartMode != MdevDefinitions.StartAuto))
            {
                try
                {
                    Define(new MdevDefinition(type.Parent, uuid, type.Id, MdevDefinitions.StartAuto, matching?.Attributes), replace: matching != null, ct);
                    defined = matching is null;
                }
                catch (GpuVirtException e)
                {
                    // Persistence was asked for and failed: take the new device away again rather than leave half of it.
                    var removeErrno = SysfsWriter.Write(Path.Combine(Root.Resolve(HostPaths.MdevDevices), uuid, "remove"), "1");
                    var undone = removeErrno == 0 ? "the new device was removed again" : $"the new device could not be removed again ({Errno.Describe(removeErrno)})";
                    throw new GpuVirtException(e.ErrorId, e.Kind, e.Message + " The device was not made persistent; " + undone + ".", e.Target, e);
                }
            }
            return Inventory.FindLive(uuid) ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable,
                $"The mediated device {uuid} vanished right after it was created.", uuid);
        }

        internal GpuVirtException CreateFailure(VgpuType type, string typeDir, string uuid, string createHostPath, int errno)
        {
            var kernel = $"the kernel answered '{Errno.Describe(errno)}' (errno {errno}) to the write of {uuid} to '{createHostPath}'";
            switch (errno)
            {
                case Errno.ENOSPC:
                case Errno.EUSERS:
                    return NoInstance(type, typeDir, Sysfs.TryReadInt(Path.Combine(typeDir, "available_instances")) ?? 0, kernel);
                case Errno.EEXIST:
                    return new GpuVirtException(ErrorIds.VgpuDeviceExists, ErrorKind.ResourceBusy,
                        $"A mediated device {uuid} already exists: {kernel}.", uuid);
                case Errno.EINVAL:
                    return new GpuVirtException(ErrorIds.VgpuCreateFailed, ErrorKind.InvalidArgument,
                        $"The driver rejected the UUID or the type '{type.Id}' on {type.Parent}: {kernel}.", uuid);
                case Errno.EACCES:
                case Errno.EPERM:
                    return Sysfs.RootRequired(createHostPath, "write");
                default:
                    return new GpuVirtException(ErrorIds.VgpuCreateFailed, ErrorKind.WriteError,
                        $"Creating a '{type.Id}' vGPU on {type.Parent} failed: {kernel}.", uuid);
            }
        }

        private GpuVirtException NoInstance(VgpuType type, string? typeDir, int available, string? kernel)
        {
            var existing = new List<string>();
            var devicesDir = typeDir is null ? null : Path.Combine(typeDir, "devices");
            if (devicesDir != null && Directory.Exists(devicesDir))
                existing.AddRange(Directory.EnumerateFileSystemEntries(devicesDir).Select(Path.GetFileName).Where(n => n != null).Select(n => n!).OrderBy(n => n, StringComparer.Ordinal));
            var max = type.MaxInstance is int m ? $" of {m} (max_instance)" : string.Empty;
            var made = existing.Count > 0 ? $"; {existing.Count} device(s) of this type exist: {string.Join(", ", existing)}" : string.Empty;
            var why = kernel is null ? string.Empty : $" ({kernel})";
            return new GpuVirtException(ErrorIds.NoVgpuInstanceAvailable, ErrorKind.ResourceUnavailable,
                $"No instance of vGPU type '{type.Id}' ({type.DisplayName}) is available on {type.Parent}: " +
                $"available_instances is {available.ToString(CultureInfo.InvariantCulture)}{max}{made}{why}. " +
                "Remove a vGPU of this parent (types of one GPU share its capacity) or choose a type with free instances (Get-VgpuType -Available).",
                type.ToString());
        }

        private VgpuDevice CreateSriov(VgpuType type, string? uuid, bool persistent, CancellationToken ct)
        {
            if (uuid != null)
            {
                throw new GpuVirtException(ErrorIds.VgpuUuidNotApplicable, ErrorKind.InvalidArgument,
                    $"An SR-IOV vGPU ('{type.DisplayName}' on {type.Parent}) has no UUID: a guest takes its virtual function by PCI address. Leave -Uuid out.", uuid);
            }
            if (persistent)
            {
                throw new GpuVirtException(ErrorIds.VgpuPersistenceNotSupported, ErrorKind.InvalidOperation,
                    $"'{type.DisplayName}' on {type.Parent} is an SR-IOV vGPU: mdevctl definitions cover mediated devices only, " +
                    "so -Persistent cannot apply. Set the type again after a reboot (or from a boot-time unit).", type.ToString());
            }
            using (HostLock.Acquire(Root, "create a vGPU", ct, LockTimeout, _log))
            {
                var candidates = type.ParentAddress is PciAddress pa && Inventory.IsSriovVgpuFunction(pa)
                    ? new[] { pa }
                    : (Inventory.Pci.Find(type.ParentAddress ?? default)?.VirtualFunctions ?? Array.Empty<PciAddress>()).ToArray();
                var vf = candidates.Where(v => Inventory.IsSriovVgpuFunction(v) && Inventory.CurrentType(v) == 0)
                    .Cast<PciAddress?>()
                    .FirstOrDefault(v => Inventory.CreatableTypes(v!.Value).Any(t => t.Key == type.Id));
                if (vf is null) throw NoInstance(type, null, 0, null);

                var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf.Value), VgpuInventory.CurrentVgpuType);
                var hostPath = Root.ToHostPath(path);
                _log?.Invoke($"Writing {type.Id} to {hostPath}");
                var errno = SysfsWriter.Write(path, type.Id + "\n");
                if (errno != 0)
                {
                    if (errno == Errno.EACCES || errno == Errno.EPERM) throw Sysfs.RootRequired(hostPath, "write");
                    throw new GpuVirtException(ErrorIds.VgpuCreateFailed, errno == Errno.EINVAL ? ErrorKind.InvalidArgument : ErrorKind.WriteError,
                        $"Setting vGPU type {type.Id} ({type.DisplayName}) on virtual function {vf} failed: the driver answered " +
                        $"'{Errno.Describe(errno)}' (errno {errno}) to the write to '{hostPath}'.", vf.ToString());
                }
                if (!WaitFor(() => Inventory.CurrentType(vf.Value).ToString(CultureInfo.InvariantCulture) == type.Id, ct))
                {
                    throw new GpuVirtException(ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable,
                        $"Wrote {type.Id} to '{hostPath}', but the function reports type {Inventory.CurrentType(vf.Value)}.", vf.ToString());
                }
                return Inventory.FindSriov(vf.Value)!;
            }
        }

        /// <summary>
        /// Removes a vGPU: stops the live device and, with <paramref name="persistent"/>, removes its definition too.
        /// A device in use stays as it is (definition included); <paramref name="ownerOf"/> names the guest that holds it.
        /// </summary>
        public void Remove(VgpuDevice device, bool persistent, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct = default)
        {
            Recorder?.Check();
            var wasLive = device.Kind == VgpuKind.SriovVf || Inventory.FindLive(device.Uuid!) != null;
            var undefined = RemoveDevice(device, persistent, ownerOf, ct);
            if (Recorder is null) return;
            var record = new ChangeRecord
            {
                Target = device.ToString(),
                Action = (wasLive ? "Remove the vGPU" : "Remove the definition of the vGPU") + (wasLive && undefined.Count > 0 ? " and its definition" : string.Empty),
            };
            record.Changes.Add(new ChangeDetail("vGPU " + device, device.TypeId, null));
            record.Inverse.Add(new InverseStep
            {
                Kind = InverseKind.CreateVgpu,
                Description = device.Uuid != null
                    ? (wasLive ? $"create mediated device {device.Uuid} of type {device.TypeId} on {device.Parent}" : $"define mediated device {device.Uuid} of type {device.TypeId} on {device.Parent}")
                      + (wasLive && undefined.Count > 0 ? " and define it to start at boot" : string.Empty)
                    : $"set vGPU type {device.TypeId} on {device.Address} again",
                Uuid = device.Uuid, Address = device.Uuid is null ? device.Address?.ToString() : null,
                Parent = device.Parent, TypeId = device.TypeId, Persistent = undefined.Count > 0, Active = wasLive,
            });
            Recorder.Record(record);
        }

        /// <summary>Defines a mediated device again as a definition only (the undo of removing a definition).</summary>
        public void DefineOnly(string parent, string uuid, string typeId, CancellationToken ct) =>
            Define(new MdevDefinition(parent, uuid, typeId, MdevDefinitions.StartAuto), replace: false, ct);

        private IReadOnlyList<MdevDefinition> RemoveDevice(VgpuDevice device, bool persistent, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct)
        {
            if (device.Kind == VgpuKind.SriovVf)
            {
                RemoveSriov(device, ownerOf, ct);
                return Array.Empty<MdevDefinition>();
            }
            var uuid = device.Uuid!;
            var live = Inventory.FindLive(uuid);
            var definitions = Inventory.Definitions.Find(uuid).Where(d => d.Parent == device.Parent || live is null).ToList();
            if (live is null && definitions.Count == 0)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                    $"No mediated device {uuid} exists or is defined.", uuid);
            }
            if (live is null && !persistent)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotActive, ErrorKind.InvalidOperation,
                    $"The mediated device {uuid} is defined ('{definitions[0].Path}') but not running: there is nothing to stop. " +
                    "Add -Persistent to remove its definition.", uuid);
            }
            if (live != null)
            {
                var dir = Path.Combine(Root.Resolve(HostPaths.MdevDevices), uuid);
                var remove = Path.Combine(dir, "remove");
                var hostPath = HostPaths.MdevDevices + "/" + uuid + "/remove";
                _log?.Invoke($"Writing 1 to {hostPath}");
                var errno = new KernelWait { Notice = Notice }.Write(remove, hostPath, "1\n", "mediated device " + uuid, () => DeviceHolders.OfMdev(Root, uuid), ct);
                if (errno == Errno.EBUSY) throw Busy(live, hostPath, ownerOf);
                if (errno != 0) throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuRemoveFailed, $"Removing the mediated device {uuid} failed");
                if (!WaitFor(() => !Directory.Exists(dir), ct))
                {
                    throw new GpuVirtException(ErrorIds.VgpuDeviceNotRemoved, ErrorKind.ResourceBusy,
                        $"Wrote 1 to '{hostPath}', but the device is still there after " +
                        $"{Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s; its definition was left as it was.", uuid);
                }
            }
            if (persistent)
            {
                foreach (var d in definitions) Undefine(d, ct);
                return definitions;
            }
            return Array.Empty<MdevDefinition>();
        }

        private void RemoveSriov(VgpuDevice device, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct)
        {
            var vf = device.Address!.Value;
            var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType);
            var hostPath = Root.ToHostPath(path);
            if (Inventory.CurrentType(vf) == 0)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotActive, ErrorKind.InvalidOperation,
                    $"Virtual function {vf} has no vGPU type set: there is nothing to remove.", vf.ToString());
            }
            _log?.Invoke($"Writing 0 to {hostPath}");
            var errno = new KernelWait { Notice = Notice }.Write(path, hostPath, "0\n", "the vGPU on " + vf, () => DeviceHolders.OfPci(Root, vf, hostDriverNodes: false), ct);
            if (errno == Errno.EBUSY) throw Busy(device, hostPath, ownerOf);
            if (errno != 0) throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuRemoveFailed, $"Clearing the vGPU type of {vf} failed");
            if (!WaitFor(() => Inventory.CurrentType(vf) == 0, ct))
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotRemoved, ErrorKind.ResourceBusy,
                    $"Wrote 0 to '{hostPath}', but the function still reports type {Inventory.CurrentType(vf)}.", vf.ToString());
            }
        }

        internal static GpuVirtException Busy(VgpuDevice device, string hostPath, Func<VgpuDevice, string?>? ownerOf)
        {
            string? owner = null;
            try
            {
                owner = ownerOf?.Invoke(device);
            }
            catch (GpuVirtException)
            {
                // Naming the guest is a courtesy: without virsh the error still says what happened.
            }
            var what = device.Uuid != null ? "mediated device " + device.Uuid : "vGPU on virtual function " + device.Address;
            var who = owner != null
                ? $"guest '{owner}' holds it (its definition has this {(device.Uuid != null ? "UUID" : "PCI address")}). Shut the guest down or remove the device from it, then try again."
                : "a running guest (or another user of the device) holds it. Shut that guest down, then try again.";
            return new GpuVirtException(ErrorIds.VgpuDeviceBusy, ErrorKind.ResourceBusy,
                $"The {what} is in use ('{hostPath}': {Errno.Describe(Errno.EBUSY)}): {who}", (object?)owner ?? device.ToString());
        }

        /// <summary>
        /// Names the guests whose definitions hold a vGPU (its UUID for a mediated device, its virtual function's address
        /// for SR-IOV), through virsh; null when none does. Used to say who keeps a busy device.
        /// </summary>
        public static Func<VgpuDevice, string?> GuestOwners(Virsh virsh) => device =>
        {
            var ownership = HostdevOwnership.Read(virsh);
            var owners = device.Uuid != null ? ownership.OwnersOf(MdevUuid.Parse(device.Uuid)) : ownership.OwnersOf(device.Address!.Value);
            return owners.Count == 0 ? null : string.Join("', '", owners);
        };

        /// <summary>Defines a device to start at boot: <c>mdevctl define</c> when mdevctl is used, else mdevctl's file written directly.</summary>
        public void Define(MdevDefinition definition, bool replace, CancellationToken ct)
        {
            if (Mdevctl != null)
            {
                var args = replace
                    ? new List<string> { "modify", "--uuid", definition.Uuid, "--parent", definition.Parent, "--auto" }
                    : new List<string> { "define", "--uuid", definition.Uuid, "--parent", definition.Parent, "--type", definition.TypeId, "--auto" };
                _runner.Run(Mdevctl, args, ct);
                return;
            }
            _log?.Invoke($"Writing {definition.Path}");
            Inventory.Definitions.Write(definition, replace);
        }

        /// <summary>Removes a definition: <c>mdevctl undefine</c> when mdevctl is used, else the file.</summary>
        public void Undefine(MdevDefinition definition, CancellationToken ct)
        {
            if (Mdevctl != null)
            {
                _runner.Run(Mdevctl, new[] { "undefine", "--uuid", definition.Uuid, "--parent", definition.Parent }, ct);
                return;
            }
            _log?.Invoke($"Removing {definition.Path}");
            Inventory.Definitions.Delete(definition);
        }

        /// <summary>Polls a condition until it holds or <see cref="Timeout"/> passes; the kernel usually answers at once.</summary>
        private bool WaitFor(Func<bool> condition, CancellationToken ct)
        {
            var watch = Stopwatch.StartNew();
            while (true)
            {
                if (condition()) return true;
                if (watch.Elapsed >= Timeout) return false;
                if (ct.WaitHandle.WaitOne(25))
                {
                    throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped, "Stopped while waiting for the kernel.");
                }
            }
        }
    }
}
