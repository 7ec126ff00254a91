using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Lists the PCI and mdev hostdevs of guests from <c>virsh dumpxml</c>, with the PCI address each has in the guest,
    /// whether the host still has the device each points at, and what is there now against what was attached.
    /// The hostdevs carry the host given by <c>-Root</c>, the host whose devices the guests are given, so that the next
    /// command in a pipeline reads and journals there.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "GpuHostdev")]
    [OutputType(typeof(Hostdev))]
    public sealed class GetGpuHostdevCommand : HostVirshCmdlet
    {
        private IReadOnlyList<Guest>? _guests;
        private Virsh? _guestsOf;

        /// <summary>Guest names (wildcards allowed); every guest when none is given.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Domain { get; set; }

        /// <summary>Reads the persistent definition (<c>dumpxml --inactive</c>) instead of the running guest's.</summary>
        [Parameter]
        public SwitchParameter Inactive { get; set; }

        protected override void ProcessRecord()
        {
            try
            {
                // Listed once per connection (each piped object may name another).
                if (_guests is null || !ReferenceEquals(_guestsOf, Virsh))
                {
                    _guestsOf = Virsh;
                    _guests = Virsh.ListGuests();
                }
                var selected = Select(_guests);
                if (selected.Count == 0) return;
                // Each guest is read by its UUID: a name with spaces, or one that looks like another guest's UUID, reads its own.
                var definitions = Virsh.ReadDefinitions(selected.Select(g => (g.Key, Inactive.IsPresent)));
                var hostdevs = definitions.SelectMany(d => d.Hostdevs).Select(h => h.On(HostSystem)).ToList();
                // What each points at on the host now, and what was attached there (the journal of the same host).
                if (hostdevs.Count > 0) HostdevPresence.Fill(hostdevs, Inventory, HostdevPresence.TryReadJournal(HostSystem, WriteWarning));
                foreach (var hostdev in hostdevs) WriteObject(hostdev);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        private List<Guest> Select(IReadOnlyList<Guest> guests)
        {
            if (Domain is null || Domain.Length == 0) return guests.ToList();
            var selected = new List<Guest>();
            foreach (var text in Domain)
            {
                if (WildcardPattern.ContainsWildcardCharacters(text))
                {
                    var pattern = Wildcard(text, nameof(Domain));
                    selected.AddRange(guests.Where(g => pattern.IsMatch(g.Name)));
                    continue;
                }
                try
                {
                    selected.Add(Virsh.ResolveGuest(text, guests));
                }
                catch (GpuVirtException e) when (e.ErrorId == ErrorIds.DomainNotFound || e.ErrorId == ErrorIds.InvalidDomainName)
                {
                    WriteError(e);
                }
            }
            return selected.GroupBy(g => g.Uuid).Select(g => g.First()).ToList();
        }
    }
}
