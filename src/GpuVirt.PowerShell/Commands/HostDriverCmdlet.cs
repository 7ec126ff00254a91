using System;
using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
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

        /// <summary>Plans the changes; one per host of the command, so that the method is chosen once for each.</summary>
        private protected HostDriverPlanner Planner
        {
            get
            {
                _ = HostSystem;
                _ = Virsh;
                return _planner ??= NewPlanner();
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

        private HostDriverPlanner NewPlanner()
        {
            var planner = new HostDriverPlanner(new ChangeHost(HostSystem, ConnectGiven), () => Virsh, line => WriteVerbose(line));
            // A blocked unbind (a holder that came after the checks) says on the warning stream who the kernel waits for.
            planner.Binding.Notice = WriteWarning;
            planner.Binding.Cancellation = StopToken;
            planner.Runner = Runner;
            return planner;
        }

        private readonly HashSet<(string Root, PciAddress Address)> _seen = new HashSet<(string Root, PciAddress Address)>();

        /// <summary>The functions this command changed, or under -WhatIf would have changed, with the host of each.</summary>
        private protected List<((string Root, string? Connect) Host, PciAddress Address)> Carried { get; } = new List<((string Root, string? Connect) Host, PciAddress Address)>();

        /// <summary>
        /// Plans, shows and applies one function's change per address (and per function <paramref name="functions"/>
        /// adds for it, each once); a failure is reported and the next goes on.
        /// </summary>
        private protected void Carry(Func<PciAddress, ChangePlan<PciDevice?>> plan, Func<PciAddress, IReadOnlyList<PciAddress>>? functions = null)
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
                    if (!_seen.Add((HostSystem.Directory, address))) continue;
                    try
                    {
                        var change = plan(address);
                        if (ShouldApply(change))
                        {
                            WriteObject(Apply(change));
                            Carried.Add((CurrentHost, address));
                        }
                        else if (ShownAsWhatIf)
                        {
                            Carried.Add((CurrentHost, address));
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
