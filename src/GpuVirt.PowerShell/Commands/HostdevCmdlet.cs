using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// The parameters Add-GpuHostdev and Remove-GpuHostdev share: the guest, the devices (PCI addresses and mdev UUIDs,
    /// bound from piped objects by property name) and virsh's scope switches. Requests are collected per record and
    /// changed per guest at the end.
    /// </summary>
    public abstract class HostdevCmdlet : HostVirshCmdlet
    {
        /// <summary>The requests collected from the pipeline, changed per guest in EndProcessing.</summary>
        protected List<HostdevRequest> Requests { get; } = new List<HostdevRequest>();

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
        protected DeviceChangeScope Scope => DeviceChangeScopeExtensions.From(Persistent, Config, Live);
    }
}
