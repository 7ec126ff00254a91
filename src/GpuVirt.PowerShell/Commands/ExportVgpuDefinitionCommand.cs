using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Writes mdevctl's definitions (<c>/etc/mdevctl.d</c>) as the JSON document <c>mdevctl list --defined --dumpjson</c>
    /// prints, for Import-VgpuDefinition on another host. With one UUID given on the command line that matches one
    /// definition, the single-device form <c>mdevctl list -d -u UUID --dumpjson</c> prints (what <c>mdevctl define
    /// --jsonfile</c> reads).
    /// </summary>
    [Cmdlet(VerbsData.Export, "VgpuDefinition")]
    [OutputType(typeof(string))]
    public sealed class ExportVgpuDefinitionCommand : VgpuCmdlet
    {
        private bool _problemsReported;
        private readonly System.Collections.Generic.List<MdevDefinition> _selected = new System.Collections.Generic.List<MdevDefinition>();

        /// <summary>Only these UUIDs, with wildcards; piped devices bind by Uuid.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(MdevUuidCompleter))]
        public string[]? Uuid { get; set; }

        /// <summary>Only the definitions of these parents, with wildcards.</summary>
        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Parent { get; set; }

        /// <summary>One UUID, no wildcard, given on the command line: as mdevctl's <c>-u</c>, one match prints the single-device form.</summary>
        private bool _oneUuid;

        protected override void BeginProcessing()
        {
            base.BeginProcessing();
            // Only command-line parameters are bound yet; piped devices bind Uuid later, one by one, and make the whole document.
            _oneUuid = MyInvocation.BoundParameters.ContainsKey(nameof(Uuid)) && Uuid is { Length: 1 } && !WildcardPattern.ContainsWildcardCharacters(Uuid[0]);
        }

        protected override void ProcessRecord()
        {
            if (!_problemsReported)
            {
                _problemsReported = true;
                foreach (var problem in Vgpu.Definitions.Problems) WriteError(problem);
            }
            var uuids = Uuid?.Select(u => Wildcard(u, nameof(Uuid))).ToList();
            var parents = Parent?.Select(p => Wildcard(WildcardPattern.ContainsWildcardCharacters(p) ? p : VgpuInventory.NormalizeParent(p), nameof(Parent))).ToList();
            foreach (var d in Vgpu.Definitions.All)
            {
                if (uuids != null && !uuids.Any(p => p.IsMatch(d.Uuid))) continue;
                if (parents != null && !parents.Any(p => p.IsMatch(d.Parent))) continue;
                if (!_selected.Any(x => x.Uuid == d.Uuid && x.Parent == d.Parent)) _selected.Add(d);
            }
        }

        protected override void EndProcessing() =>
            WriteObject(_oneUuid && _selected.Count == 1 ? MdevDefinitions.ToJson(_selected[0]) : MdevDefinitions.ToDumpJson(_selected));
    }
}
