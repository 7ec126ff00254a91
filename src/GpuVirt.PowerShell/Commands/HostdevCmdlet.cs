using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>
    /// The parameters Add-GpuHostdev and Remove-GpuHostdev share: the guest, the devices (PCI addresses and mdev UUIDs,
    /// bound from piped objects by property name) and virsh's scope switches. Requests are collected per record and
    /// changed per guest at the end.
    /// </summary>
    public abstract class HostdevCmdlet : HostVirshCmdlet
    {
        private readonly List<((string Root, string? Connect) Host, HostdevRequest Request)> _requests = new List<((string Root, string? Connect) Host, HostdevRequest Request)>();

        /// <summary>Collects a request of the current record, with the record's host (root and connection).</summary>
        private protected void Collect(HostdevRequest request) => _requests.Add((CurrentHost, request));

        /// <summary>
        /// Changes the collected requests (EndProcessing): per host the records came from, that host made current, then
        /// per guest; <paramref name="change"/> gets one guest's requests.
        /// </summary>
        private protected void ChangePerGuest(System.Action<string, List<HostdevRequest>> change, System.Action? beforeHost = null)
        {
            foreach (var host in _requests.GroupBy(r => r.Host))
            {
                On(host.Key, () =>
                {
                    beforeHost?.Invoke();
                    foreach (var guest in host.Select(r => r.Request).GroupBy(r => r.Domain, System.StringComparer.Ordinal))
                    {
                        try
                        {
                            change(guest.Key, guest.ToList());
                        }
                        catch (GpuVirtException e)
                        {
                            // One guest (or one host's libvirt) failing leaves the others to be changed.
                            WriteError(e);
                        }
                    }
                });
            }
        }

        /// <summary>True when the pipeline gave nothing to change.</summary>
        private protected bool NothingCollected => _requests.Count == 0;

        /// <summary>The guest (libvirt domain); piped hostdevs bind by their Domain property.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(DomainNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string Domain { get; set; } = string.Empty;

        /// <summary>PCI addresses; piped GPU, PCI devices and hostdevs bind by their Address property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string[]? Address { get; set; }

        /// <summary>Mediated device UUIDs; piped vGPU devices and hostdevs bind by their Uuid property.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        [ArgumentCompleter(typeof(MdevUuidCompleter))]
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

        /// <summary>Which of the guest's configurations the change goes to, from the three switches.</summary>
        private protected DeviceChangeScope Scope => DeviceChangeScopeExtensions.From(Persistent, Config, Live);
    }
}
