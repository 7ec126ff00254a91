using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Planning
{
    /// <summary>How Add-GpuHostdev attaches.</summary>
    internal sealed class HostdevAttachOptions
    {
        /// <summary>managed='no' on PCI hostdevs.</summary>
        public bool Unmanaged { get; set; }

        /// <summary>display='on' on mdev hostdevs.</summary>
        public bool Display { get; set; }

        /// <summary>Also attach the other endpoints of each function's slot or IOMMU group.</summary>
        public bool IncludeCompanion { get; set; }

        public DeviceChangeScope Scope { get; set; }

        /// <summary>Attach even when another guest's definition holds the device.</summary>
        public bool Force { get; set; }
    }

    /// <summary>
    /// Plans attaching hostdevs to guests (<c>virsh attach-device</c>, procedure 16.16 and 16.7.2.1) and detaching them:
    /// one plan per device, so that each is confirmed on its own, and the plans of one guest applied in one virsh
    /// process (<see cref="HostdevBatch"/>).
    /// </summary>
    internal sealed class HostdevPlanner
    {
        private readonly ChangeHost _host;
        private readonly Virsh _virsh;
        private readonly Func<PciInventory>? _inventory;
        private readonly IEnumerable<IPlanCheck> _checks;
        private HostdevOwnership? _ownership;
        private IReadOnlyList<Guest>? _guests;

        /// <param name="inventory">The host's PCI functions (Add-GpuHostdev checks and finds companions); null to detach only.</param>
        public HostdevPlanner(ChangeHost host, Virsh virsh, Func<PciInventory>? inventory = null, IEnumerable<IPlanCheck>? checks = null)
        {
            _host = host;
            _virsh = virsh;
            _inventory = inventory;
            _checks = checks ?? PlanChecks.All;
        }

        /// <summary>Which guest holds which device: read once, on first use (two virsh processes).</summary>
        public HostdevOwnership Ownership => _ownership ??= HostdevOwnership.Read(_virsh);

        private PciInventory Inventory => (_inventory ?? throw new InvalidOperationException("The planner was made without the host's inventory."))();

        /// <summary>
        /// Checks one device asked for and returns what to attach for it: the device, and with -IncludeCompanion the
        /// other endpoints of its slot or IOMMU group. Warnings go to <paramref name="warnings"/>; bad input throws.
        /// </summary>
        public IReadOnlyList<HostdevRequest> Ask(string domain, HostdevSource source, HostdevAttachOptions options, ICollection<string> warnings)
        {
            if (source.Kind == HostdevKind.Mdev)
            {
                var path = Path.Combine(_host.Root.Resolve(HostPaths.MdevDevices), source.ToString());
                if (!Directory.Exists(path))
                {
                    warnings.Add($"The mediated device {source} does not exist on this host ('{HostPaths.MdevDevices}/{source}'): the guest will not start until it is created (New-VgpuDevice).");
                }
                return new[] { new HostdevRequest(domain, source, managed: false, display: options.Display) };
            }

            var address = source.Address!.Value;
            if (options.Display)
            {
                throw new GpuVirtException(ErrorIds.HostdevDisplayNotSupported, ErrorKind.InvalidArgument,
                    $"-Display applies to mediated devices (vGPUs) only; {address} is a whole PCI function.", address.ToString());
            }
            var device = Inventory.Find(address) ?? throw PciInventory.NotFound(address, address.ToString());
            if (device.IsBridge)
            {
                throw new GpuVirtException(ErrorIds.HostdevNotAssignable, ErrorKind.InvalidArgument,
                    $"{address} is a PCI bridge or port; only endpoints can be given to a guest.", address.ToString());
            }
            var requests = new List<HostdevRequest> { new HostdevRequest(domain, source, managed: !options.Unmanaged && AssignmentCompanions.MayManage(Inventory, address)) { Ids = device.Ids } };
            if (options.IncludeCompanion)
            {
                foreach (var companion in AssignmentCompanions.Of(Inventory, device))
                {
                    requests.Add(new HostdevRequest(domain, HostdevSource.Pci(companion.PciAddress), managed: !options.Unmanaged) { CompanionOf = address, Ids = companion.Ids });
                }
            }
            return requests;
        }

        /// <summary>
        /// Plans attaching the devices to one guest: one plan per distinct device, its result the hostdev as the guest's
        /// definition holds it afterwards. A guest that does not exist throws (saying that nothing was attached).
        /// </summary>
        public IReadOnlyList<ChangePlan<Hostdev>> PlanAttach(string domain, IReadOnlyList<HostdevRequest> requests, HostdevAttachOptions options)
        {
            var ownership = Ownership;
            var guest = ResolveGuest(domain, requests, ownership.Guests, "attached");
            var name = guest.Name;
            var distinct = Distinct(requests);
            var batch = new HostdevBatch(_virsh, guest, options.Scope, attach: true);
            var commandLine = _virsh.CommandLine(VirshCommand.AttachDevice(guest.Key, "<temporary file>", options.Scope));
            var plans = new List<ChangePlan<Hostdev>>();
            // Read again under the host lock, once for all of this guest's plans: a guest that took the device since
            // the plan was made (another Add-GpuHostdev that ran first) refuses it.
            var now = new Lazy<HostdevOwnership>(() => HostdevOwnership.Read(_virsh));
            var definitions = new GuestDefinitions(name, _host.Root, ownership.DefinitionsOf(name),
                () => _virsh.ReadDefinitions(new[] { (guest.Key, true), (guest.Key, false) }));
            var sources = distinct.Select(r => r.Source).ToList();
            foreach (var request in distinct)
            {
                var step = new HostdevStep(request, commandLine + Environment.NewLine + request.Xml.TrimEnd(), batch,
                    c => _virsh.ChangeDevices(guest.Key, new[] { request.Xml }, options.Scope, attach: false, readBack: false))
                {
                    Inverse = request.Journaled(name, options.Scope, attach: true, null).Inverse[0],
                };
                var plan = new ChangePlan<Hostdev>(ChangeKind.HostdevAttach, _host, $"guest '{name}'", $"Attach {request.Describe()}",
                    () => batch.After?.Hostdevs.FirstOrDefault(h => h.SourceDevice == request.Source) ?? DomainXml.ParseHostdev(name, request.Xml))
                {
                    Summary = $"Attach {request.Describe()} to guest '{name}':",
                    Domain = name,
                    Force = options.Force,
                    Guest = new PlannedGuest(definitions, request.Source, sources.Take(plans.Count).ToList(), sources.Skip(plans.Count + 1).ToList(), Inventory),
                };
                Subject(plan, request.Source);
                plan.Steps.Add(step);
                plan.Journal = () => request.Journaled(name, options.Scope, attach: true, plan.Result().Xml);
                // Applied under the guest's own lock and the connection's assignment lock, wherever -Root points.
                plan.GuestLocks.Add(GuestLockKey.Definition(_virsh, guest));
                plan.GuestLocks.Add(GuestLockKey.Assignments(_virsh));
                var inUse = ownership.InUse(request.Source, name);
                if (inUse != null) plan.Refusals.Add(inUse);
                var split = IommuGroupSplits.Refusal(ownership, Inventory, request.Source, name);
                if (split != null) plan.Refusals.Add(split);
                if (!options.Force)
                {
                    plan.Preconditions.Add(PlanPrecondition.Rule($"no other guest holds {request.Source}",
                        () => now.Value.InUse(request.Source, name)?.Error));
                    // The whole group, read again under the lock: another command may have given its other function to another guest.
                    plan.Preconditions.Add(PlanPrecondition.Rule($"no other guest holds a function of the IOMMU group of {request.Source}",
                        () => IommuGroupSplits.Refusal(now.Value, Inventory, request.Source, name)?.Error));
                }
                if (request.CompanionOf is null) WarnAboutCompanions(plan, request, distinct, ownership);
                PlanChecks.Run(plan, _checks);
                plans.Add(plan);
            }
            return plans;
        }

        /// <summary>Plans detaching the devices from one guest: one plan per distinct device.</summary>
        public IReadOnlyList<ChangePlan<Hostdev?>> PlanDetach(string domain, IReadOnlyList<HostdevRequest> requests, DeviceChangeScope scope)
        {
            var guest = ResolveGuest(domain, requests, _guests ??= _ownership?.Guests ?? _virsh.ListGuests(), "detached");
            domain = guest.Name;
            var distinct = AsInterfaces(guest, Distinct(requests));
            var batch = new HostdevBatch(_virsh, guest, scope, attach: false);
            var commandLine = _virsh.CommandLine(VirshCommand.DetachDevice(guest.Key, "<temporary file>", scope));
            var plans = new List<ChangePlan<Hostdev?>>();
            foreach (var request in distinct)
            {
                var step = new HostdevStep(request, commandLine + Environment.NewLine + request.Xml.TrimEnd(), batch,
                    c => _virsh.ChangeDevices(guest.Key, new[] { request.Xml }, scope, attach: true, readBack: false))
                {
                    Inverse = request.Journaled(domain, scope, attach: false, null).Inverse[0],
                };
                // The result (Remove-GpuHostdev -PassThru): the hostdev as the guest's definition had it.
                var plan = new ChangePlan<Hostdev?>(ChangeKind.HostdevDetach, _host, $"guest '{domain}'", $"Detach {request.Describe()}",
                    () => batch.Before?.Hostdevs.FirstOrDefault(h => h.SourceDevice == request.Source) ?? DomainXml.ParseHostdev(domain, request.Xml))
                {
                    Summary = $"Detach {request.Describe()} from guest '{domain}':",
                    Domain = domain,
                };
                Subject(plan, request.Source);
                plan.Steps.Add(step);
                // The hostdev as the definition had it, so that the journal can attach it back exactly.
                plan.Journal = () => request.Journaled(domain, scope, attach: false, batch.Before?.Hostdevs.FirstOrDefault(h => h.SourceDevice == request.Source)?.Xml);
                plan.GuestLocks.Add(GuestLockKey.Definition(_virsh, guest));
                PlanChecks.Run(plan, _checks);
                plans.Add(plan);
            }
            return plans;
        }

        /// <summary>
        /// The requests for functions the guest holds through <c>&lt;interface type='hostdev'&gt;</c> detach that
        /// element: libvirt answers a <c>&lt;hostdev&gt;</c> of the same source with success and leaves the interface in.
        /// </summary>
        private List<HostdevRequest> AsInterfaces(Guest guest, List<HostdevRequest> requests)
        {
            if (!requests.Any(r => r.Source.Kind == HostdevKind.Pci)) return requests;
            var reads = new List<(string, bool)> { (guest.Key, true) };
            if (guest.Active) reads.Add((guest.Key, false));
            var interfaces = _virsh.ReadDefinitions(reads).SelectMany(d => d.Hostdevs).Where(h => h.Interface).ToList();
            if (interfaces.Count == 0) return requests;
            return requests.Select(r => interfaces.FirstOrDefault(h => h.SourceDevice == r.Source) is Hostdev held
                ? new HostdevRequest(r.Domain, r.Source, held.Managed, xml: held.Xml) { CompanionOf = r.CompanionOf }
                : r).ToList();
        }

        private static void Subject(ChangePlan plan, HostdevSource source)
        {
            if (source.Kind == HostdevKind.Pci) plan.Devices.Add(source.Address!.Value);
            else plan.Mdevs.Add(source.ToString());
        }

        /// <summary>The guest meant (by name, else UUID, else id), named to virsh by its UUID from here on.</summary>
        private Guest ResolveGuest(string domain, IReadOnlyList<HostdevRequest> requests, IReadOnlyList<Guest> guests, string verb)
        {
            try
            {
                return _virsh.ResolveGuest(domain, guests);
            }
            catch (GpuVirtException e)
            {
                var devices = string.Join(", ", requests.Select(r => r.Source.ToString()));
                throw new GpuVirtException(e.ErrorId, e.Kind, $"{e.Message} Nothing was {verb} ({devices}).", domain, e);
            }
        }

        private static List<HostdevRequest> Distinct(IEnumerable<HostdevRequest> requests)
        {
            var seen = new HashSet<HostdevSource>();
            return requests.Where(r => seen.Add(r.Source)).ToList();
        }

        /// <summary>Warns when a function's slot or IOMMU group holds endpoints that are not attached with it.</summary>
        /// <remarks>
        /// Only the companions that would keep the group from being given: one that left its host driver already
        /// (Dismount-GpuHostDriver) is where it must be, and one a guest's definition holds is that guest's (this
        /// guest's with managed='yes' is detached by libvirt when it starts; another guest's is refused as a split group).
        /// </remarks>
        private void WarnAboutCompanions(ChangePlan plan, HostdevRequest request, IReadOnlyList<HostdevRequest> all, HostdevOwnership ownership)
        {
            if (request.Source.Kind != HostdevKind.Pci) return;
            var asked = new HashSet<HostdevSource>(all.Select(r => r.Source));
            var device = Inventory.Find(request.Source.Address!.Value);
            if (device is null) return;
            var left = AssignmentCompanions.Of(Inventory, device)
                .Where(c => !asked.Contains(HostdevSource.Pci(c.PciAddress))
                    && !PciInventory.IsPassthroughDriver(c.Driver)
                    && ownership.OwnersOf(c.PciAddress).Count == 0)
                .ToList();
            if (left.Count == 0) return;
            var names = string.Join(", ", left.Select(c => $"{c.Address} ({c.ClassName ?? c.ClassId}, driver {c.Driver ?? "none"})"));
            var group = device.IommuGroup.HasValue ? $" or IOMMU group {device.IommuGroup}" : string.Empty;
            plan.Warnings.Add($"{device.Address} shares its slot{group} with {names}. Every endpoint of the group must leave its host driver: " +
                "detach it with Dismount-GpuHostDriver, or attach it too with -IncludeCompanion.");
        }
    }

    /// <summary>The step of one hostdev attach or detach; the steps of one guest run in one virsh process.</summary>
    internal sealed class HostdevStep : PlanStep
    {
        public HostdevStep(HostdevRequest request, string description, HostdevBatch batch, Action<PlanContext> undo)
            : base(description, batch, undo)
        {
            Request = request;
        }

        public HostdevRequest Request { get; }
    }

    /// <summary>Attaches (or detaches) the hostdevs of one guest in one virsh process; each device succeeds or fails on its own.</summary>
    internal sealed class HostdevBatch : IStepBatch
    {
        private readonly Virsh _virsh;
        private readonly Guest _guest;
        private readonly string _domain;
        private readonly DeviceChangeScope _scope;
        private readonly bool _attach;

        public HostdevBatch(Virsh virsh, Guest guest, DeviceChangeScope scope, bool attach)
        {
            _virsh = virsh;
            _guest = guest;
            _domain = guest.Name;
            _scope = scope;
            _attach = attach;
        }

        /// <summary>The guest's definition read back after an attach.</summary>
        public DomainDefinition? After { get; private set; }

        /// <summary>The guest's definition as it was before a detach (read by the same virsh process).</summary>
        public DomainDefinition? Before { get; private set; }

        public IReadOnlyList<GpuVirtException?> Apply(IReadOnlyList<PlanStep> steps, PlanContext context)
        {
            var requests = steps.Cast<HostdevStep>().Select(s => s.Request).ToList();
            var (outcomes, after) = _attach
                ? _virsh.ChangeDevices(_guest.Key, requests.Select(r => r.Xml).ToList(), _scope, attach: true, readBack: true)
                : _virsh.ChangeDevices(_guest.Key, requests.Select(r => r.Xml).ToList(), _scope, attach: false, readBack: false, readBefore: d => Before = d);
            After = after;
            var errors = new GpuVirtException?[requests.Count];
            foreach (var outcome in outcomes.Where(o => o.Error != null))
            {
                var request = requests[outcome.Index];
                var e = outcome.Error!;
                errors[outcome.Index] = new GpuVirtException(e.ErrorId, e.Kind,
                    _attach
                        ? $"Cannot attach {request.Describe()} to guest '{_domain}'. {e.Message}"
                        : $"Cannot detach {request.Describe()} from guest '{_domain}'. {e.Message}",
                    request.Source.ToString(), e);
            }
            return errors;
        }
    }
}
