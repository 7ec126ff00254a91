using System;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>The shared parameters and steps of Dismount-GpuHostDriver and Mount-GpuHostDriver.</summary>
    public abstract class HostDriverCmdlet : HostVirshCmdlet
    {
        private HostDriverMethod? _resolved;

        /// <summary>PCI addresses of the functions; piped devices and hostdevs bind by their Address property.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string[] Address { get; set; } = Array.Empty<string>();

        /// <summary>virsh (nodedev-detach/-reattach), sysfs (driver_override, unbind, drivers_probe), or Auto.</summary>
        [Parameter]
        public HostDriverMethod Method { get; set; } = HostDriverMethod.Auto;

        protected HostDriverBinding Binding => new HostDriverBinding(HostSystem, line => WriteVerbose(line));

        /// <summary>
        /// Auto is virsh on the live host when virsh is installed, libvirt answers and virsh can do the change (it binds
        /// to vfio only), sysfs otherwise. virsh acts on the live host only, so another root needs sysfs.
        /// </summary>
        protected HostDriverMethod ResolveMethod(bool virshCanDoIt = true)
        {
            if (_resolved.HasValue) return _resolved.Value;
            if (Method == HostDriverMethod.Virsh && !HostSystem.IsLive)
            {
                throw new GpuVirtException(ErrorIds.HostDriverMethodNotSupported, ErrorKind.InvalidArgument,
                    $"-Method Virsh acts on the live host only; for the root '{HostSystem.Directory}' use -Method Sysfs.", Method);
            }
            if (Method != HostDriverMethod.Auto)
            {
                _resolved = Method;
                return Method;
            }
            if (!virshCanDoIt)
            {
                WriteVerbose("virsh binds to vfio only: using sysfs.");
                return HostDriverMethod.Sysfs;
            }
            if (!HostSystem.IsLive || ProgramLocator.Find(Virsh.Program) is null)
            {
                WriteVerbose(HostSystem.IsLive ? "virsh is not installed: using sysfs." : "A host root other than / is given: using sysfs.");
                _resolved = HostDriverMethod.Sysfs;
                return _resolved.Value;
            }
            try
            {
                Virsh.ListDomains();
                _resolved = HostDriverMethod.Virsh;
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.LibvirtConnectFailed)
            {
                WriteVerbose("libvirt does not answer (" + e.Message + "): using sysfs.");
                _resolved = HostDriverMethod.Sysfs;
            }
            return _resolved.Value;
        }

        /// <summary>The addresses of this record, parsed; a malformed one is reported and skipped.</summary>
        protected System.Collections.Generic.IEnumerable<PciAddress> Addresses()
        {
            foreach (var text in Address)
            {
                if (PciAddress.TryParse(text, out var address))
                {
                    yield return address;
                    continue;
                }
                WriteError(PciAddress.NotAnAddress(text));
            }
        }

        /// <summary>The function as it is now (a fresh read of sysfs).</summary>
        protected PciDevice? Reread(PciAddress address) => new PciInventory(HostSystem).Find(address);
    }
}
