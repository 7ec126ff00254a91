using System.IO;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Defines mediated devices from an mdevctl <c>--dumpjson</c> document (Export-VgpuDefinition, or
    /// <c>mdevctl list --defined --dumpjson</c> of another host): through mdevctl on a live host that has it, else by
    /// writing mdevctl's files. Devices are defined, not started.
    /// </summary>
    [Cmdlet(VerbsData.Import, "VgpuDefinition", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(VgpuDevice))]
    public sealed class ImportVgpuDefinitionCommand : VgpuCmdlet
    {
        private const string PathSet = "Path";
        private const string JsonSet = "Json";

        /// <summary>A file holding the document.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>The document itself; Export-VgpuDefinition's output binds from the pipeline.</summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = JsonSet)]
        [ValidateNotNullOrEmpty]
        public string Json { get; set; } = string.Empty;

        protected override void ProcessRecord()
        {
            string text, source;
            if (ParameterSetName == PathSet)
            {
                source = GetUnresolvedProviderPathFromPSPath(Path);
                try
                {
                    text = File.ReadAllText(source);
                }
                catch (System.Exception e) when (e is IOException || e is System.UnauthorizedAccessException)
                {
                    WriteError(new GpuVirtException(ErrorIds.MdevDefinitionInvalid, ErrorKind.InvalidData, $"Cannot read '{source}': {e.Message}", source, e));
                    return;
                }
            }
            else
            {
                text = Json;
                source = "the piped document";
            }
            System.Collections.Generic.IReadOnlyList<MdevDefinition> definitions;
            try
            {
                definitions = MdevDefinitions.ParseDumpJson(text, source);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
                return;
            }
            var planner = Planner();
            foreach (var d in definitions)
            {
                try
                {
                    var plan = planner.PlanDefine(d);
                    if (!ShouldApply(plan)) continue;
                    WriteObject(Apply(plan));
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }
    }
}
