using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.HostReadiness;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Checks that a host is ready for GPU passthrough, one object per check (Pass, Warn or Fail) with what was seen and
    /// the fix; with -Quiet, one boolean: true when nothing fails.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "GpuVirtHost")]
    [OutputType(typeof(GpuVirtHostCheck))]
    [OutputType(typeof(bool))]
    public sealed class TestGpuVirtHostCommand : HostVirshCmdlet
    {
        /// <summary>Write only True when no check fails (warnings allowed), else False.</summary>
        [Parameter]
        public SwitchParameter Quiet { get; set; }

        private protected override bool DisplayAsGpu => true;

        protected override void EndProcessing() => ForEachHost(() =>
        {
            var checks = GpuVirtHostChecks.Run(Inventory, Virsh, Runner, StopToken);
            if (Quiet)
            {
                WriteObject(checks.All(c => c.Status != HostCheckStatus.Fail));
                return;
            }
            WriteObject(checks, enumerateCollection: true);
        });
    }
}
