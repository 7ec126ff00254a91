using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Safety;

namespace GpuVirt.Core.Vgpu
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
    /// The writes that create and remove vGPUs — mediated devices (a UUID written to the type's <c>create</c>, <c>1</c>
    /// to the device's <c>remove</c>) and NVIDIA SR-IOV vGPUs (a type id written to a virtual function's
    /// <c>nvidia/current_vgpu_type</c>, <c>0</c> to clear it) — and mdevctl's definitions for persistent devices (through
    /// mdevctl on a live host that has it, else its files through the one atomic writer). Each write is checked after it
    /// is made. What to write is planned by <see cref="VgpuPlanner"/> and applied by <see cref="PlanExecutor"/> (under the
    /// host lock, journaled); <see cref="Create(VgpuType, string, bool, MdevOptions, CancellationToken)"/>,
    /// <see cref="Remove"/>, <see cref="Import"/> and <see cref="ApplySriov"/> are that plan-and-apply in one call.
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

        /// <summary>Journals each change applied through this manager's own calls when set.</summary>
        public ChangeRecorder? Recorder { get; set; }

        /// <summary>The planner of this manager's host (no libvirt: the guests' references are not read).</summary>
        public VgpuPlanner Planner(Func<Virsh>? virsh = null, string? connect = null) =>
            new VgpuPlanner(new ChangeHost(Root, connect), this, virsh, _log);

        /// <summary>Applies a plan through the executor, journaled by <see cref="Recorder"/> when it is set.</summary>
        public TResult Apply<TResult>(ChangePlan<TResult> plan, CancellationToken cancellationToken = default)
        {
            var executor = new PlanExecutor(_log, cancellationToken) { LockTimeout = LockTimeout };
            if (Recorder != null) executor.Recorders.Add(new JournalPlanRecorder(Recorder));
            var result = executor.Apply(plan);
            if (plan.AppliedErrors.Count > 0) throw plan.AppliedErrors[0];
            return result;
        }

        /// <summary>Creates one vGPU of a type. For a mediated device, <paramref name="uuid"/> or a new one; with <paramref name="persistent"/>, defined to start at boot.</summary>
        public VgpuDevice Create(VgpuType type, string? uuid, bool persistent, CancellationToken cancellationToken = default) =>
            Create(type, uuid, persistent, null, cancellationToken);

        /// <summary>Plans and applies one vGPU (<see cref="VgpuPlanner.PlanCreate"/>; an SR-IOV one through <see cref="VgpuPlanner.PlanCreateSriov"/>).</summary>
        public VgpuDevice Create(VgpuType type, string? uuid, bool persistent, MdevOptions? options, CancellationToken cancellationToken = default)
        {
            if (type.Kind == VgpuKind.SriovVf)
            {
                CheckSriovOptions(type, uuid, options);
                return Apply(Planner().PlanCreateSriov(type, 1, persistent), cancellationToken)[0];
            }
            return Apply(Planner().PlanCreate(type, uuid, persistent, options), cancellationToken);
        }

        /// <summary>A UUID in the kernel's form (lower case), or an <see cref="ErrorIds.InvalidMdevUuid"/> error.</summary>
        public static string ParseUuid(string text) => MdevUuid.Format(MdevUuid.Parse(text));

        /// <summary>
        /// Writes <paramref name="uuid"/> to the type's <c>create</c> and waits (bounded by <see cref="Timeout"/>) for the
        /// device to appear. A write the kernel refuses is its error (<see cref="CreateFailure"/>).
        /// </summary>
        internal void WriteCreate(VgpuType type, string uuid, CancellationToken ct)
        {
            var typeDir = TypeDirectory(type);
            var create = Path.Combine(typeDir, "create");
            var createHostPath = Root.ToHostPath(create);
            _log?.Invoke($"Writing {uuid} to {createHostPath}");
            var errno = SysfsWriter.Write(create, uuid + "\n");
            if (errno != 0) throw CreateFailure(type, typeDir, uuid, createHostPath, errno);
            if (!WaitFor(() => Directory.Exists(MdevDirectory(uuid)), ct))
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable,
                    $"Wrote {uuid} to '{createHostPath}', but '{HostPaths.MdevDevices}/{uuid}' did not appear within " +
                    $"{Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s, so no device was made and nothing was defined. " +
                    "Check the kernel log (dmesg) and that the vGPU manager (nvidia-vgpu-mgr.service) is running (Test-VgpuHost).", uuid);
            }
        }

        /// <summary>The type's directory under its parent's <c>mdev_supported_types</c>.</summary>
        internal string TypeDirectory(VgpuType type) => type.Directory ?? Path.Combine(Inventory.TypesDirectory(type.Parent), type.Id);

        /// <summary>The host path of a type's <c>create</c>.</summary>
        internal string CreateHostPath(VgpuType type) => Root.ToHostPath(Path.Combine(TypeDirectory(type), "create"));

        /// <summary>The error that stops a create of <paramref name="count"/> devices when the type has fewer free instances now, or null.</summary>
        internal GpuVirtException? NoFreeInstance(VgpuType type, int count = 1)
        {
            var typeDir = TypeDirectory(type);
            var available = Sysfs.TryReadInt(Path.Combine(typeDir, "available_instances"));
            if (available is null)
            {
                return new GpuVirtException(ErrorIds.VgpuTypeNotFound, ErrorKind.ObjectNotFound,
                    $"The vGPU type '{type.Id}' is no longer offered by {type.Parent} ('{Root.ToHostPath(typeDir)}' has no available_instances).", type.Id);
            }
            return available < count ? NoInstance(type, typeDir, available.Value, null, count) : null;
        }

        private string MdevDirectory(string uuid) => Path.Combine(Root.Resolve(HostPaths.MdevDevices), uuid);

        /// <summary>Writes one mdev attribute of a new device (<c>/sys/bus/mdev/devices/&lt;uuid&gt;/&lt;name&gt;</c>), as mdevctl does when it starts one.</summary>
        internal void WriteAttribute(string uuid, string name, string value)
        {
            var hostPath = HostPaths.MdevDevices + "/" + uuid + "/" + name;
            _log?.Invoke($"Writing {value} to {hostPath}");
            var errno = SysfsWriter.Write(Root.Resolve(hostPath), value + "\n");
            if (errno != 0)
            {
                throw new GpuVirtException(ErrorIds.VgpuAttributeFailed, ErrorKind.WriteError,
                    $"Writing the mdev attribute '{name}' of {uuid} failed ('{hostPath}': {Errno.Describe(errno)}).", uuid);
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
        /// Defines a mediated device from an imported definition (<see cref="VgpuPlanner.PlanDefine"/>), journaled; false
        /// when the same definition is there already. A different one with the UUID is a conflict.
        /// </summary>
        public bool Import(MdevDefinition definition, CancellationToken ct = default)
        {
            var plan = Planner().PlanDefine(definition);
            var had = !plan.HasChanges && plan.Blocking.Count == 0;
            Apply(plan, ct);
            return !had;
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

        private GpuVirtException NoInstance(VgpuType type, string? typeDir, int available, string? kernel, int count = 1)
        {
            var existing = new List<string>();
            var devicesDir = typeDir is null ? null : Path.Combine(typeDir, "devices");
            if (devicesDir != null && Directory.Exists(devicesDir))
                existing.AddRange(Directory.EnumerateFileSystemEntries(devicesDir).Select(Path.GetFileName).Where(n => n != null).Select(n => n!).OrderBy(n => n, StringComparer.Ordinal));
            var max = type.MaxInstance is int m ? $" of {m} (max_instance)" : string.Empty;
            var made = existing.Count > 0 ? $"; {existing.Count} device(s) of this type exist: {string.Join(", ", existing)}" : string.Empty;
            var why = kernel is null ? string.Empty : $" ({kernel})";
            var what = count > 1
                ? $"{count.ToString(CultureInfo.InvariantCulture)} instances of vGPU type '{type.Id}' ({type.DisplayName}) do not fit on {type.Parent}: " +
                  $"available_instances is {available.ToString(CultureInfo.InvariantCulture)}{max}, {count.ToString(CultureInfo.InvariantCulture)} asked for, so none was made"
                : $"No instance of vGPU type '{type.Id}' ({type.DisplayName}) is available on {type.Parent}: " +
                  $"available_instances is {available.ToString(CultureInfo.InvariantCulture)}{max}";
            return new GpuVirtException(ErrorIds.NoVgpuInstanceAvailable, ErrorKind.ResourceUnavailable,
                $"{what}{made}{why}. " +
                "Remove a vGPU of this parent (types of one GPU share its capacity) or choose a type with free instances (Get-VgpuType -Available).",
                type.ToString());
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
        /// Applies an SR-IOV plan (<see cref="VgpuPlanner.PlanSriov"/>): under the host lock each virtual function is checked
        /// again (still free, still listing the type), the type written and read back; when one fails, the functions set are
        /// cleared again in reverse. With <paramref name="persistent"/>, each is then recorded in the boot profiles.
        /// </summary>
        public IReadOnlyList<VgpuDevice> ApplySriov(SriovVgpuPlan plan, bool persistent = false, CancellationToken ct = default) =>
            Apply(Planner().PlanSriov(plan, persistent), ct);

        /// <summary>The error that stops setting <paramref name="type"/> on <paramref name="vf"/> now (taken, or not offered), or null.</summary>
        internal GpuVirtException? SriovTaken(PciAddress vf, VgpuType type)
        {
            var current = Inventory.CurrentType(vf);
            if (current == 0 && Inventory.CreatableTypes(vf).Any(t => t.Key == type.Id)) return null;
            return new GpuVirtException(ErrorIds.NoVgpuInstanceAvailable, ErrorKind.ResourceUnavailable,
                $"Virtual function {vf} can no longer take vGPU type {type.Id} ({type.DisplayName}): it " +
                (current != 0 ? $"now carries type {current.ToString(CultureInfo.InvariantCulture)}" : "no longer lists it in nvidia/creatable_vgpu_types") +
                " (the host changed since the plan was made).", vf.ToString());
        }

        /// <summary>The host path of a virtual function's <c>nvidia/current_vgpu_type</c>.</summary>
        internal string SriovTypeHostPath(PciAddress vf) => Root.ToHostPath(Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType));

        internal void SetSriovType(PciAddress vf, string typeId, string displayName, CancellationToken ct)
        {
            var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType);
            var hostPath = Root.ToHostPath(path);
            _log?.Invoke($"Writing {typeId} to {hostPath}");
            var errno = SysfsWriter.Write(path, typeId + "\n");
            if (errno != 0)
            {
                if (errno == Errno.EACCES || errno == Errno.EPERM) throw Sysfs.RootRequired(hostPath, "write");
                throw new GpuVirtException(ErrorIds.VgpuCreateFailed, errno == Errno.EINVAL ? ErrorKind.InvalidArgument : ErrorKind.WriteError,
                    $"Setting vGPU type {typeId} ({displayName}) on virtual function {vf} failed: the driver answered " +
                    $"'{Errno.Describe(errno)}' (errno {errno}) to the write to '{hostPath}'.", vf.ToString());
            }
            if (!WaitFor(() => Inventory.CurrentType(vf).ToString(CultureInfo.InvariantCulture) == typeId, ct))
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable,
                    $"Wrote {typeId} to '{hostPath}', but the function reports type {Inventory.CurrentType(vf)}.", vf.ToString());
            }
        }

        /// <summary>
        /// Removes a vGPU: stops the live device and, with <paramref name="persistent"/>, removes its definition too
        /// (<see cref="VgpuPlanner.PlanRemove"/>). A device in use stays as it is (definition included);
        /// <paramref name="ownerOf"/> names the guest that holds it.
        /// </summary>
        public void Remove(VgpuDevice device, bool persistent, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct = default)
        {
            var planner = Planner();
            planner.OwnerOf = ownerOf;
            Apply(planner.PlanRemove(device, persistent, force: false), ct);
        }

        /// <summary>
        /// Writes <c>1</c> to a mediated device's <c>remove</c> and waits for it to go. A write the kernel blocks on says
        /// who it waits for (<see cref="Notice"/>); EBUSY is <see cref="ErrorIds.VgpuDeviceBusy"/>.
        /// </summary>
        internal void WriteRemove(VgpuDevice device, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct)
        {
            var uuid = device.Uuid!;
            var dir = MdevDirectory(uuid);
            var hostPath = HostPaths.MdevDevices + "/" + uuid + "/remove";
            _log?.Invoke($"Writing 1 to {hostPath}");
            var errno = new KernelWait { Notice = Notice }.Write(Path.Combine(dir, "remove"), hostPath, "1\n", "mediated device " + uuid, () => DeviceHolders.OfMdev(Root, uuid), ct);
            if (errno == Errno.EBUSY) throw Busy(device, hostPath, ownerOf);
            if (errno != 0) throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuRemoveFailed, $"Removing the mediated device {uuid} failed");
            if (!WaitFor(() => !Directory.Exists(dir), ct))
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotRemoved, ErrorKind.ResourceBusy,
                    $"Wrote 1 to '{hostPath}', but the device is still there after " +
                    $"{Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s; its definition was left as it was.", uuid);
            }
        }

        /// <summary>Writes <c>0</c> to a virtual function's <c>nvidia/current_vgpu_type</c> and waits for it to read 0.</summary>
        internal void ClearSriovType(VgpuDevice device, Func<VgpuDevice, string?>? ownerOf, CancellationToken ct)
        {
            var vf = device.PciAddress!.Value;
            var path = Path.Combine(Inventory.Pci.DeviceDirectory(vf), VgpuInventory.CurrentVgpuType);
            var hostPath = Root.ToHostPath(path);
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

        /// <summary>What <see cref="Define"/> runs or writes, in one line.</summary>
        internal string DescribeDefine(MdevDefinition definition, bool replace)
        {
            var attrs = definition.Attributes.Count == 0 ? string.Empty : ", attributes " + string.Join(", ", definition.Attributes.Select(a => a.Key + "=" + a.Value));
            if (Mdevctl != null && (definition.Attributes.Count > 0 || definition.StartMode != MdevDefinitions.StartAuto))
            {
                var define = ProcessRunner.Render(Mdevctl, new[] { "define", "--uuid", definition.Uuid, "--parent", definition.Parent, "--jsonfile", "<temporary file>" });
                return "run " + (replace ? ProcessRunner.Render(Mdevctl, new[] { "undefine", "--uuid", definition.Uuid, "--parent", definition.Parent }) + ", then " : string.Empty) +
                    define + $" (type {definition.TypeId}, start {definition.StartMode}{attrs})";
            }
            if (Mdevctl != null)
            {
                return "run " + ProcessRunner.Render(Mdevctl, replace
                    ? new[] { "modify", "--uuid", definition.Uuid, "--parent", definition.Parent, "--auto" }
                    : new[] { "define", "--uuid", definition.Uuid, "--parent", definition.Parent, "--type", definition.TypeId, "--auto" });
            }
            return $"{(replace ? "replace" : "write")} the mdevctl definition {definition.Path} (type {definition.TypeId}, start {definition.StartMode}{attrs})";
        }

        /// <summary>What <see cref="Undefine"/> runs or removes, in one line.</summary>
        internal string DescribeUndefine(MdevDefinition definition) =>
            Mdevctl != null
                ? "run " + ProcessRunner.Render(Mdevctl, new[] { "undefine", "--uuid", definition.Uuid, "--parent", definition.Parent }) + $" (removes {definition.Path})"
                : $"remove the mdevctl definition {definition.Path}";

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
