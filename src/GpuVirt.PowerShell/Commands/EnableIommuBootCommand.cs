using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Safety;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Turns the IOMMU on at boot (and optionally holds devices with a stub driver) by editing the boot loader's
    /// kernel command line and regenerating the boot configuration: RHEL guide steps 16.13 and 16.14.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Enable, "IommuBoot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(BootChange))]
    public sealed class EnableIommuBootCommand : HostCmdlet
    {
        private readonly List<((string Root, string? Connect) Host, string Address)> _addresses = new List<((string Root, string? Connect) Host, string Address)>();

        /// <summary>Devices (piped from Get-GpuDevice or Get-PciDevice) whose ids go on the stub driver's list.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string[]? Address { get; set; }

        /// <summary><c>vendor:device</c> ids for the stub driver's list (devices not present, an offline image).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? StubId { get; set; }

        /// <summary><c>pci-stub</c> (the guide's choice) or <c>vfio-pci</c>.</summary>
        [Parameter]
        [ValidateSet(HostDriverBinding.PciStub, HostDriverBinding.VfioPci)]
        public string StubDriver { get; set; } = HostDriverBinding.PciStub;

        /// <summary>Also hold the other endpoints of each device's slot or IOMMU group (a GPU's HDMI audio function), as Add-GpuHostdev and Dismount-GpuHostDriver -IncludeCompanion take them.</summary>
        [Parameter]
        public SwitchParameter IncludeCompanion { get; set; }

        /// <summary>Intel or Amd; read from /proc/cpuinfo when not given.</summary>
        [Parameter]
        public CpuVendor CpuVendor { get; set; }

        /// <summary>Leave out <c>iommu=pt</c>.</summary>
        [Parameter]
        public SwitchParameter NoIommuPt { get; set; }

        /// <summary>Add <c>modprobe.blacklist=nouveau</c>.</summary>
        [Parameter]
        public SwitchParameter BlacklistNouveau { get; set; }

        /// <summary>The boot loader family; detected under the root when not given.</summary>
        [Parameter]
        public BootLoaderFamily BootLoader { get; set; }

        /// <summary>Hold a storage controller or bridge, or a function the running host needs, with the stub driver even so.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        private protected override bool DisplayAsGpu => true;

        protected override void ProcessRecord()
        {
            NoteHost();
            if (Address != null) _addresses.AddRange(Address.Select(a => (CurrentHost, a)));
        }

        /// <summary>One boot change per host the devices came from (<c>Get-GpuDevice -Root R | Enable-IommuBoot</c> changes R).</summary>
        protected override void EndProcessing() => ForEachHost(EnableOnCurrentHost);

        private void EnableOnCurrentHost()
        {
            var addresses = _addresses.Where(a => a.Host == CurrentHost).Select(a => a.Address).ToList();
            try
            {
                var request = new IommuBootRequest
                {
                    CpuVendor = Given(nameof(CpuVendor)) ? CpuVendor : (CpuVendor?)null,
                    NoIommuPt = NoIommuPt,
                    StubDriver = StubDriver == HostDriverBinding.VfioPci ? Core.Boot.StubDriver.VfioPci : Core.Boot.StubDriver.PciStub,
                    BlacklistNouveau = BlacklistNouveau,
                    BootLoader = Given(nameof(BootLoader)) ? BootLoader : (BootLoaderFamily?)null,
                };
                var chosen = new List<PciAddress>();
                if (addresses.Count > 0)
                {
                    foreach (var device in DeviceSelector.ByAddress(Inventory.Devices, addresses.ToArray(), e => throw e))
                    {
                        chosen.Add(device.PciAddress);
                        request.StubIds.Add(device.Ids);
                        if (!IncludeCompanion) continue;
                        foreach (var companion in AssignmentCompanions.Of(Inventory, device))
                        {
                            chosen.Add(companion.PciAddress);
                            request.StubIds.Add(companion.Ids);
                        }
                    }
                }
                foreach (var id in StubId ?? new string[0]) request.StubIds.Add(id);

                var ids = IommuBoot.NormalizeIds(request.StubIds);
                foreach (var w in IommuBoot.CheckStubIds(Inventory, ids, chosen, Force)) WriteWarning(w);
                var driverName = StubDriver;
                var claims = BootClaims.Simulate(Inventory, ids, driverName, chosen);
                foreach (var w in claims.Findings.WarningsFor(Force)) WriteWarning(w);
                var refusal = claims.Findings.Blocking(Force).FirstOrDefault();
                if (refusal != null) ThrowTerminatingError(refusal);
                var claimLines = claims.Describe(driverName);

                var plan = IommuBoot.PlanEnable(HostSystem, request);
                foreach (var w in plan.Warnings) WriteWarning(w);
                if (!plan.HasChanges)
                {
                    WriteVerbose($"The kernel command line in {plan.Boot.File} already has what was asked; nothing to change.");
                    WriteObject(WithClaims(Recovered(IommuBoot.Apply(HostSystem, plan, Runner, StopToken, Recorder, LockTimeout, WriteVerbose, RegenerationTimeout)), claims));
                    return;
                }
                var description = plan.Describe(HostSystem) + string.Concat(claimLines.Select(l => "\n" + l));
                if (!ShouldProcess(description, "Change the kernel command line and regenerate the boot configuration?\n" + description, "Enable-IommuBoot"))
                {
                    return;
                }
                WriteObject(WithClaims(Recovered(IommuBoot.Apply(HostSystem, plan, Runner, StopToken, Recorder, LockTimeout, WriteVerbose, RegenerationTimeout)), claims));
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        private static BootChange WithClaims(BootChange change, BootClaims claims)
        {
            change.ClaimedDeviceList = claims.Claimed;
            return change;
        }
    }
}
