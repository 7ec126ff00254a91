using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Lists the PCI and mdev hostdevs of guests from <c>virsh dumpxml</c>, with the PCI address each has in the guest.</summary>
    [Cmdlet(VerbsCommon.Get, "GpuHostdev")]
    [OutputType(typeof(Hostdev))]
    public sealed class GetGpuHostdevCommand : VirshCmdlet
    {
        private IReadOnlyList<string>? _names;

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
                _names ??= Virsh.ListDomains();
                var selected = Select(_names);
                if (selected.Count == 0) return;
                foreach (var definition in Virsh.ReadDefinitions(selected.Select(d => (d, Inactive.IsPresent))))
                {
                    foreach (var hostdev in definition.Hostdevs) WriteObject(hostdev);
                }
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        private List<string> Select(IReadOnlyList<string> names)
        {
            if (Domain is null || Domain.Length == 0) return names.ToList();
            var selected = new List<string>();
            foreach (var text in Domain)
            {
                if (WildcardPattern.ContainsWildcardCharacters(text))
                {
                    var pattern = new WildcardPattern(text, WildcardOptions.IgnoreCase);
                    selected.AddRange(names.Where(n => pattern.IsMatch(n)));
                    continue;
                }
                try
                {
                    selected.Add(Virsh.ResolveDomain(text, names));
                }
                catch (GpuVirtException e) when (e.ErrorId == ErrorIds.DomainNotFound || e.ErrorId == ErrorIds.InvalidDomainName)
                {
                    WriteError(e);
                }
            }
            return selected.Distinct(StringComparer.Ordinal).ToList();
        }
    }
}
