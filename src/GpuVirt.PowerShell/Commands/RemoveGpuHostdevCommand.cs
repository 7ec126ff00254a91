using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

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
            foreach (var group in _requests.GroupBy(r => r.Domain, StringComparer.Ordinal))
            {
                var domain = group.Key;
                var seen = new HashSet<HostdevSource>();
                var confirmed = new List<HostdevRequest>();
                foreach (var request in group.Where(r => seen.Add(r.Source)))
                {
                    var commandLine = Virsh.CommandLine(VirshCommand.DetachDevice(domain, "<temporary file>", Scope));
                    var description = $"Detach {request.Describe()} from guest '{domain}':{Environment.NewLine}{commandLine}{Environment.NewLine}{request.Xml.TrimEnd()}";
                    if (ShouldProcess(description, $"Detach {request.Describe()} from guest '{domain}'?", "Remove-GpuHostdev"))
                    {
                        confirmed.Add(request);
                    }
                }
                if (confirmed.Count == 0) continue;

                IReadOnlyList<DeviceChangeOutcome> outcomes;
                DomainDefinition? before = null;
                try
                {
                    Recorder.Check();
                    // The hostdevs as the definition has them, so that the journal can attach each one back exactly.
                    (outcomes, _) = Virsh.ChangeDevices(domain, confirmed.Select(r => r.Xml).ToList(), Scope, attach: false, readBack: false, readBefore: d => before = d);
                }
                catch (GpuVirtException e)
                {
                    ThrowTerminatingError(e);
                    return;
                }
                foreach (var outcome in outcomes)
                {
                    var request = confirmed[outcome.Index];
                    if (outcome.Error != null)
                    {
                        WriteError(new GpuVirtException(outcome.Error.ErrorId, outcome.Error.Kind,
                            $"Cannot detach {request.Describe()} from guest '{domain}'. {outcome.Error.Message}", request.Source.ToString(), outcome.Error));
                        continue;
                    }
                    try
                    {
                        var element = before?.Hostdevs.FirstOrDefault(h => h.Source == request.Source)?.Xml;
                        Recorder.Record(request.Journaled(domain, Scope, attach: false, element));
                    }
                    catch (GpuVirtException e)
                    {
                        WriteError(e);
                    }
                }
            }
        }
    }
}
