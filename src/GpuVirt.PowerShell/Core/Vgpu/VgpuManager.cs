using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;

namespace GpuVirt.Core
{
    /// <summary>mdevctl's options for a mediated device: define only, start mode, attributes.</summary>
    internal sealed class MdevOptions
    {
        private string? _startMode;

        /// <summary>Define the device without creating it (mdevctl define).</summary>
        public bool DefineOnly { get; set; }

        /// <summary><c>auto</c> (the default: started at boot, when the parent appears) or <c>manual</c>.</summary>
        public string StartMode
        {
            get => _startMode ?? MdevDefinitions.StartAuto;
            set => _startMode = value;
        }

        public bool StartModeGiven => _startMode != null;

        /// <summary>mdevctl's <c>attrs</c>: sysfs attributes written in order once the device exists.</summary>
        public IReadOnlyList<KeyValuePair<string, string>> Attributes { get; set; } = Array.Empty<KeyValuePair<string, string>>();
    }

    /// <summary>
    /// Creates and removes vGPUs: mediated devices (a UUID written to the type's <c>create</c>, <c>1</c> to the device's
    /// <c>remove</c>) and NVIDIA SR-IOV vGPUs (a type id written to a virtual function's <c>nvidia/current_vgpu_type</c>,
    /// <c>0</c> to clear it), and keeps mdevctl definitions for persistent devices — through mdevctl on a live host that
    /// has it, else by writing mdevctl's files directly. Every change is checked after it is made; a change that fails
    /// leaves nothing behind.
    /// </summary>
    internal sealed class VgpuManager
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
        public VgpuDevice Create(VgpuType type, string? uuid, bool persistent, CancellationToken cancellationToken = default) =>
            Create(type, uuid, persistent, null, cancellationToken);

        /// <summary>
        /// Creates (or, with <see cref="MdevOptions.DefineOnly"/>, only defines) a vGPU, as mdevctl does: the definition's
        /// start mode and attributes come from <paramref name="options"/>; attributes are written to the device, in order,
        /// once it exists.
        /// </summary>
        public VgpuDevice Create(VgpuType type, string? uuid, bool persistent, MdevOptions? options, CancellationToken cancellationToken = default)
        {
            if (type.Kind == VgpuKind.SriovVf) CheckSriovOptions(type, uuid, options);
            // An SR-IOV vGPU is journaled by ApplySriov, which New-VgpuDevice -Count also calls directly.
            if (type.Kind == VgpuKind.SriovVf) return CreateSriov(type, uuid, persistent, cancellationToken);
            Recorder?.Check();
            var device = CreateMdev(type, uuid, persistent, options, cancellationToken, out var defined);
            RecordCreate(type, device, defined);
            return device;
        }

        private void RecordCreate(VgpuType type, VgpuDevice device, bool defined)
        {
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
        }

        /// <summary>Journals each create and remove when set (the cmdlets set it; an undo does not).</summary>
        public ChangeRecorder? Recorder { get; set; }

        /// <summary>A UUID in the kernel's form (lower case), or an <see cref="ErrorIds.InvalidMdevUuid"/> error.</summary>
        public static string ParseUuid(string text) => MdevUuid.Format(MdevUuid.Parse(text));

