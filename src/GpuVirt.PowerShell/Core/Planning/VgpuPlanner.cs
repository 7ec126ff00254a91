using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Plans the vGPU changes: creating a mediated device (the UUID written to its type's <c>create</c>, its attributes,
    /// and with -Persistent its mdevctl definition), defining one without creating it (New-VgpuDevice -DefineOnly,
    /// Import-VgpuDefinition), removing one (<c>1</c> to its <c>remove</c>, and with -Persistent its definition), and
    /// setting or clearing the vGPU type of NVIDIA SR-IOV virtual functions (with their boot profiles). Each plan says
    /// every write in one line, is checked by <see cref="PlanChecks.All"/> (who holds the device, which guests reference
    /// it), holds what it was built on as preconditions read again under the host lock, and carries its journal record:
    /// before and after, and the inverse (the type, the parent, the UUID, the definition file's bytes).
    /// </summary>
    internal sealed class VgpuPlanner
    {
        private readonly ChangeHost _host;
        private readonly VgpuManager _manager;
        private readonly Func<Virsh>? _virsh;
        private readonly Action<string>? _log;
        private readonly IEnumerable<IPlanCheck> _checks;

        /// <param name="virsh">The libvirt connection whose guests' definitions are checked (null: none are).</param>
        public VgpuPlanner(ChangeHost host, VgpuManager manager, Func<Virsh>? virsh = null, Action<string>? log = null, IEnumerable<IPlanCheck>? checks = null)
        {
            _host = host;
            _manager = manager;
            _virsh = virsh;
            _log = log;
            _checks = checks ?? PlanChecks.All;
        }

        public VgpuInventory Inventory => _manager.Inventory;

        /// <summary>Names the guest that holds a device the kernel answers EBUSY for (by default through the planner's virsh).</summary>
        public Func<VgpuDevice, string?>? OwnerOf { get; set; }

        private Func<VgpuDevice, string?>? Owners => OwnerOf ?? (_virsh is null ? null : VgpuManager.GuestOwners(_virsh()));

        /// <summary>The guests' references, read on each call (the checks run once when planning and once under the lock).</summary>
        private Func<GuestReferences?>? Guests =>
            _virsh != null && GuestReferences.Reachable(_host) ? () => GuestReferences.TryRead(_virsh(), _log) : (Func<GuestReferences?>?)null;

        /// <summary>
        /// Plans one mediated device of <paramref name="type"/> (<paramref name="uuidText"/> or a new UUID): created, or
        /// with <see cref="MdevOptions.DefineOnly"/> only defined; with <paramref name="persistent"/> defined to start
        /// at boot. Bad input throws; what the host refuses now (the UUID in use or defined otherwise, no free instance)
        /// is a refusal, read again under the lock.
        /// </summary>
        public ChangePlan<VgpuDevice> PlanCreate(VgpuType type, string? uuidText, bool persistent, MdevOptions? options)
        {
            var uuid = uuidText is null ? Guid.NewGuid().ToString("D") : VgpuManager.ParseUuid(uuidText);
            var defineOnly = options?.DefineOnly == true;
            return BuildCreate(type, new[] { uuid }, persistent, options,
                () => defineOnly ? Inventory.Devices().First(d => d.Uuid == uuid && d.Parent == type.Parent) : Inventory.FindLive(uuid) ?? throw Vanished(uuid));
        }

        /// <summary>
        /// Plans <paramref name="count"/> mediated devices of <paramref name="type"/>, each with a new UUID, as one change:
        /// refused before any write (<see cref="ErrorIds.NoVgpuInstanceAvailable"/>, -WhatIf included) when the type has
        /// fewer free instances; applied whole or not at all (the devices made are removed again when a later one fails);
        /// one journal record, whose undo takes them all back.
        /// </summary>
        public ChangePlan<IReadOnlyList<VgpuDevice>> PlanCreateMany(VgpuType type, int count, bool persistent, MdevOptions? options)
        {
            if (count < 1) throw new ArgumentOutOfRangeException(nameof(count));
            var uuids = Enumerable.Range(0, count).Select(_ => Guid.NewGuid().ToString("D")).ToList();
            var defineOnly = options?.DefineOnly == true;
            return BuildCreate<IReadOnlyList<VgpuDevice>>(type, uuids, persistent, options,
                () => uuids.Select(u => defineOnly ? Inventory.Devices().First(d => d.Uuid == u && d.Parent == type.Parent) : Inventory.FindLive(u) ?? throw Vanished(u)).ToList());
        }

        private static GpuVirtException Vanished(string uuid) => new GpuVirtException(
            ErrorIds.VgpuDeviceNotCreated, ErrorKind.ResourceUnavailable, $"The mediated device {uuid} vanished right after it was created.", uuid);

        /// <summary>The plan of <see cref="PlanCreate"/> and <see cref="PlanCreateMany"/>: each UUID's writes, one instance check for all.</summary>
        private ChangePlan<TResult> BuildCreate<TResult>(VgpuType type, IReadOnlyList<string> uuids, bool persistent, MdevOptions? options, Func<TResult> result)
        {
            if (type.Kind == VgpuKind.SriovVf)
            {
                throw new ArgumentException("An SR-IOV vGPU type is planned with PlanCreateSriov.", nameof(type));
            }
            var defineOnly = options?.DefineOnly == true;
            var startMode = options?.StartMode ?? MdevDefinitions.StartAuto;
            Inventory.Definitions.Refresh();
            var count = uuids.Count;
            var many = count > 1;
            var devicesText = many ? $"{count.ToString(CultureInfo.InvariantCulture)} mediated devices ({string.Join(", ", uuids)})" : "mediated device " + uuids[0];

            var target = $"vGPU type {type.Id} ({type.DisplayName}) on {type.Parent}";
            var action = defineOnly
                ? $"Define {devicesText} (start {startMode}) without creating " + (many ? "them" : "it")
                : $"Create {devicesText}" + (persistent ? $" and define {(many ? "them" : "it")} (start {startMode})" : string.Empty);
            var plan = new ChangePlan<TResult>(defineOnly ? ChangeKind.VgpuDefine : ChangeKind.VgpuCreate, _host, target, action, result)
            {
                Summary = $"{action}, of {target}:",
            };
            plan.Mdevs.AddRange(uuids);

            var made = new List<(string Uuid, MdevDefinition? Defined, string? ReplacedText)>();
            foreach (var uuid in uuids)
            {
                var definitions = Inventory.Definitions.Find(uuid);
                var matching = definitions.FirstOrDefault(d => d.Parent == type.Parent && d.TypeId == type.Id);
                var attributes = options != null && options.Attributes.Count > 0 ? options.Attributes : matching?.Attributes ?? Array.Empty<KeyValuePair<string, string>>();
                foreach (var a in attributes) VgpuManager.CheckAttributeName(a.Key);

                if (!defineOnly) Refuse(plan, $"UUID {uuid} is not defined as another type or parent", () => DefinedOtherwise(uuid, type));
                Refuse(plan, $"no mediated device {uuid} exists", () => Exists(uuid));
                if (defineOnly)
                {
                    // As mdevctl define: one UUID may be defined under several parents, once under each.
                    Refuse(plan, $"UUID {uuid} is not defined on {type.Parent}", () => Defined(uuid, type.Parent));
                }
                else
                {
                    plan.Steps.Add(new PlanStep($"write {uuid} to {_manager.CreateHostPath(type)}",
                        c => _manager.WriteCreate(type, uuid, c.CancellationToken),
                        _ => RemoveAgain(uuid),
                        $"write 1 to {HostPaths.MdevDevices}/{uuid}/remove")
                    {
                        Inverse = new InverseStep
                        {
                            Kind = InverseKind.RemoveVgpu, Description = $"remove mediated device {uuid}",
                            Uuid = uuid, Parent = type.Parent, TypeId = type.Id, Persistent = false, Active = true,
                        },
                    });
                    foreach (var a in attributes)
                    {
                        plan.Steps.Add(new PlanStep($"write {a.Value} to {HostPaths.MdevDevices}/{uuid}/{a.Key}",
                            _ => _manager.WriteAttribute(uuid, a.Key, a.Value),
                            _ => { },
                            "nothing: the attribute goes with the device") { GoesWithEarlierStep = true });
                    }
                }

                MdevDefinition? defined = null;
                string? replacedText = null;
                if (defineOnly || (persistent && (matching is null || matching.StartMode != startMode || !matching.Attributes.SequenceEqual(attributes))))
                {
                    var definition = new MdevDefinition(type.Parent, uuid, type.Id, startMode, attributes);
                    var replace = !defineOnly && matching != null;
                    replacedText = replace ? Inventory.Definitions.ReadText(matching!.Path) : null;
                    defined = definition;
                    AddDefineStep(plan, definition, replace, replacedText);
                }
                else if (persistent)
                {
                    plan.Warnings.Add($"{uuid} is defined so already ('{matching!.Path}'); the definition is kept as it is.");
                }
                made.Add((uuid, defined, replacedText));
            }
            if (!defineOnly)
            {
                // One check for all: N devices that do not fit are refused before the first write.
                Refuse(plan, $"vGPU type {type.Id} has {(many ? count.ToString(CultureInfo.InvariantCulture) + " free instances" : "a free instance")} on {type.Parent}",
                    () => _manager.NoFreeInstance(type, count));
            }

            plan.Journal = () =>
            {
                var anyDefined = made.Any(m => m.Defined != null);
                var record = new ChangeRecord
                {
                    Target = string.Join(", ", uuids),
                    Action = defineOnly
                        ? $"Define {devicesText} of type {type.Id} on {type.Parent}"
                        : $"Create {(many ? count.ToString(CultureInfo.InvariantCulture) + " vGPUs" : "a vGPU")} of type {type.Id} on {type.Parent}" +
                          (anyDefined ? $" and define {(many ? "them" : "it")} to start at boot" : string.Empty),
                };
                foreach (var (uuid, defined, replacedText) in made)
                {
                    if (!defineOnly) record.Details.Add(new ChangeDetail("vGPU " + uuid, null, type.Id + (defined != null ? $" (defined, start {startMode})" : string.Empty)));
                    var inverse = new InverseStep
                    {
                        Kind = InverseKind.RemoveVgpu,
                        Description = defineOnly
                            ? $"remove the mdevctl definition of {uuid}"
                            : $"remove mediated device {uuid}" + (defined != null ? " and its mdevctl definition" : string.Empty),
                        Uuid = uuid, Parent = type.Parent, TypeId = type.Id, Persistent = defined != null, Active = !defineOnly,
                    };
                    if (defined != null)
                    {
                        var after = Inventory.Definitions.ReadText(defined.Path);
                        record.Details.Add(new ChangeDetail("definition " + defined.Path, replacedText is null ? null : "as it was", $"{type.Id} (start {startMode})"));
                        record.FileChanges.Add(new ChangeFile { Path = defined.Path, Action = replacedText is null ? BootFileAction.Created : BootFileAction.Modified, BeforeSha256 = FileState.Hash(replacedText), AfterSha256 = FileState.Hash(after) });
                        inverse.Files = new List<FileState> { new FileState { Path = defined.Path, Content = replacedText is null ? null : FileState.Encode(replacedText), Expected = FileState.Hash(after) } };
                    }
                    record.Inverse.Add(inverse);
                }
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>Plans <paramref name="count"/> SR-IOV vGPUs of a type on the first free virtual functions that list it (<see cref="SriovVgpu.Plan"/>).</summary>
        public ChangePlan<IReadOnlyList<VgpuDevice>> PlanCreateSriov(VgpuType type, int count, bool persistent) =>
            PlanSriov(SriovVgpu.Plan(Inventory, type, count), persistent);

        /// <summary>
        /// Plans setting a type on the virtual functions of an SR-IOV plan, applied whole or not at all (each function set
        /// is cleared again when a later one fails); with <paramref name="persistent"/>, each recorded in the boot profiles.
        /// </summary>
        public ChangePlan<IReadOnlyList<VgpuDevice>> PlanSriov(SriovVgpuPlan sriov, bool persistent)
        {
            var type = sriov.Type;
            var vfs = sriov.Assignments.Select(a => a.VirtualFunction).ToList();
            var action = sriov.Action + (persistent ? " and record it for boot" : string.Empty);
            var plan = new ChangePlan<IReadOnlyList<VgpuDevice>>(ChangeKind.VgpuCreate, _host, sriov.Target, action,
                () => vfs.Select(vf => Inventory.FindSriov(vf)!).ToList())
            {
                Summary = action + ", " + sriov.Target + ":",
            };
            plan.Devices.AddRange(vfs);
            foreach (var a in sriov.Assignments)
            {
                var vf = a.VirtualFunction;
                Refuse(plan, $"{vf} is free and lists vGPU type {type.Id}", () => _manager.SriovTaken(vf, type));
                plan.Steps.Add(new PlanStep(a.ToString(),
                    c => _manager.SetSriovType(vf, type.Id, type.DisplayName, c.CancellationToken),
                    _ => ClearAgain(vf),
                    $"write 0 to {a.HostPath}")
                {
                    Inverse = new InverseStep { Kind = InverseKind.RemoveVgpu, Description = $"clear the vGPU type of {vf}", Address = vf.ToString(), Parent = type.Parent, TypeId = type.Id },
                });
            }
            if (persistent) AddProfileStep(plan, vfs.Select(vf => new SriovVgpuProfile(Inventory.Pci.Find(vf)?.PhysicalFunctionAddress ?? type.ParentPciAddress ?? vf, vf, type.Id, type.Name)).ToList());
            plan.Journal = () =>
            {
                var record = new ChangeRecord
                {
                    Target = string.Join(", ", vfs),
                    Action = $"Set vGPU type {type.Id} ({type.DisplayName}) on {string.Join(", ", vfs)}" + (persistent ? " and record it for boot" : string.Empty),
                };
                foreach (var vf in vfs)
                {
                    record.Details.Add(new ChangeDetail($"vGPU type of {vf}", "0", type.Id + (persistent ? " (recorded in " + SriovVgpuProfiles.ProfileFile + ")" : string.Empty)));
                    record.Inverse.Add(new InverseStep
                    {
                        Kind = InverseKind.RemoveVgpu,
                        Description = $"clear the vGPU type of {vf}" + (persistent ? " and take it out of " + SriovVgpuProfiles.ProfileFile : string.Empty),
                        Address = vf.ToString(), Parent = type.Parent, TypeId = type.Id, Persistent = persistent,
                    });
                }
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>
        /// Plans removing a vGPU: a live mediated device (<c>1</c> to its <c>remove</c>) and with
        /// <paramref name="persistent"/> its definitions, or an SR-IOV vGPU (<c>0</c> to its <c>current_vgpu_type</c>) and
        /// with <paramref name="persistent"/> its boot profile. The result is the device as it was (-PassThru).
        /// <paramref name="force"/> lifts the refusal for a guest that still references it; nothing lifts the refusal for
        /// a process that holds it (the write would wait in the kernel).
        /// </summary>
        /// <param name="definitionOnly">Leave a live device running and remove only its definitions (the undo of a define).</param>
        public ChangePlan<VgpuDevice> PlanRemove(VgpuDevice device, bool persistent, bool force, bool definitionOnly = false)
        {
            return device.Kind == VgpuKind.SriovVf ? PlanRemoveSriov(device, persistent, force) : PlanRemoveMdev(device, persistent, force, definitionOnly);
        }

        private ChangePlan<VgpuDevice> PlanRemoveMdev(VgpuDevice device, bool persistent, bool force, bool definitionOnly)
        {
            var uuid = VgpuManager.ParseUuid(device.Uuid!);
            Inventory.Definitions.Refresh();
            var live = definitionOnly ? null : Inventory.FindLive(uuid);
            // Taking back a definition (an undo) removes that parent's only; the UUID may be defined under others too.
            var definitions = Inventory.Definitions.Find(uuid)
                .Where(d => live != null ? d.Parent == live.Parent : !definitionOnly || d.Parent == device.Parent).ToList();
            if (live is null && definitions.Count == 0)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                    $"No mediated device {uuid} exists or is defined (under '{HostPaths.MdevDevices}' or '{MdevDefinitions.Directory}').", uuid);
            }
            if (live is null && !persistent)
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotActive, ErrorKind.InvalidOperation,
                    $"The mediated device {uuid} is defined ('{definitions[0].Path}') but not running: there is nothing to stop. " +
                    "Add -Persistent to remove its definition.", uuid);
            }
            var removed = persistent ? definitions : new List<MdevDefinition>();
            var known = live ?? Inventory.Devices().FirstOrDefault(d => d.Uuid == uuid) ?? device;
            var typeId = live?.TypeId ?? definitions[0].TypeId;
            var parent = live?.Parent ?? definitions[0].Parent;
            var action = live != null
                ? (removed.Count > 0 ? "Remove the mediated device and its definition " + string.Join(", ", removed.Select(d => d.Path)) : "Remove the mediated device")
                : "Remove the definition " + string.Join(", ", removed.Select(d => d.Path));
            var plan = new ChangePlan<VgpuDevice>(ChangeKind.VgpuRemove, _host, $"{uuid} ({typeId} on {parent})", action, () => known)
            {
                Summary = $"{action}: {uuid} ({typeId} on {parent}):",
                Force = force,
                ReadGuests = Guests,
            };
            plan.Mdevs.Add(uuid);
            if (live != null)
            {
                var dir = Inventory.Root.Resolve(HostPaths.MdevDevices + "/" + uuid);
                plan.Preconditions.Add(new PlanPrecondition($"the mediated device {uuid} exists",
                    () => Directory.Exists(dir) ? null : $"the mediated device {uuid} is gone"));
                var type = Inventory.Types(live.Parent)?.FirstOrDefault(t => t.Id == live.TypeId);
                plan.Steps.Add(new PlanStep($"write 1 to {HostPaths.MdevDevices}/{uuid}/remove",
                    c => _manager.WriteRemove(live, Owners, c.CancellationToken),
                    type is null ? null : (Action<PlanContext>)(c => _manager.WriteCreate(type, uuid, c.CancellationToken)),
                    type is null ? null : $"write {uuid} to {_manager.CreateHostPath(type)}"));
            }
            var texts = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var d in removed)
            {
                var text = Inventory.Definitions.ReadText(d.Path) ?? MdevDefinitions.ToJson(d);
                texts[d.Path] = text;
                plan.Preconditions.Add(new PlanPrecondition($"the definition {d.Path} is the one read",
                    () => Inventory.Definitions.ReadText(d.Path) == text ? null : $"the definition {d.Path} was changed or removed"));
                plan.Steps.Add(new PlanStep(_manager.DescribeUndefine(d),
                    c => _manager.Undefine(d, c.CancellationToken),
                    _ => Inventory.Definitions.WriteText(d.Path, text),
                    $"write {d.Path} back as it was"));
            }
            plan.Journal = () =>
            {
                var record = new ChangeRecord
                {
                    Target = uuid,
                    Action = (live != null ? "Remove the vGPU" : "Remove the definition of the vGPU") + (live != null && removed.Count > 0 ? " and its definition" : string.Empty),
                };
                if (live != null) record.Details.Add(new ChangeDetail("vGPU " + uuid, typeId, null));
                foreach (var d in removed)
                {
                    record.Details.Add(new ChangeDetail("definition " + d.Path, $"{d.TypeId} (start {d.StartMode})", null));
                    record.FileChanges.Add(new ChangeFile { Path = d.Path, Action = BootFileAction.Removed, BeforeSha256 = FileState.Hash(texts[d.Path]) });
                }
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.CreateVgpu,
                    Description = (live != null ? $"create mediated device {uuid} of type {typeId} on {parent}" : $"define mediated device {uuid} of type {typeId} on {parent}")
                        + (live != null && removed.Count > 0 ? " and put its definition back" : string.Empty),
                    Uuid = uuid, Parent = parent, TypeId = typeId, Persistent = removed.Count > 0, Active = live != null,
                    Files = removed.Count == 0 ? null : removed.Select(d => new FileState { Path = d.Path, Content = FileState.Encode(texts[d.Path]) }).ToList(),
                });
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        private ChangePlan<VgpuDevice> PlanRemoveSriov(VgpuDevice device, bool persistent, bool force)
        {
            var vf = device.PciAddress!.Value;
            var profile = Inventory.Profiles.Find(vf);
            var current = Inventory.IsSriovVgpuFunction(vf) ? Inventory.CurrentType(vf) : 0;
            var set = current != 0;
            if (!set && !(persistent && profile != null))
            {
                throw new GpuVirtException(ErrorIds.VgpuDeviceNotActive, ErrorKind.InvalidOperation,
                    $"Virtual function {vf} has no vGPU type set: there is nothing to remove." +
                    (profile != null ? $" It is recorded in {SriovVgpuProfiles.ProfileFile}; add -Persistent to take it out." : string.Empty), vf.ToString());
            }
            var typeId = set ? current.ToString(CultureInfo.InvariantCulture) : profile!.TypeId;
            var known = Inventory.FindSriov(vf) ?? device;
            var unrecord = persistent && profile != null;
            var action = (set ? "Clear the vGPU type" : "Nothing to clear") +
                (unrecord ? "; " + string.Join("; ", Inventory.Profiles.InstallLines(adding: false)) : string.Empty);
            var plan = new ChangePlan<VgpuDevice>(ChangeKind.VgpuRemove, _host, $"{vf} (type {typeId}{(known.TypeName is null ? string.Empty : " " + known.TypeName)})", action, () => known)
            {
                Summary = $"Remove the vGPU on {vf} (type {typeId}{(known.TypeName is null ? string.Empty : " " + known.TypeName)}):",
                Force = force,
                ReadGuests = Guests,
            };
            plan.Devices.Add(vf);
            var hostPath = _manager.SriovTypeHostPath(vf);
            if (set)
            {
                plan.Preconditions.Add(new PlanPrecondition($"{vf} carries vGPU type {typeId}",
                    () => Inventory.CurrentType(vf) == current ? null : $"{vf} carries type {Inventory.CurrentType(vf).ToString(CultureInfo.InvariantCulture)} now"));
                plan.Steps.Add(new PlanStep($"write 0 to {hostPath}",
                    c => _manager.ClearSriovType(known, Owners, c.CancellationToken),
                    c => _manager.SetSriovType(vf, typeId, known.TypeName ?? typeId, c.CancellationToken),
                    $"write {typeId} to {hostPath}"));
            }
            if (unrecord)
            {
                plan.Steps.Add(new PlanStep(string.Join("; ", Inventory.Profiles.InstallLines(adding: false)) + $" ({vf})",
                    _ =>
                    {
                        _log?.Invoke($"Removing {vf} from {SriovVgpuProfiles.ProfileFile}");
                        Inventory.Profiles.Remove(vf);
                    },
                    _ => Inventory.Profiles.Add(profile!),
                    $"record {vf} type {typeId} in {SriovVgpuProfiles.ProfileFile} again"));
            }
            plan.Journal = () =>
            {
                var record = new ChangeRecord { Target = vf.ToString(), Action = "Remove the vGPU" + (unrecord ? " and its boot profile" : string.Empty) };
                record.Details.Add(new ChangeDetail($"vGPU type of {vf}", typeId + (unrecord ? " (recorded in " + SriovVgpuProfiles.ProfileFile + ")" : string.Empty), set ? "0" : typeId));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.CreateVgpu,
                    Description = (set ? $"set vGPU type {typeId} on {vf} again" : $"record {vf} type {typeId} for boot again") + (set && unrecord ? " and record it for boot" : string.Empty),
                    Address = vf.ToString(), Parent = device.Parent, TypeId = typeId, Persistent = unrecord, Active = set,
                });
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>
        /// Plans defining a mediated device from an imported definition (Import-VgpuDefinition): nothing to do when the
        /// same definition is there, a refusal (<see cref="ErrorIds.VgpuDefinitionConflict"/>) when a different one is.
        /// </summary>
        public ChangePlan<VgpuDevice> PlanDefine(MdevDefinition definition)
        {
            foreach (var a in definition.Attributes) VgpuManager.CheckAttributeName(a.Key);
            Inventory.Definitions.Refresh();
            var uuid = definition.Uuid;
            var attrs = definition.Attributes.Count == 0 ? string.Empty : ", attributes " + string.Join(", ", definition.Attributes.Select(a => a.Key + "=" + a.Value));
            var action = $"Define the mediated device (start {definition.StartMode}{attrs}) in {definition.Path}";
            var plan = new ChangePlan<VgpuDevice>(ChangeKind.VgpuDefine, _host, $"{uuid} ({definition.TypeId} on {definition.Parent})", action,
                () => Inventory.Devices().First(x => x.Uuid == uuid && x.Parent == definition.Parent));
            plan.Mdevs.Add(uuid);
            // As mdevctl keeps them, a definition is one UUID under one parent: the same UUID may be defined under
            // another parent too (mdevctl define accepts it), and only a different one under this parent conflicts.
            var same = Inventory.Definitions.Find(uuid).FirstOrDefault(d => d.Parent == definition.Parent);
            if (same != null && same.TypeId == definition.TypeId && same.StartMode == definition.StartMode
                && same.Attributes.SequenceEqual(definition.Attributes))
            {
                plan.NothingToDo = $"{uuid} is defined so already ({definition.Path}).";
                return plan;
            }
            Refuse(plan, $"UUID {uuid} is not defined on {definition.Parent}", () =>
            {
                Inventory.Definitions.Refresh();
                var now = Inventory.Definitions.Find(uuid).FirstOrDefault(d => d.Parent == definition.Parent);
                return now is null ? null : new GpuVirtException(ErrorIds.VgpuDefinitionConflict, ErrorKind.InvalidOperation,
                    $"UUID {uuid} is already defined on {now.Parent} with {Differences(now, definition)} ('{now.Path}'). " +
                    "Remove it with Remove-VgpuDevice -Persistent first.", uuid);
            });
            AddDefineStep(plan, definition, replace: false, replacedText: null);
            plan.Journal = () =>
            {
                var after = Inventory.Definitions.ReadText(definition.Path);
                var record = new ChangeRecord { Target = uuid, Action = $"Define mediated device {uuid} of type {definition.TypeId} on {definition.Parent}" };
                record.Details.Add(new ChangeDetail("definition " + definition.Path, null, definition.TypeId + " (start " + definition.StartMode + ")"));
                record.FileChanges.Add(new ChangeFile { Path = definition.Path, Action = BootFileAction.Created, AfterSha256 = FileState.Hash(after) });
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.RemoveVgpu,
                    Description = $"remove the mdevctl definition of {uuid}",
                    Uuid = uuid, Parent = definition.Parent, TypeId = definition.TypeId, Persistent = true, Active = false,
                    Files = new List<FileState> { new FileState { Path = definition.Path, Expected = FileState.Hash(after) } },
                });
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>What a definition on the host has that the one to define has not: <c>type 'a' (the document has 'b')</c>, and so on.</summary>
        private static string Differences(MdevDefinition now, MdevDefinition wanted)
        {
            static string Attrs(MdevDefinition d) => d.Attributes.Count == 0 ? "none" : string.Join(", ", d.Attributes.Select(a => a.Key + "=" + a.Value));
            var parts = new List<string>();
            if (now.TypeId != wanted.TypeId) parts.Add($"type '{now.TypeId}' (the document has '{wanted.TypeId}')");
            if (now.StartMode != wanted.StartMode) parts.Add($"start {now.StartMode} (the document has {wanted.StartMode})");
            if (!now.Attributes.SequenceEqual(wanted.Attributes)) parts.Add($"attributes {Attrs(now)} (the document has {Attrs(wanted)})");
            return string.Join(", ", parts);
        }

        /// <summary>
        /// Plans taking a journaled vGPU change back (<see cref="InverseKind.RemoveVgpu"/> or
        /// <see cref="InverseKind.CreateVgpu"/>): the same plans as the cmdlets', so the same checks and the same lock.
        /// A definition the change removed is put back byte for byte.
        /// </summary>
        public ChangePlan PlanInverse(InverseStep step, bool force)
        {
            switch (step.Kind)
            {
                case InverseKind.RemoveVgpu:
                {
                    var device = Find(step) ?? throw new GpuVirtException(ErrorIds.VgpuDeviceNotFound, ErrorKind.ObjectNotFound,
                        $"The vGPU {Source(step)} does not exist.", Source(step));
                    var definitionOnly = step.Uuid != null && !step.Active;
                    return PlanRemove(device, step.Persistent || definitionOnly, force, definitionOnly);
                }
                case InverseKind.CreateVgpu:
                    return step.Uuid != null ? PlanRecreateMdev(step) : PlanRecreateSriov(step);
                default:
                    throw new ArgumentException("Not a vGPU inverse: " + step.Kind, nameof(step));
            }
        }

        private ChangePlan PlanRecreateMdev(InverseStep step)
        {
            var files = (step.Files ?? new List<FileState>()).Where(f => f.Content != null).ToList();
            if (!step.Active && files.Count > 0)
            {
                // Only definitions were removed: put their bytes back.
                var plan = new ChangePlan<VgpuDevice>(ChangeKind.VgpuDefine, _host, $"{step.Uuid} ({step.TypeId} on {step.Parent})",
                    $"Put the definition of mediated device {step.Uuid} back", () => Inventory.Devices().First(d => d.Uuid == step.Uuid));
                plan.Mdevs.Add(step.Uuid!);
                Refuse(plan, $"UUID {step.Uuid} is not defined on {step.Parent}", () => Defined(step.Uuid!, step.Parent));
                AddRestoreSteps(plan, files);
                PlanChecks.Run(plan, _checks);
                return plan;
            }
            if (!step.Active)
            {
                return PlanCreate(Type(step), step.Uuid, persistent: false, new MdevOptions { DefineOnly = true });
            }
            // The attributes lived in the definition the change removed: the device gets them again.
            var attributes = files.Select(f => MdevDefinitions.TryParse(step.Parent!, step.Uuid!, f.Text!, out var d, out _) ? d : null)
                .FirstOrDefault(d => d != null)?.Attributes;
            var options = attributes is null || attributes.Count == 0 ? null : new MdevOptions { Attributes = attributes };
            var create = PlanCreate(Type(step), step.Uuid, persistent: step.Persistent && files.Count == 0, options);
            AddRestoreSteps(create, files);
            return create;
        }

        private ChangePlan PlanRecreateSriov(InverseStep step)
        {
            var vf = PciAddress.Parse(step.Address!);
            var pf = Inventory.Pci.Find(vf)?.PhysicalFunctionAddress;
            if (step.Active)
            {
                var type = Type(step);
                var assignment = new SriovVgpuAssignment(vf, type.Id, type.Name, _manager.SriovTypeHostPath(vf));
                return PlanSriov(new SriovVgpuPlan(type, new[] { assignment }), step.Persistent);
            }
            var name = Inventory.TypeNameOf(new[] { vf }, step.TypeId!);
            var plan = new ChangePlan<IReadOnlyList<VgpuDevice>>(ChangeKind.VgpuCreate, _host, $"{vf} (type {step.TypeId})",
                $"Record {vf} type {step.TypeId} for boot again",
                () => Inventory.FindSriov(vf) is VgpuDevice d ? new[] { d } : Array.Empty<VgpuDevice>());
            plan.Devices.Add(vf);
            AddProfileStep(plan, new[] { new SriovVgpuProfile(pf ?? vf, vf, step.TypeId!, name) });
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>The device an inverse names: a mediated device by UUID, or an SR-IOV virtual function.</summary>
        public VgpuDevice? Find(InverseStep step)
        {
            // One UUID may be defined under several parents: the one the change was made on.
            if (step.Uuid != null)
            {
                var devices = Inventory.Devices().Where(d => d.Uuid == step.Uuid).ToList();
                return devices.FirstOrDefault(d => step.Parent != null && d.Parent == step.Parent) ?? devices.FirstOrDefault();
            }
            return Inventory.FindSriov(PciAddress.Parse(step.Address!));
        }

        private VgpuType Type(InverseStep step)
        {
            var types = Inventory.Types(VgpuInventory.NormalizeParent(step.Parent!));
            return types?.FirstOrDefault(t => t.Id == step.TypeId) ?? throw new GpuVirtException(ErrorIds.VgpuTypeNotFound, ErrorKind.ObjectNotFound,
                $"{step.Parent} offers no vGPU type '{step.TypeId}' any more.", step.TypeId);
        }

        private static string Source(InverseStep step) => step.Uuid ?? step.Address ?? string.Empty;

        private void AddDefineStep(ChangePlan plan, MdevDefinition definition, bool replace, string? replacedText)
        {
            plan.Steps.Add(new PlanStep(_manager.DescribeDefine(definition, replace),
                c => _manager.Define(definition, replace, c.CancellationToken),
                c =>
                {
                    if (replacedText != null) Inventory.Definitions.WriteText(definition.Path, replacedText, replace: true);
                    else _manager.Undefine(definition, c.CancellationToken);
                },
                replacedText != null ? $"write {definition.Path} back as it was" : _manager.DescribeUndefine(definition))
            {
                Inverse = replacedText != null
                    ? new InverseStep
                    {
                        Kind = InverseKind.RestoreFiles, Description = $"write {definition.Path} back as it was",
                        Files = new List<FileState> { new FileState { Path = definition.Path, Content = FileState.Encode(replacedText) } },
                    }
                    : new InverseStep
                    {
                        Kind = InverseKind.RemoveVgpu, Description = $"remove the mdevctl definition of {definition.Uuid}",
                        Uuid = definition.Uuid, Parent = definition.Parent, TypeId = definition.TypeId, Persistent = true, Active = false,
                    },
            });
        }

        private void AddRestoreSteps(ChangePlan plan, IEnumerable<FileState> files)
        {
            foreach (var f in files)
            {
                var text = f.Text!;
                plan.Steps.Add(new PlanStep($"write the mdevctl definition {f.Path} back as it was ({HostFiles.Bytes.GetByteCount(text).ToString(CultureInfo.InvariantCulture)} bytes)",
                    _ => Inventory.Definitions.WriteText(f.Path, text),
                    _ => HostFiles.Delete(Inventory.Root.Resolve(f.Path), f.Path),
                    $"remove {f.Path}"));
            }
        }

        private void AddProfileStep(ChangePlan plan, IReadOnlyList<SriovVgpuProfile> profiles)
        {
            var lines = Inventory.Profiles.InstallLines(adding: true);
            plan.Steps.Add(new PlanStep(string.Join("; ", lines) + " (" + string.Join(", ", profiles.Select(p => p.VirtualFunction + " type " + p.TypeId)) + ")",
                _ =>
                {
                    foreach (var p in profiles)
                    {
                        _log?.Invoke($"Recording {p.VirtualFunction} type {p.TypeId} in {SriovVgpuProfiles.ProfileFile}");
                        Inventory.Profiles.Add(p);
                    }
                },
                _ =>
                {
                    foreach (var p in profiles.Reverse()) Inventory.Profiles.Remove(p.VirtualFunction);
                },
                $"take {string.Join(", ", profiles.Select(p => p.VirtualFunction))} out of {SriovVgpuProfiles.ProfileFile}"));
        }

        /// <summary>A rule of the plan: refused now when it does not hold, and read again under the lock.</summary>
        private static void Refuse(ChangePlan plan, string description, Func<GpuVirtException?> rule)
        {
            if (rule() is GpuVirtException now) plan.Refusals.Add(new PlanRefusal(now));
            plan.Preconditions.Add(PlanPrecondition.Rule(description, rule));
        }

        private GpuVirtException? DefinedOtherwise(string uuid, VgpuType type)
        {
            Inventory.Definitions.Refresh();
            var other = Inventory.Definitions.Find(uuid).FirstOrDefault(d => d.Parent != type.Parent || d.TypeId != type.Id);
            return other is null ? null : new GpuVirtException(ErrorIds.VgpuDefinitionConflict, ErrorKind.InvalidOperation,
                $"UUID {uuid} is already defined as type '{other.TypeId}' on parent {other.Parent} ('{other.Path}'). " +
                "Use another UUID, or remove that definition with Remove-VgpuDevice -Persistent.", uuid);
        }

        private GpuVirtException? Defined(string uuid, string? parent)
        {
            Inventory.Definitions.Refresh();
            var d = Inventory.Definitions.Find(uuid).FirstOrDefault(x => parent is null || x.Parent == parent);
            return d is null ? null : new GpuVirtException(ErrorIds.VgpuDefinitionConflict, ErrorKind.InvalidOperation,
                $"UUID {uuid} is already defined ('{d.Path}'). Remove it with Remove-VgpuDevice -Persistent first, or use another UUID.", uuid);
        }

        private GpuVirtException? Exists(string uuid)
        {
            var existing = Inventory.FindLive(uuid);
            return existing is null ? null : new GpuVirtException(ErrorIds.VgpuDeviceExists, ErrorKind.ResourceBusy,
                $"A mediated device {uuid} already exists (type '{existing.TypeId}' on {existing.Parent}).", uuid);
        }

        private void RemoveAgain(string uuid)
        {
            var hostPath = HostPaths.MdevDevices + "/" + uuid + "/remove";
            var errno = SysfsWriter.Write(Inventory.Root.Resolve(hostPath), "1\n");
            if (errno != 0) throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuRemoveFailed, $"Removing the new mediated device {uuid} again failed");
        }

        private void ClearAgain(PciAddress vf)
        {
            var hostPath = _manager.SriovTypeHostPath(vf);
            var errno = SysfsWriter.Write(Inventory.Root.Resolve(hostPath), "0\n");
            if (errno != 0) throw SysfsWriter.Failure(hostPath, errno, ErrorIds.VgpuRemoveFailed, $"Clearing the vGPU type of {vf} again failed");
        }
    }
}
