using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Detaches PCI and mdev hostdevs from a guest with <c>virsh detach-device</c>: <c>Get-GpuHostdev vm1 | Remove-GpuHostdev</c>.
    /// Devices are collected from the pipeline and detached per guest in one virsh process.
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "GpuHostdev", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(Hostdev))]
    public sealed class RemoveGpuHostdevCommand : HostdevCmdlet
    {
        /// <summary>Writes each detached hostdev (as the guest's definition had it) to the pipeline.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            try
            {
                Virsh.CheckDomainName(Domain);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
                return;
            }
            foreach (var source in HostdevSelector.Sources(Address, Uuid, MyInvocation.ExpectingInput, WriteError))
            {
                Collect(new HostdevRequest(Domain, source));
            }
        }

        protected override void EndProcessing()
        {
            HostdevPlanner? planner = null;
            ChangePerGuest((domain, requests) => Detach(planner!, domain, requests), () => planner = new HostdevPlanner(new ChangeHost(HostSystem, ConnectGiven), Virsh));
        }

        private void Detach(HostdevPlanner planner, string domain, List<HostdevRequest> requests)
        {
            var confirmed = planner.PlanDetach(domain, requests, Scope).Where(ShouldApply).ToList();
            if (confirmed.Count == 0) return;
            foreach (var outcome in Executor.ApplyEach(confirmed))
            {
                if (outcome.Error != null) WriteError(outcome.Error);
                else
                {
                    WriteApplied(outcome.Plan);
                    if (PassThru && outcome.Plan is ChangePlan<Hostdev?> detached && detached.Result() is Hostdev hostdev) WriteObject(hostdev);
                }
            }
        }
    }
}
