using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Attaches GPUs (PCI hostdevs) and vGPUs (mdev hostdevs) to a guest with <c>virsh attach-device</c> (procedure
    /// 16.16 and 16.7.2.1). Devices are collected from the pipeline and attached per guest in one virsh process.
    /// </summary>
    [Cmdlet(VerbsCommon.Add, "GpuHostdev", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(Hostdev))]
    public sealed class AddGpuHostdevCommand : HostVirshCmdlet
    {
        private readonly List<HostdevRequest> _requests = new List<HostdevRequest>();

        /// <summary>The guest (libvirt domain) to attach to.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string Domain { get; set; } = string.Empty;

        /// <summary>PCI addresses; piped GPU and PCI devices bind by their Address property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[]? Address { get; set; }

        /// <summary>Mediated device UUIDs; piped vGPU devices bind by their Uuid property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[]? Uuid { get; set; }

        /// <summary>Writes managed='no' on PCI hostdevs: the function must already be detached from its host driver.</summary>
        [Parameter]
        public SwitchParameter Unmanaged { get; set; }

        /// <summary>Writes display='on' on mdev hostdevs: the vGPU drives the guest's VNC or SPICE console.</summary>
        [Parameter]
        public SwitchParameter Display { get; set; }

        /// <summary>Also attaches the other endpoints of each function's slot or IOMMU group (the HDMI audio function).</summary>
        [Parameter]
        public SwitchParameter IncludeCompanion { get; set; }

        /// <summary>virsh --persistent: the definition, and the running guest when it runs (the default).</summary>
        [Parameter]
        public SwitchParameter Persistent { get; set; }

        /// <summary>virsh --config: the persistent definition only.</summary>
        [Parameter]
        public SwitchParameter Config { get; set; }

        /// <summary>virsh --live: the running guest only.</summary>
        [Parameter]
        public SwitchParameter Live { get; set; }

        /// <summary>Attaches even when another guest's definition holds the device.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        private HostdevPlanner? _planner;

        private HostdevPlanner Planner => _planner ??= new HostdevPlanner(new ChangeHost(HostSystem, Connect), Virsh, () => Inventory);

        private HostdevAttachOptions Options => new HostdevAttachOptions
        {
            Unmanaged = Unmanaged,
            Display = Display,
            IncludeCompanion = IncludeCompanion,
            Scope = DeviceChangeScopeExtensions.From(Persistent, Config, Live),
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
                    _requests.AddRange(Planner.Ask(domain, source, options, warnings));
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
            if (_requests.Count == 0) return;
            try
            {
                _ = Planner.Ownership;
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
                return;
            }

            var options = Options;
            foreach (var group in _requests.GroupBy(r => r.Domain, StringComparer.Ordinal))
            {
                IReadOnlyList<ChangePlan<Hostdev>> plans;
                try
                {
                    plans = Planner.PlanAttach(group.Key, group.ToList(), options);
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                    continue;
                }
                var confirmed = plans.Where(ShouldApply).ToList();
                if (confirmed.Count == 0) continue;
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
            }
        }
    }
}
