using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Proposes where N vGPUs of one type fit over every GPU of the host (mediated-device pools, the one-type-per-GPU rule,
    /// free SR-IOV virtual functions), or says why they do not. Pipe the result to New-VgpuDevice.
    /// </summary>
    [Cmdlet(VerbsCommon.Find, "VgpuPlacement")]
    [OutputType(typeof(VgpuPlacement))]
    public sealed class FindVgpuPlacementCommand : VgpuCmdlet
    {
        /// <summary>The type: its id (nvidia-63, 1168) or name (GRID P4-1Q, NVIDIA L40S-24Q).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [Alias("TypeName")]
        [ValidateNotNullOrEmpty]
        public string Type { get; set; } = string.Empty;

        /// <summary>How many vGPUs to place.</summary>
        [Parameter(Position = 1)]
        [ValidateRange(1, 4096)]
        public int Count { get; set; } = 1;

        /// <summary>One vGPU on each GPU in turn, instead of filling one GPU before the next.</summary>
        [Parameter]
        public SwitchParameter Spread { get; set; }

        protected override void ProcessRecord()
        {
            try
            {
                foreach (var placement in VgpuPlacementPlanner.Place(Vgpu, Type, Count, Spread)) WriteObject(placement);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }
    }
}
