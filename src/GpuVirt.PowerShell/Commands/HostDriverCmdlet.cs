using System;
using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>The shared parameters and steps of Dismount-GpuHostDriver and Mount-GpuHostDriver.</summary>
    public abstract class HostDriverCmdlet : HostVirshCmdlet
    {
        private HostDriverPlanner? _planner;

        /// <summary>PCI addresses of the functions; piped devices and hostdevs bind by their Address property.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string[] Address { get; set; } = Array.Empty<string>();

        /// <summary>virsh (nodedev-detach/-reattach), sysfs (driver_override, unbind, drivers_probe), or Auto.</summary>
        [Parameter]
        public HostDriverMethod Method { get; set; } = HostDriverMethod.Auto;

        /// <summary>Plans the changes; one per command, so that the method is chosen once.</summary>
        protected HostDriverPlanner Planner => _planner ??= NewPlanner();

        private HostDriverPlanner NewPlanner()
        {
            var planner = new HostDriverPlanner(new ChangeHost(HostSystem, Connect), () => Virsh, line => WriteVerbose(line));
            // A blocked unbind (a holder that came after the checks) says on the warning stream who the kernel waits for.
            planner.Binding.Notice = WriteWarning;
            planner.Binding.Cancellation = StopToken;
            planner.Runner = Runner;
            return planner;
        }

        private readonly HashSet<PciAddress> _seen = new HashSet<PciAddress>();

        /// <summary>The functions this command changed, or under -WhatIf would have changed.</summary>
        protected List<PciAddress> Carried { get; } = new List<PciAddress>();

        /// <summary>
        /// Plans, shows and applies one function's change per address (and per function <paramref name="functions"/>
        /// adds for it, each once); a failure is reported and the next goes on.
        /// </summary>
        protected void Carry(Func<PciAddress, ChangePlan<PciDevice?>> plan, Func<PciAddress, IReadOnlyList<PciAddress>>? functions = null)
        {
            foreach (var asked in Addresses())
            {
                IReadOnlyList<PciAddress> all;
                try
                {
                    all = functions?.Invoke(asked) ?? new[] { asked };
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                    continue;
                }
                foreach (var address in all)
                {
                    if (!_seen.Add(address)) continue;
                    try
                    {
                        var change = plan(address);
                        if (ShouldApply(change))
                        {
                            WriteObject(Apply(change));
                            Carried.Add(address);
                        }
                        else if (ShownAsWhatIf)
                        {
                            Carried.Add(address);
                        }
                    }
                    catch (GpuVirtException e)
                    {
                        WriteError(e);
                    }
                }
            }
        }

        /// <summary>The addresses of this record, parsed; a malformed one is reported and skipped.</summary>
        private IEnumerable<PciAddress> Addresses()
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
    }
}
