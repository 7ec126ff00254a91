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
    /// Attaches GPUs (PCI hostdevs) and vGPUs (mdev hostdevs) to a guest with <c>virsh attach-device</c> (procedure
    /// 16.16 and 16.7.2.1). Devices are collected from the pipeline and attached per guest in one virsh process.
    /// </summary>
    [Cmdlet(VerbsCommon.Add, "GpuHostdev", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(Hostdev))]
    public sealed class AddGpuHostdevCommand : HostdevCmdlet
    {
        /// <summary>Writes managed='no' on PCI hostdevs: the function must already be detached from its host driver.</summary>
        [Parameter]
        public SwitchParameter Unmanaged { get; set; }

        /// <summary>Writes display='on' on mdev hostdevs: the vGPU drives the guest's VNC or SPICE console.</summary>
        [Parameter]
        public SwitchParameter Display { get; set; }

        /// <summary>Also attaches the other endpoints of each function's slot or IOMMU group (the HDMI audio function).</summary>
        [Parameter]
        public SwitchParameter IncludeCompanion { get; set; }

        /// <summary>Attaches even when another guest's definition holds the device, (managed) when the running host needs it, or past the limit of 32 assigned PCI devices, with a warning.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        private HostdevPlanner? _planner;

        private HostdevPlanner Planner
        {
            get
            {
                var host = new ChangeHost(HostSystem, ConnectGiven);
                var virsh = Virsh;
                return _planner ??= new HostdevPlanner(host, virsh, () => Inventory);
            }
        }

        /// <summary>A record from another host: its own planner.</summary>
        private protected override void HostChanged()
        {
            base.HostChanged();
            _planner = null;
        }

        /// <summary>A record through another connection: its own planner.</summary>
        private protected override void ConnectionChanged()
        {
            base.ConnectionChanged();
            _planner = null;
        }

        private HostdevAttachOptions Options => new HostdevAttachOptions
        {
            Unmanaged = Unmanaged,
            Display = Display,
            IncludeCompanion = IncludeCompanion,
            Scope = Scope,
            Force = Force,
        };

        protected override void ProcessRecord()
        {
            var domain = Domain;
            try
            {
                Virsh.CheckDomainName(domain);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
                return;
            }

            var options = Options;
            foreach (var source in HostdevSelector.Sources(Address, Uuid, MyInvocation.ExpectingInput, WriteError))
            {
                var warnings = new List<string>();
                try
                {
                    foreach (var request in Planner.Ask(domain, source, options, warnings)) Collect(request);
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
                foreach (var warning in warnings) WriteWarning(warning);
            }
        }

        protected override void EndProcessing()
        {
            if (NothingCollected) return;
            var options = Options;
            ChangePerGuest((domain, requests) =>
            {
                IReadOnlyList<ChangePlan<Hostdev>> plans;
                try
                {
                    plans = Planner.PlanAttach(domain, requests, options);
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                    return;
                }
                var confirmed = plans.Where(ShouldApply).ToList();
                if (confirmed.Count == 0) return;
                var outcomes = Executor.ApplyEach(confirmed);
                for (var i = 0; i < outcomes.Count; i++)
                {
                    if (outcomes[i].Error != null)
                    {
                        WriteError(outcomes[i].Error!);
                        continue;
                    }
                    WriteApplied(confirmed[i]);
                    WriteObject(confirmed[i].Result());
                }
            }, () =>
            {
                try
                {
                    _ = Planner.Ownership;
                }
                catch (GpuVirtException e)
                {
                    ThrowTerminatingError(e);
                }
            });
        }
    }
}
