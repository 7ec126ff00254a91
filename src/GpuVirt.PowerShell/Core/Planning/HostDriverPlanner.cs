using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Plans taking PCI functions from their host drivers (Dismount-GpuHostDriver) and giving them back
    /// (Mount-GpuHostDriver), through virsh (<c>nodedev-detach</c>/<c>nodedev-reattach</c>) or sysfs
    /// (<c>driver_override</c>, <c>unbind</c>, <c>drivers_probe</c>).
    /// </summary>
    internal sealed class HostDriverPlanner
    {
        private readonly ChangeHost _host;
        private readonly Func<Virsh> _virsh;
        private readonly Action<string>? _log;
        private readonly IEnumerable<IPlanCheck> _checks;
        private HostDriverMethod? _resolved;

        public HostDriverPlanner(ChangeHost host, Func<Virsh> virsh, Action<string>? log = null, IEnumerable<IPlanCheck>? checks = null)
        {
            _host = host;
            _virsh = virsh;
            _log = log;
            _checks = checks ?? PlanChecks.All;
            Binding = new HostDriverBinding(host.Root, log);
        }

        public HostDriverBinding Binding { get; }

        /// <summary>Runs driverctl for -Persistent on the live host (the command's runner: each command line on the verbose stream).</summary>
        public ProcessRunner Runner { get; set; } = new ProcessRunner();

        /// <summary>The bound of the initramfs tool's run for -Persistent (<c>$GpuVirtRegenerationTimeout</c>; 30 minutes when null).</summary>
        public TimeSpan? RegenerationTimeout { get; set; }

        private PersistentDriverOverrides Overrides() => new PersistentDriverOverrides(Root) { Runner = Runner, RegenerationTimeout = RegenerationTimeout };

        private HostRoot Root => _host.Root;

        private Lazy<GuestReferences?>? _guests;

        /// <summary>Which guests reference which devices, read once when libvirt is the host's to ask; null otherwise.</summary>
        private GuestReferences? Guests => (_guests ??= GuestReferences.OnFirstUse(_host, _virsh, _log)).Value;

        /// <summary>
        /// The functions one address asks for: the function, and with <paramref name="includeCompanion"/> the other
        /// endpoints of its slot or IOMMU group (<see cref="AssignmentCompanions"/>, the same rule as Add-GpuHostdev and
        /// Enable-IommuBoot -IncludeCompanion).
        /// </summary>
        public IReadOnlyList<PciAddress> Functions(PciAddress address, bool includeCompanion)
        {
            var functions = new List<PciAddress> { address };
            if (!includeCompanion) return functions;
            var inventory = new PciInventory(Root);
            if (inventory.Find(address) is PciDevice device)
            {
                functions.AddRange(AssignmentCompanions.Of(inventory, device).Select(c => c.PciAddress));
            }
            return functions;
        }

        /// <summary>
        /// A warning for each IOMMU group of <paramref name="detached"/> that cannot be given to a guest with them off
        /// their host drivers, naming the members that keep it: a member the running host needs, or one libvirt may not
        /// manage (an NVIDIA SR-IOV vGPU function). A member still on its host driver that a guest can be given with
        /// managed='yes' (the GPU of procedure 16.16, whose audio function was detached first) does not keep the group:
        /// libvirt detaches it when the guest starts. The verbose stream says so, and Add-GpuHostdev warns if it is
        /// given neither.
        /// </summary>
        public IReadOnlyList<string> GroupsLeftNotViable(IReadOnlyCollection<PciAddress> detached)
        {
            var inventory = new PciInventory(Root);
            var warnings = new List<string>();
            var numbers = detached.Select(a => inventory.Find(a)?.IommuGroup).Where(g => g.HasValue).Select(g => g!.Value).Distinct();
            foreach (var number in numbers)
            {
                var group = IommuGroups.TryRead(inventory, number);
                if (group is null) continue;
                var left = group.BlockerList.Where(b => !detached.Contains(b.Address)).ToList();
                if (left.Count == 0) continue;
                var keeps = left.Where(b => !AssignmentCompanions.MayManage(inventory, b.Address) || inventory.HostCritical.For(b.Address).Any()).ToList();
                var managed = left.Except(keeps).ToList();
                if (managed.Count > 0)
                {
                    _log?.Invoke($"IOMMU group {number}: {string.Join(", ", managed.Select(b => $"{b.Address} (driver {b.Driver})"))} still on a host driver. " +
                        "Give it to the same guest (Add-GpuHostdev attaches it managed='yes', and libvirt detaches it when the guest starts), or detach it too (-IncludeCompanion).");
                }
                if (keeps.Count == 0) continue;
                var names = string.Join(", ", keeps.Select(b => $"{b.Address} (driver {b.Driver})"));
                warnings.Add($"IOMMU group {number} is not viable yet: {names} still on host drivers. Every endpoint of the group must " +
                    "leave its host driver before any of them is given to a guest: detach them too (-IncludeCompanion), or the guest will not start.");
            }
            return warnings;
        }

        /// <summary>
        /// Plans binding the function to <paramref name="driver"/>; the result is the function as it is afterwards.
        /// Bridges, ports and host bridges (class 06xx) are refused (<see cref="ErrorIds.HostdevNotAssignable"/>): they
        /// stay with the host. <paramref name="force"/> lifts the overridable refusals (a function the host needs).
        /// </summary>
        /// <param name="persistent">Also keep the binding at boot for this address (<see cref="PersistentDriverOverrides"/>).</param>
        public ChangePlan<PciDevice?> PlanDetach(PciAddress address, string driver, HostDriverMethod method, bool force = false, bool persistent = false)
        {
            HostDriverBinding.CheckDriverName(driver);
            if (new PciInventory(Root).Find(address) is PciDevice device && device.BaseClass == 0x06)
            {
                throw new GpuVirtException(ErrorIds.HostdevNotAssignable, ErrorKind.InvalidArgument,
                    $"{address} is a {device.ClassName ?? "bridge"} (class {device.ClassId}): bridges, ports and host bridges stay with the host; " +
                    "only endpoints are detached for a guest. Nothing was changed.", address.ToString());
            }
            // A Dismount-GpuHostDriver killed between unbind and drivers_probe left the function with no driver (or half
            // moved): the driver it really had is the one its intent names. The move is taken back first (sysfs), then
            // made again, and journaled and persisted from that driver, not from "no driver".
            var current = Binding.CurrentDriver(address);
            var interrupted = Binding.Pending(address) is DriverIntent p && p.Operation == "Detach" ? p : null;
            var before = interrupted != null ? interrupted.Driver : current;
            var backend = HostDriverBinding.VirshBackend(driver);
            var overrides = persistent ? Overrides() : null;
            var driverctl = before == driver || interrupted != null ? null : overrides?.Driverctl;
            var resolved = before == driver || driverctl != null || interrupted != null ? HostDriverMethod.Sysfs : Resolve(method, virshCanDoIt: backend != null);
            string action;
            PlanStep step;
            if (driverctl != null)
            {
                var args = PersistentDriverOverrides.Arguments(address, driver);
                action = $"{PersistentDriverOverrides.Program} {string.Join(" ", args)} (unbinds it, binds {driver} and writes {PersistentDriverOverrides.PathOf(address)})";
                step = new PlanStep("run " + action,
                    c =>
                    {
                        Runner.Run(driverctl, args, c.CancellationToken);
                        var now = Binding.CurrentDriver(address);
                        if (now != driver)
                        {
                            throw new GpuVirtException(ErrorIds.HostDriverNotBound, ErrorKind.InvalidOperation,
                                $"driverctl set-override reported success, but {address} is bound to {(now is null ? "no driver" : "'" + now + "'")}, not '{driver}'.", address);
                        }
                    },
                    c => Runner.Run(driverctl, PersistentDriverOverrides.Arguments(address, null), c.CancellationToken),
                    $"run {PersistentDriverOverrides.Program} unset-override {address}");
            }
            else if (resolved == HostDriverMethod.Virsh)
            {
                if (backend is null)
                {
                    throw new GpuVirtException(ErrorIds.HostDriverMethodNotSupported, ErrorKind.InvalidArgument,
                        $"virsh nodedev-detach binds to vfio only; use -Method Sysfs for {driver}.", driver);
                }
                var virsh = _virsh();
                action = virsh.CommandLine(VirshCommand.NodeDeviceDetach(address.NodeDeviceName, backend));
                step = new PlanStep(action,
                    _ =>
                    {
                        virsh.NodeDeviceDetach(address, backend);
                        var now = Binding.CurrentDriver(address);
                        if (now != driver)
                        {
                            throw new GpuVirtException(ErrorIds.HostDriverNotBound, ErrorKind.InvalidOperation,
                                $"virsh nodedev-detach reported success, but {address} is bound to {(now is null ? "no driver" : "'" + now + "'")}, not '{driver}'.", address);
                        }
                    },
                    _ => virsh.NodeDeviceReattach(address),
                    virsh.CommandLine(VirshCommand.NodeDeviceReattach(address.NodeDeviceName)));
            }
            else
            {
                var dir = Path.Combine(HostPaths.PciDevices, address.ToString());
                action = $"write '{driver}' to {dir}/driver_override" +
                    (before is null ? string.Empty : $", '{address}' to {dir}/driver/unbind") +
                    $", '{address}' to {HostPaths.PciDriversProbe}";
                step = new PlanStep(action, _ => Binding.Detach(address, driver), _ => Binding.Reattach(address),
                    $"clear {dir}/driver_override, write '{address}' to {dir}/driver/unbind and to {HostPaths.PciDriversProbe}");
            }

            var plan = new ChangePlan<PciDevice?>(ChangeKind.HostDriverDetach, _host, $"{address} (driver: {before ?? "none"})",
                $"Detach from the host driver and bind to {driver}: {action}", () => Reread(address)) { Force = force };
            plan.Devices.Add(address);
            var files = new List<FileState>();
            var regenerate = new List<HostCommand>();
            if (before == driver)
            {
                plan.NothingToDo = $"{address} is already bound to {driver}.";
                if (overrides is null) return plan;
                // Bound already: only the boot-time record can be missing, and writing it needs no rebind.
                var keep = new ChangePlan<PciDevice?>(ChangeKind.HostDriverDetach, _host, plan.Target,
                    $"Keep the binding to {driver} at boot", () => Reread(address)) { Force = force };
                keep.Devices.Add(address);
                overrides.PlanPersist(keep, address, driver, null, viaDriverctl: false, files, regenerate);
                if (!keep.HasChanges) return plan;
                keep.Journal = () => Persisted(address, driver, files, regenerate, null);
                return keep;
            }
            plan.Steps.Add(step);
            overrides?.PlanPersist(plan, address, driver, before, viaDriverctl: driverctl != null, files, regenerate);
            if (interrupted != null)
            {
                plan.Warnings.Add($"An interrupted driver change left {address} bound to {current ?? "no driver"}; its driver was {before ?? "none"}: it is given back to it first, then detached.");
            }
            plan.Preconditions.Add(DriverStill(address, current));
            plan.Journal = () => Persisted(address, driver, files, regenerate, HostDriverBinding.Journaled(address, before, Binding.CurrentDriver(address), resolved, detach: true));
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>
        /// The journal record of a change with boot-time records: the binding's own record (when the binding changed)
        /// and the files put back as they were, then the initramfs built again when the change built it.
        /// </summary>
        private static ChangeRecord Persisted(PciAddress address, string? driver, List<FileState> files, List<HostCommand> regenerate, ChangeRecord? binding)
        {
            var record = binding ?? new ChangeRecord
            {
                Target = address.ToString(),
                Action = driver is null ? "Drop the binding at boot" : $"Keep the binding to {driver} at boot",
            };
            if (files.Count == 0) return record;
            foreach (var f in files) record.Details.Add(new ChangeDetail(f.Path, f.Content is null ? null : "as it was", f.Expected is null ? null : "written"));
            record.Inverse.Add(new InverseStep
            {
                Kind = InverseKind.RestoreFiles,
                Description = "put back " + string.Join(", ", files.Select(f => f.Path)) + " as they were" +
                    (regenerate.Count == 0 ? string.Empty : ", then run " + string.Join(", ", regenerate.Select(c => c.ToString()))),
                Files = files,
                Commands = regenerate.Count == 0 ? null : regenerate.Select(c => new List<string> { c.Program }.Concat(c.Arguments).ToList()).ToList(),
            });
            if (regenerate.Count > 0) record.RebootRequired = true;
            return record;
        }

        /// <summary>Plans giving the function back to its host driver; the result is the function as it is afterwards.</summary>
        /// <param name="persistent">Also drop the boot-time binding of this address (<see cref="PersistentDriverOverrides"/>).</param>
        public ChangePlan<PciDevice?> PlanReattach(PciAddress address, HostDriverMethod method, bool force = false, bool persistent = false)
        {
            var before = Binding.CurrentDriver(address);
            var redirected = Binding.IsRedirected(address);
            var overrides = persistent ? Overrides() : null;
            var driverctl = redirected && overrides?.Read(address) != null ? overrides!.Driverctl : null;
            var resolved = redirected && driverctl is null ? Resolve(method) : HostDriverMethod.Sysfs;
            string action;
            PlanStep step;
            string? after = null;
            if (driverctl != null)
            {
                var args = PersistentDriverOverrides.Arguments(address, null);
                action = $"{PersistentDriverOverrides.Program} {string.Join(" ", args)} (clears driver_override, reprobes and removes {PersistentDriverOverrides.PathOf(address)})";
                step = new PlanStep("run " + action, c =>
                {
                    Runner.Run(driverctl, args, c.CancellationToken);
                    after = Binding.CurrentDriver(address);
                    NoHostDriver(c.Plan, address, after);
                });
            }
            else if (resolved == HostDriverMethod.Virsh)
            {
                var virsh = _virsh();
                action = virsh.CommandLine(VirshCommand.NodeDeviceReattach(address.NodeDeviceName));
                step = new PlanStep(action, c =>
                {
                    virsh.NodeDeviceReattach(address);
                    after = Binding.CurrentDriver(address);
                    NoHostDriver(c.Plan, address, after);
                });
            }
            else
            {
                var dir = Path.Combine(HostPaths.PciDevices, address.ToString());
                var redirect = Binding.Override(address);
                action = (redirect is null ? string.Empty : $"clear {dir}/driver_override, ") +
                    (before is null ? string.Empty : $"write '{address}' to {dir}/driver/unbind, ") +
                    $"write '{address}' to {HostPaths.PciDriversProbe}";
                step = new PlanStep(action, c =>
                {
                    after = Binding.Reattach(address).DriverAfter;
                    NoHostDriver(c.Plan, address, after);
                });
            }

            var plan = new ChangePlan<PciDevice?>(ChangeKind.HostDriverReattach, _host, $"{address} (driver: {before ?? "none"})",
                $"Give back to the host driver: {action}", () => Reread(address)) { Force = force };
            plan.Devices.Add(address);
            var files = new List<FileState>();
            var regenerate = new List<HostCommand>();
            if (!redirected)
            {
                plan.NothingToDo = $"{address} is already bound to the host driver {before}.";
                if (overrides is null) return plan;
                var drop = new ChangePlan<PciDevice?>(ChangeKind.HostDriverReattach, _host, plan.Target,
                    "Drop the binding at boot", () => Reread(address)) { Force = force };
                drop.Devices.Add(address);
                overrides.PlanUnpersist(drop, address, viaDriverctl: false, files, regenerate);
                if (!drop.HasChanges) return plan;
                drop.Journal = () => Persisted(address, null, files, regenerate, null);
                return drop;
            }
            plan.Steps.Add(step);
            overrides?.PlanUnpersist(plan, address, viaDriverctl: driverctl != null, files, regenerate);
            if (Guests is GuestReferences guests)
            {
                GuestReferences.Check(guests.Of(address), address.ToString(), address.ToString(), "Giving it back to the host driver").AddTo(plan);
            }
            plan.Preconditions.Add(DriverStill(address, before));
            plan.Journal = () => Persisted(address, null, files, regenerate, HostDriverBinding.Journaled(address, before, after, resolved, detach: false));
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        private static void NoHostDriver(ChangePlan plan, PciAddress address, string? after)
        {
            if (after != null) return;
            plan.AppliedWarnings.Add($"{address} is free of its passthrough driver, but no host driver took it (is the host driver loaded or blacklisted?).");
        }

        private PlanPrecondition DriverStill(PciAddress address, string? before) =>
            new PlanPrecondition($"{address} is bound to {before ?? "no driver"}", () =>
            {
                var now = Binding.CurrentDriver(address);
                return now == before ? null : $"{address} is now bound to {now ?? "no driver"}, not {before ?? "no driver"}";
            });

        /// <summary>The function as it is now (a fresh read of sysfs).</summary>
        private PciDevice? Reread(PciAddress address) => new PciInventory(Root).Find(address);

        /// <summary>
        /// Auto is virsh on the live host when virsh is installed, libvirt answers and virsh can do the change (it binds
        /// to vfio only), sysfs otherwise. virsh acts on the live host only, so another root needs sysfs.
        /// </summary>
        public HostDriverMethod Resolve(HostDriverMethod method, bool virshCanDoIt = true)
        {
            if (_resolved.HasValue) return _resolved.Value;
            if (method == HostDriverMethod.Virsh && !Root.IsLive)
            {
                throw new GpuVirtException(ErrorIds.HostDriverMethodNotSupported, ErrorKind.InvalidArgument,
                    $"-Method Virsh acts on the live host only; for the root '{Root.Directory}' use -Method Sysfs.", method);
            }
            if (method != HostDriverMethod.Auto)
            {
                _resolved = method;
                return method;
            }
            if (!virshCanDoIt)
            {
                _log?.Invoke("virsh binds to vfio only: using sysfs.");
                return HostDriverMethod.Sysfs;
            }
            if (!Root.IsLive || ProgramLocator.Find(Virsh.Program) is null)
            {
                _log?.Invoke(Root.IsLive ? "virsh is not installed: using sysfs." : "A host root other than / is given: using sysfs.");
                _resolved = HostDriverMethod.Sysfs;
                return _resolved.Value;
            }
            try
            {
                _virsh().ListDomains();
                _resolved = HostDriverMethod.Virsh;
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.LibvirtConnectFailed)
            {
                _log?.Invoke("libvirt does not answer (" + e.Message + "): using sysfs.");
                _resolved = HostDriverMethod.Sysfs;
            }
            return _resolved.Value;
        }
    }
}