        private VgpuDevice CreateMdev(VgpuType type, string? uuidText, bool persistent, MdevOptions? options, CancellationToken ct, out bool defined)
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
            var startMode = options?.StartMode ?? MdevDefinitions.StartAuto;
            if (options?.DefineOnly == true)
            {
                if (definitions.Count > 0)
                {
                    throw new GpuVirtException(ErrorIds.VgpuDefinitionConflict, ErrorKind.InvalidOperation,
                        $"UUID {uuid} is already defined ('{definitions[0].Path}'). Remove it with Remove-VgpuDevice -Persistent first, or use another UUID.", uuid);
                }
                using (HostLock.Acquire(Root, "define a mediated device", ct, LockTimeout, _log))
                {
                    Define(new MdevDefinition(type.Parent, uuid, type.Id, startMode, options.Attributes), replace: false, ct);
                }
                defined = true;
                return Inventory.Devices().First(d => d.Uuid == uuid);
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
            var attributes = options != null && options.Attributes.Count > 0 ? options.Attributes : matching?.Attributes ?? Array.Empty<KeyValuePair<string, string>>();
            ApplyAttributes(uuid, attributes);
            if (persistent && (matching is null || matching.StartMode != startMode || !matching.Attributes.SequenceEqual(attributes)))
            {
                try
                {
                    Define(new MdevDefinition(type.Parent, uuid, type.Id, startMode, attributes), replace: matching != null, ct);
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

        /// <summary>
        /// Writes a new device's mdev attributes in order, as mdevctl does when it starts a device
        /// (<c>/sys/bus/mdev/devices/&lt;uuid&gt;/&lt;name&gt;</c>); when one fails, the device is removed again.
        /// </summary>
        private void ApplyAttributes(string uuid, IReadOnlyList<KeyValuePair<string, string>> attributes)
        {
            foreach (var a in attributes)
            {
                var hostPath = HostPaths.MdevDevices + "/" + uuid + "/" + a.Key;
                _log?.Invoke($"Writing {a.Value} to {hostPath}");
                var errno = SysfsWriter.Write(Root.Resolve(hostPath), a.Value + "\n");
                if (errno == 0) continue;
                var removeErrno = SysfsWriter.Write(Path.Combine(Root.Resolve(HostPaths.MdevDevices), uuid, "remove"), "1\n");
                var undone = removeErrno == 0 ? "the device was removed again" : $"the device could not be removed again ({Errno.Describe(removeErrno)})";
                throw new GpuVirtException(ErrorIds.VgpuAttributeFailed, ErrorKind.WriteError,
                    $"Writing the mdev attribute '{a.Key}' of {uuid} failed ('{hostPath}': {Errno.Describe(errno)}); {undone} and nothing was defined.", uuid);
            }
        }

        /// <summary>An attribute name that is one sysfs file of the device (no path separators, not . or ..).</summary>
        public static void CheckAttributeName(string name)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Contains("/") || name == "." || name == ".." || name.Contains("\0"))
            {
                throw new GpuVirtException(ErrorIds.VgpuOptionNotApplicable, ErrorKind.InvalidArgument,
                    $"'{name}' is not an mdev attribute name: it names one file of the device's sysfs directory.", name);
            }
        }

        /// <summary>
        /// Defines a mediated device from an imported definition (mdevctl on the live host, else its file), journaled;
        /// false when the same definition is there already. A different one with the UUID is a conflict.
        /// </summary>
        public bool Import(MdevDefinition definition, CancellationToken ct = default)
        {
            foreach (var a in definition.Attributes) CheckAttributeName(a.Key);
            Recorder?.Check();
            using (HostLock.Acquire(Root, "define a mediated device", ct, LockTimeout, _log))
            {
                Inventory.Definitions.Refresh();
                var same = Inventory.Definitions.Find(definition.Uuid).FirstOrDefault();
                if (same != null)
                {
                    if (same.Parent == definition.Parent && same.TypeId == definition.TypeId && same.StartMode == definition.StartMode
                        && same.Attributes.SequenceEqual(definition.Attributes)) return false;
                    throw new GpuVirtException(ErrorIds.VgpuDefinitionConflict, ErrorKind.InvalidOperation,
                        $"UUID {definition.Uuid} is already defined differently ('{same.Path}': type '{same.TypeId}', start {same.StartMode}). " +
                        "Remove it with Remove-VgpuDevice -Persistent first.", definition.Uuid);
                }
                Define(definition, replace: false, ct);
            }
            var device = Inventory.Devices().First(d => d.Uuid == definition.Uuid);
            if (Recorder != null)
            {
                var record = new ChangeRecord { Target = definition.Uuid, Action = $"Define mediated device {definition.Uuid} of type {definition.TypeId} on {definition.Parent}" };
                record.Changes.Add(new ChangeDetail("definition " + definition.Path, null, definition.TypeId + " (start " + definition.StartMode + ")"));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.RemoveVgpu,
                    Description = $"remove the mdevctl definition of {definition.Uuid}",
                    Uuid = definition.Uuid, Parent = definition.Parent, TypeId = definition.TypeId, Persistent = true,
                });
                Recorder.Record(record);
            }
            return true;
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
            CheckSriovOptions(type, uuid);
            return ApplySriov(SriovVgpu.Plan(Inventory, type, 1), persistent, ct)[0];
        }

        /// <summary>Refuses what does not apply to an SR-IOV vGPU: a UUID (a guest takes the VF by its address).</summary>
        public static void CheckSriovOptions(VgpuType type, string? uuid, MdevOptions? options = null)
        {
            if (options != null && (options.DefineOnly || options.Attributes.Count > 0 || options.StartModeGiven))
            {
                throw new GpuVirtException(ErrorIds.VgpuOptionNotApplicable, ErrorKind.InvalidArgument,
                    $"'{type.DisplayName}' on {type.Parent} is an SR-IOV vGPU: -DefineOnly, -StartMode and -Attribute are mdevctl's, for mediated devices. " +
                    "Use -Persistent to bring it back at boot.", type.ToString());
            }
            if (uuid != null)
            {
                throw new GpuVirtException(ErrorIds.VgpuUuidNotApplicable, ErrorKind.InvalidArgument,
                    $"An SR-IOV vGPU ('{type.DisplayName}' on {type.Parent}) has no UUID: a guest takes its virtual function by PCI address. Leave -Uuid out.", uuid);
            }
        }

        /// <summary>Plans <paramref name="count"/> SR-IOV vGPUs of a type on free virtual functions (see <see cref="SriovVgpu.Plan"/>).</summary>
        public SriovVgpuPlan PlanSriov(VgpuType type, int count) => SriovVgpu.Plan(Inventory, type, count);

        /// <summary>
        /// Applies an SR-IOV plan under the vGPU lock: re-checks each virtual function (still free, still listing the type),
        /// writes the type and reads it back. When one fails, the functions this call set are cleared again (in reverse)
        /// and the error says so; nothing else is touched. With <paramref name="persistent"/>, each is then recorded in the
        /// boot profiles (and the boot unit installed); if that fails, the functions are cleared again too.
        /// </summary>
        public IReadOnlyList<VgpuDevice> ApplySriov(SriovVgpuPlan plan, bool persistent = false, CancellationToken ct = default)
        {
            var type = plan.Type;
            var done = new List<PciAddress>();
            Recorder?.Check();
            using (HostLock.Acquire(Root, "set SR-IOV vGPU types", ct, LockTimeout, _log))
            {
                try
                {
                    foreach (var step in plan.Assignments)
                    {
                        var vf = step.VirtualFunction;
                        // Re-read under the lock: another command may have taken the function, or the GPU's types moved on.
                        if (Inventory.CurrentType(vf) != 0 || !Inventory.CreatableTypes(vf).Any(t => t.Key == type.Id))
                        {
                            throw new GpuVirtException(ErrorIds.NoVgpuInstanceAvailable, ErrorKind.ResourceUnavailable,
                                $"Virtual function {vf} can no longer take vGPU type {type.Id} ({type.DisplayName}): it " +
                                (Inventory.CurrentType(vf) != 0
                                    ? $"now carries type {Inventory.CurrentType(vf).ToString(CultureInfo.InvariantCulture)}"
                                    : "no longer lists it in nvidia/creatable_vgpu_types") + " (the host changed since the plan was made).", vf.ToString());
                        }
                        SetSriovType(vf, type, ct);
                        done.Add(vf);
                    }
                    if (persistent)
                    {
                        foreach (var vf in done)
                        {
                            var pf = Inventory.Pci.Find(vf)?.PhysicalFunctionAddress ?? type.ParentPciAddress ?? vf;
                            _log?.Invoke($"Recording {vf} type {type.Id} in {SriovVgpuProfiles.ProfileFile}");
                            Inventory.Profiles.Add(new SriovVgpuProfile(pf, vf, type.Id, type.Name));
                        }
                    }
                }
                catch (GpuVirtException e) when (done.Count > 0)
                {
                    var undone = new List<string>();
                    foreach (var vf in Enumerable.Reverse(done))
                    {
                        if (persistent) Inventory.Profiles.Remove(vf);
                        var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType);
                        var errno = SysfsWriter.Write(path, "0\n");
                        undone.Add(errno == 0 ? $"{vf} cleared again" : $"{vf} could not be cleared ({Errno.Describe(errno)}) and still carries type {type.Id}");
                    }
                    throw new GpuVirtException(e.ErrorId, e.Kind, e.Message + " Undone: " + string.Join(", ", undone) + ".", e.Target, e);
                }
            }
            var devices = done.Select(vf => Inventory.FindSriov(vf)!).ToList();
            foreach (var d in devices) RecordCreate(type, d, persistent);
            return devices;
        }

        private void SetSriovType(PciAddress vf, VgpuType type, CancellationToken ct)
        {
            var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType);
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
            if (!WaitFor(() => Inventory.CurrentType(vf).ToString(CultureInfo.InvariantCulture) == type.Id, ct))
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable,
                    $"Wrote {type.Id} to '{hostPath}', but the function reports type {Inventory.CurrentType(vf)}.", vf.ToString());
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
                RemoveSriov(device, persistent, ownerOf, ct);
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

        private void RemoveSriov(VgpuDevice device, bool persistent, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct)
        {
            var vf = device.PciAddress!.Value;
            var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType);
            var hostPath = Root.ToHostPath(path);
            using (HostLock.Acquire(Root, "remove an SR-IOV vGPU", ct, LockTimeout, _log))
            {
                var recorded = Inventory.Profiles.Find(vf) != null;
                var set = Inventory.IsSriovVgpuFunction(vf) && Inventory.CurrentType(vf) != 0;
                if (!set && !(persistent && recorded))
                {
                    throw new GpuVirtException(ErrorIds.VgpuDeviceNotActive, ErrorKind.InvalidOperation,
                        $"Virtual function {vf} has no vGPU type set: there is nothing to remove." +
                        (recorded ? $" It is recorded in {SriovVgpuProfiles.ProfileFile}; add -Persistent to take it out." : string.Empty), vf.ToString());
                }
                if (set)
                {
                    _log?.Invoke($"Writing 0 to {hostPath}");
                    var errno = new KernelWait { Notice = Notice }.Write(path, hostPath, "0\n", "the vGPU on " + vf, () => DeviceHolders.OfPci(Root, vf, hostDriverNodes: false), ct);
                    if (errno == Errno.EBUSY) throw Busy(device, hostPath, ownerOf);
                    if (errno != 0) throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuRemoveFailed, $"Clearing the vGPU type of {vf} failed");
                    if (!WaitFor(() => Inventory.CurrentType(vf) == 0, ct))
                    {
                        throw new GpuVirtException(ErrorIds.VgpuDeviceNotRemoved, ErrorKind.ResourceBusy,
                            $"Wrote 0 to '{hostPath}', but the function still reports type {Inventory.CurrentType(vf)}; its boot profile was left as it was.", vf.ToString());
                    }
                }
                if (persistent && recorded)
                {
                    _log?.Invoke($"Removing {vf} from {SriovVgpuProfiles.ProfileFile}");
                    Inventory.Profiles.Remove(vf);
                }
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
            var owners = device.Uuid != null ? ownership.OwnersOf(MdevUuid.Parse(device.Uuid)) : ownership.OwnersOf(device.PciAddress!.Value);
            return owners.Count == 0 ? null : string.Join("', '", owners);
        };

        /// <summary>Defines a device to start at boot: <c>mdevctl define</c> when mdevctl is used, else mdevctl's file written directly.</summary>
        public void Define(MdevDefinition definition, bool replace, CancellationToken ct)
        {
            if (Mdevctl != null && (definition.Attributes.Count > 0 || definition.StartMode != MdevDefinitions.StartAuto))
            {
                // Attributes and a manual start go to mdevctl as its own per-device JSON (define --jsonfile).
                var dir = Path.Combine(Path.GetTempPath(), "gpuvirt-mdevctl-" + Guid.NewGuid().ToString("N"));
                try
                {
                    Directory.CreateDirectory(dir);
                    var file = Path.Combine(dir, definition.Uuid + ".json");
                    File.WriteAllText(file, MdevDefinitions.ToJson(definition));
                    if (replace) _runner.Run(Mdevctl, new[] { "undefine", "--uuid", definition.Uuid, "--parent", definition.Parent }, ct);
                    _runner.Run(Mdevctl, new[] { "define", "--uuid", definition.Uuid, "--parent", definition.Parent, "--jsonfile", file }, ct);
                }
                finally
                {
                    try
                    {
                        Directory.Delete(dir, recursive: true);
                    }
                    catch (IOException)
                    {
                    }
                    Inventory.Definitions.Refresh();
                }
                return;
            }
            if (Mdevctl != null)
            {
                var args = replace
                    ? new List<string> { "modify", "--uuid", definition.Uuid, "--parent", definition.Parent, "--auto" }
                    : new List<string> { "define", "--uuid", definition.Uuid, "--parent", definition.Parent, "--type", definition.TypeId, "--auto" };
                try
                {
                    _runner.Run(Mdevctl, args, ct);
                }
                finally
                {
                    // mdevctl wrote the file: what was read before it ran is stale.
                    Inventory.Definitions.Refresh();
                }
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
                try
                {
                    _runner.Run(Mdevctl, new[] { "undefine", "--uuid", definition.Uuid, "--parent", definition.Parent }, ct);
                }
                finally
                {
                    Inventory.Definitions.Refresh();
                }
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
