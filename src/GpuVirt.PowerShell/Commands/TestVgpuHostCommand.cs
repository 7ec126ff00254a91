using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>Checks that a host is ready for vGPU by what its vGPU parents need: NVIDIA's (nouveau blacklisted, nvidia_vgpu_vfio loaded, nvidia-vgpu-mgr running) or Intel GVT-g's (i915.enable_gvt, kvmgt loaded), and vGPU parents present.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "VgpuHost")]
    [OutputType(typeof(VgpuHostCheck))]
    [OutputType(typeof(bool))]
    public sealed class TestVgpuHostCommand : VgpuCmdlet
    {
        /// <summary>Write only True when every check passes, else False.</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void EndProcessing() => ForEachHost(() =>
        {
            var checks = VgpuHostChecks.Run(Vgpu, Runner, StopToken);
            if (Quiet)
            {
                WriteObject(checks.All(c => c.Passed));
                return;
            }
            WriteObject(checks, enumerateCollection: true);
        });
    }
}
