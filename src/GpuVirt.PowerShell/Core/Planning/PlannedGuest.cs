using System;
using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// A guest's definitions as the checks of its hostdev plans read them: the ones read when planning, and, while the
    /// host lock is held (the executor's checks before applying), the ones read again then, once for all the guest's
    /// plans of one command. Persistent definition first, then the running one.
    /// </summary>
    internal sealed class GuestDefinitions
    {
        private readonly HostRoot _root;
        private readonly IReadOnlyList<DomainDefinition> _planned;
        private readonly Func<IReadOnlyList<DomainDefinition>> _read;
        private IReadOnlyList<DomainDefinition>? _locked;

        /// <param name="read">Reads the guest's definitions again (persistent first); a guest that vanished gives none.</param>
        public GuestDefinitions(string domain, HostRoot root, IReadOnlyList<DomainDefinition> planned, Func<IReadOnlyList<DomainDefinition>> read)
        {
            Domain = domain;
            _root = root;
            _planned = planned;
            _read = read ?? throw new ArgumentNullException(nameof(read));
        }

        public string Domain { get; }

        /// <summary>The definitions: as planned, or as read again under the host lock.</summary>
        public IReadOnlyList<DomainDefinition> Current => HostLock.IsHeld(_root) ? (_locked ??= _read()) : _planned;

        /// <summary>The persistent definition (the one a guest starts from); null when the guest is gone.</summary>
        public DomainDefinition? Persistent => Current.FirstOrDefault();

        /// <summary>The guest's hostdevs in either definition, once per source.</summary>
        public IReadOnlyList<Hostdev> Hostdevs
        {
            get
            {
                var seen = new HashSet<HostdevSource>();
                return Current.SelectMany(d => d.Hostdevs).Where(h => seen.Add(h.SourceDevice)).ToList();
            }
        }
    }

    /// <summary>
    /// The guest a hostdev attach plan changes, for plan checks: its definitions, the device the plan attaches, and the
    /// other devices the same command attaches to the guest, in the plans before and after this one (the plans of one
    /// guest are applied together).
    /// </summary>
    internal sealed class PlannedGuest
    {
        public PlannedGuest(GuestDefinitions definitions, HostdevSource adding, IReadOnlyList<HostdevSource> attachedBefore,
            IReadOnlyList<HostdevSource> attachedAfter, PciInventory inventory)
        {
            Definitions = definitions;
            Adding = adding;
            AttachedBefore = attachedBefore;
            AttachedAfter = attachedAfter;
            Inventory = inventory;
        }

        public string Domain => Definitions.Domain;

        public GuestDefinitions Definitions { get; }

        /// <summary>The device this plan attaches.</summary>
        public HostdevSource Adding { get; }

        /// <summary>The devices the plans before this one attach to the same guest in the same command.</summary>
        public IReadOnlyList<HostdevSource> AttachedBefore { get; }

        /// <summary>The devices the plans after this one attach to the same guest in the same command.</summary>
        public IReadOnlyList<HostdevSource> AttachedAfter { get; }

        /// <summary>The host's PCI functions (their BARs), as the planner read them.</summary>
        public PciInventory Inventory { get; }
    }
}
