using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Detaches PCI and mdev hostdevs from a guest with <c>virsh detach-device</c>: <c>Get-GpuHostdev vm1 | Remove-GpuHostdev</c>.
    /// Devices are collected from the pipeline and detached per guest in one virsh process.
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "GpuHostdev", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    public sealed class RemoveGpuHostdevCommand : HostVirshCmdlet
    {
        private readonly List<HostdevRequest> _requests = new List<HostdevRequest>();

        /// <summary>The guest to detach from; piped hostdevs bind by their Domain property.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string Domain { get; set; } = string.Empty;

        /// <summary>Host PCI addresses of PCI hostdevs; piped hostdevs and devices bind by their Address property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[]? Address { get; set; }

        /// <summary>UUIDs of mdev hostdevs; piped hostdevs and vGPU devices bind by their Uuid property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[]? Uuid { get; set; }

        /// <summary>virsh --persistent: the definition, and the running guest when it runs (the default).</summary>
        [Parameter]
        public SwitchParameter Persistent { get; set; }

        /// <summary>virsh --config: the persistent definition only.</summary>
        [Parameter]
        public SwitchParameter Config { get; set; }

        /// <summary>virsh --live: the running guest only.</summary>
        [Parameter]
        public SwitchParameter Live { get; set; }

        private DeviceChangeScope Scope => DeviceChangeScopeExtensions.From(Persistent, Config, Live);

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
                _requests.Add(new HostdevRequest(Domain, source));
            }
        }

        protected override void EndProcessing()
        {
            var planner = new HostdevPlanner(new ChangeHost(HostSystem, Connect), Virsh);
            foreach (var group in _requests.GroupBy(r => r.Domain, StringComparer.Ordinal))
            {
                var confirmed = planner.PlanDetach(group.Key, group.ToList(), Scope).Where(ShouldApply).ToList();
                if (confirmed.Count == 0) continue;
                foreach (var outcome in Executor.ApplyEach(confirmed))
                {
                    if (outcome.Error != null) WriteError(outcome.Error);
                    else WriteApplied(outcome.Plan);
                }
            }
        }
    }
}
