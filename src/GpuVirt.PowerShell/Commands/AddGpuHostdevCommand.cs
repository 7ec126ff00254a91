using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

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

        /// <summary>Attaches even when another guest's definition holds the device, or past the limit of 32 assigned PCI devices.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        private DeviceChangeScope Scope => DeviceChangeScopeExtensions.From(Persistent, Config, Live);

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

            foreach (var source in HostdevSelector.Sources(Address, Uuid, MyInvocation.ExpectingInput, WriteError))
            {
                if (source.Kind == HostdevKind.Mdev)
                {
                    var path = Path.Combine(HostSystem.Resolve(HostPaths.MdevDevices), source.ToString());
                    if (!Directory.Exists(path))
                    {
                        WriteWarning($"The mediated device {source} does not exist on this host ('{HostPaths.MdevDevices}/{source}'): the guest will not start until it is created (New-VgpuDevice).");
                    }
                    _requests.Add(new HostdevRequest(domain, source, managed: false, display: Display));
                    continue;
                }

                var address = source.Address!.Value;
                if (Display)
                {
                    WriteError(new GpuVirtException(ErrorIds.HostdevDisplayNotSupported, ErrorKind.InvalidArgument,
                        $"-Display applies to mediated devices (vGPUs) only; {address} is a whole PCI function.", address.ToString()));
                    continue;
                }
                var device = Inventory.Find(address);
                if (device is null)
                {
                    WriteError(PciInventory.NotFound(address, address.ToString()));
                    continue;
                }
                if (device.IsBridge)
                {
                    WriteError(new GpuVirtException(ErrorIds.HostdevNotAssignable, ErrorKind.InvalidArgument,
                        $"{address} is a PCI bridge or port; only endpoints can be given to a guest.", address.ToString()));
                    continue;
                }
                _requests.Add(new HostdevRequest(domain, source, managed: !Unmanaged));
                if (IncludeCompanion)
                {
                    foreach (var companion in AssignmentCompanions.Of(Inventory, device))
                    {
                        _requests.Add(new HostdevRequest(domain, HostdevSource.Pci(companion.Address), managed: !Unmanaged) { CompanionOf = address });
                    }
                }
            }
        }

        protected override void EndProcessing()
        {
            if (_requests.Count == 0) return;
            HostdevOwnership ownership;
            try
            {
                ownership = HostdevOwnership.Read(Virsh);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
                return;
            }

            foreach (var group in _requests.GroupBy(r => r.Domain, StringComparer.Ordinal))
            {
                var domain = ResolveDomain(group.Key, group.ToList(), ownership);
                if (domain is null) continue;
                var requests = WithinDeviceLimit(domain, Distinct(group), ownership);
                WarnAboutCompanions(requests);
                WarnAboutMmio(domain, requests, ownership);

                var confirmed = new List<HostdevRequest>();
                foreach (var request in requests)
                {
                    var inUse = ownership.InUseError(request.Source, domain);
                    if (inUse != null)
                    {
                        if (!Force)
                        {
                            WriteError(inUse);
                            continue;
                        }
                        WriteWarning(inUse.Message.Split(new[] { " Remove it there" }, StringSplitOptions.None)[0] + " -Force attaches it anyway.");
                    }
                    var commandLine = Virsh.CommandLine(VirshCommand.AttachDevice(domain, "<temporary file>", Scope));
                    var description = $"Attach {request.Describe()} to guest '{domain}':{Environment.NewLine}{commandLine}{Environment.NewLine}{request.Xml.TrimEnd()}";
                    if (ShouldProcess(description, $"Attach {request.Describe()} to guest '{domain}'?", "Add-GpuHostdev"))
                    {
                        confirmed.Add(request);
                    }
                }
                if (confirmed.Count == 0) continue;

                IReadOnlyList<DeviceChangeOutcome> outcomes;
                DomainDefinition? after;
                try
                {
                    Recorder.Check();
                    (outcomes, after) = Virsh.ChangeDevices(domain, confirmed.Select(r => r.Xml).ToList(), Scope, attach: true, readBack: true);
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
                            $"Cannot attach {request.Describe()} to guest '{domain}'. {outcome.Error.Message}", request.Source.ToString(), outcome.Error));
                        continue;
                    }
                    var written = after?.Hostdevs.FirstOrDefault(h => h.Source == request.Source)
                        ?? DomainXml.ParseHostdev(domain, request.Xml);
                    try
                    {
                        Recorder.Record(request.Journaled(domain, Scope, attach: true, written.Xml));
                    }
                    catch (GpuVirtException e)
                    {
                        WriteError(e);
                    }
                    WriteObject(written);
                }
            }
        }

        /// <summary>
        /// The requests that keep the guest within the procedure's 32 assigned PCI devices; each one past it is refused
        /// (HostdevLimitExceeded), or with -Force attached with a warning.
        /// </summary>
        private List<HostdevRequest> WithinDeviceLimit(string domain, List<HostdevRequest> requests, HostdevOwnership ownership)
        {
            var assigned = HostdevLimits.AssignedPciDevices(ownership.Hostdevs.Where(h => string.Equals(h.Domain, domain, StringComparison.Ordinal)));
            var count = assigned.Count;
            var kept = new List<HostdevRequest>(requests.Count);
            foreach (var request in requests)
            {
                if (assigned.Contains(request.Source))
                {
                    kept.Add(request);
                    continue;
                }
                if (count >= HostdevLimits.MaxAssignedDevices)
                {
                    var error = HostdevLimits.LimitExceeded(domain, request.Source, count);
                    if (!Force)
                    {
                        WriteError(error);
                        continue;
                    }
                    WriteWarning(error.Message.Split(new[] { " Remove one first" }, StringSplitOptions.None)[0] + " -Force attaches it anyway.");
                }
                count++;
                kept.Add(request);
            }
            return kept;
        }

        /// <summary>Warns, pointing at Set-GuestMmioSpace, when the guest's 64-bit MMIO space will not hold its PCI hostdevs with these added.</summary>
        private void WarnAboutMmio(string domain, IReadOnlyList<HostdevRequest> requests, HostdevOwnership ownership)
        {
            var definition = ownership.DefinitionOf(domain);
            var adding = requests.Where(r => r.Source.Kind == HostdevKind.Pci).Select(r => r.Source.Address!.Value).ToList();
            if (definition is null || adding.Count == 0) return;
            try
            {
                var warning = HostdevLimits.MmioWarning(definition, adding, Inventory);
                if (warning != null) WriteWarning(warning);
            }
            catch (GpuVirtException e)
            {
                WriteVerbose($"The 64-bit MMIO space of guest '{domain}' was not checked: {e.Message}");
            }
        }

        /// <summary>The guest's name as libvirt knows it (a UUID or id resolves to it); null after a DomainNotFound error.</summary>
        private string? ResolveDomain(string domain, IReadOnlyList<HostdevRequest> requests, HostdevOwnership ownership)
        {
            if (ownership.HasDomain(domain)) return domain;
            try
            {
                return Virsh.ResolveDomain(domain, ownership.Domains);
            }
            catch (GpuVirtException e)
            {
                var devices = string.Join(", ", requests.Select(r => r.Source.ToString()));
                WriteError(new GpuVirtException(e.ErrorId, e.Kind, $"{e.Message} Nothing was attached ({devices}).", domain, e));
                return null;
            }
        }

        private static List<HostdevRequest> Distinct(IEnumerable<HostdevRequest> requests)
        {
            var seen = new HashSet<HostdevSource>();
            return requests.Where(r => seen.Add(r.Source)).ToList();
        }

        /// <summary>Warns when a function's slot or IOMMU group holds endpoints that are not attached with it.</summary>
        private void WarnAboutCompanions(IReadOnlyList<HostdevRequest> requests)
        {
            var asked = new HashSet<HostdevSource>(requests.Select(r => r.Source));
            foreach (var request in requests.Where(r => r.Source.Kind == HostdevKind.Pci && r.CompanionOf is null))
            {
                var device = Inventory.Find(request.Source.Address!.Value);
                if (device is null) continue;
                var left = AssignmentCompanions.Of(Inventory, device).Where(c => !asked.Contains(HostdevSource.Pci(c.Address))).ToList();
                if (left.Count == 0) continue;
                var names = string.Join(", ", left.Select(c => $"{c.Address} ({c.ClassName ?? c.ClassId}, driver {c.Driver ?? "none"})"));
                var group = device.IommuGroup.HasValue ? $" or IOMMU group {device.IommuGroup}" : string.Empty;
                WriteWarning($"{device.Address} shares its slot{group} with {names}. Every endpoint of the group must leave its host driver: " +
                    "detach it with Dismount-GpuHostDriver, or attach it too with -IncludeCompanion.");
            }
        }
    }
}
