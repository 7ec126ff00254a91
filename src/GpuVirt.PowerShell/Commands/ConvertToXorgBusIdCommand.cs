using System;
using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Turns a PCI address into the BusID the guest's xorg.conf needs (procedure 16.17), or the whole Device section: one
    /// for each display function among hostdevs and devices, numbered, with the driver for its vendor.
    /// </summary>
    [Cmdlet(VerbsData.ConvertTo, "XorgBusId")]
    [OutputType(typeof(string))]
    public sealed class ConvertToXorgBusIdCommand : GpuVirtCmdlet
    {
        /// <summary>
        /// An address as the guest's lspci prints it (<c>00:0a.0</c>, <c>0000:00:0a.0</c>), a PCI address value, a device
        /// (its Address) or a hostdev from Get-GpuHostdev (its GuestAddress, the address inside the guest).
        /// </summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [Alias("Address")]
        public object[] InputObject { get; set; } = System.Array.Empty<object>();

        /// <summary>Writes the whole <c>Section "Device"</c> block instead of the BusID alone.</summary>
        [Parameter]
        public SwitchParameter DeviceSection { get; set; }

        /// <summary>The first section's Identifier (with -DeviceSection); the next ones count on from its trailing number.</summary>
        [Parameter]
        public string Identifier { get; set; } = XorgConfig.DefaultIdentifier;

        /// <summary>The sections' Driver (with -DeviceSection); by default the one for the function's vendor.</summary>
        [Parameter]
        public string Driver { get; set; } = XorgConfig.DefaultDriver;

        /// <summary>The sections' VendorName (with -DeviceSection); by default the function's vendor.</summary>
        [Parameter]
        public string VendorName { get; set; } = XorgConfig.DefaultVendorName;

        /// <summary>How many sections this command wrote: the next one's Identifier counts on from it.</summary>
        private int _sections;

        /// <summary>The hosts the hostdevs were read from, each read once.</summary>
        private readonly Dictionary<string, PciInventory> _hosts = new Dictionary<string, PciInventory>(StringComparer.Ordinal);

        protected override void BeginProcessing()
        {
            try
            {
                XorgConfig.CheckValue("Identifier", Identifier);
                XorgConfig.CheckValue("Driver", Driver);
                XorgConfig.CheckValue("VendorName", VendorName);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        protected override void ProcessRecord()
        {
            foreach (var item in InputObject)
            {
                try
                {
                    var address = AddressOf(item);
                    if (!DeviceSection)
                    {
                        WriteObject(XorgConfig.BusId(address));
                        continue;
                    }
                    PciDevice? device = null;
                    if (HostFunction(item) is var (known, found, what))
                    {
                        if (!known)
                        {
                            WriteWarning($"No Device section for {what}: the host has no device there now, so it cannot be told whether it is a display function (Get-GpuHostdev shows it as not Present).");
                            continue;
                        }
                        if (found is null || !found.IsDisplay)
                        {
                            WriteVerbose($"No Device section for {what}: it is not a display function" + (found is null ? "." : $" (class {found.ClassId}, {found.Description})."));
                            continue;
                        }
                        device = found;
                    }
                    var driver = Given(nameof(Driver)) || device is null ? Driver : XorgConfig.DriverFor(device.VendorId);
                    var vendorName = Given(nameof(VendorName)) || device is null ? VendorName : XorgConfig.VendorNameFor(device);
                    WriteObject(XorgConfig.DeviceSection(address, XorgConfig.Identifier(Identifier, _sections), driver, vendorName));
                    _sections++;
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
        }

        /// <summary>
        /// The host function behind an input that says which one it is: a device is itself; a hostdev (live, or
        /// deserialized with its Root) is looked up on its host, the vGPU of an mdev hostdev by its parent. Null for
        /// address text and for objects that name no host function (or come from another computer, PSComputerName):
        /// those are taken as the procedure's NVIDIA GPU. Known is false when the host has no device there.
        /// </summary>
        private (bool Known, PciDevice? Device, string What)? HostFunction(object? item)
        {
            var value = item is PSObject ps ? ps.BaseObject : item;
            switch (value)
            {
                case PciDevice device:
                    return (true, device, device.Address);
                case Hostdev hostdev when hostdev.Present.HasValue:
                    return (hostdev.Present.Value, hostdev.FoundDevice, Describe(hostdev));
                case Hostdev hostdev:
                    return LookUp(hostdev.Domain, hostdev.SourceDevice, hostdev.Root);
                case string _:
                case PciAddress _:
                case null:
                    return null;
            }
            var wrapped = PSObject.AsPSObject(item);
            if (wrapped.Properties["GuestAddress"] is null || wrapped.Properties["PSComputerName"]?.Value is string computer && computer.Length > 0) return null;
            var domain = wrapped.Properties["Domain"]?.Value?.ToString() ?? "?";
            var root = wrapped.Properties["Root"]?.Value?.ToString();
            HostdevSource source;
            if (PciAddress.TryParse(wrapped.Properties["Address"]?.Value?.ToString(), out var address)) source = HostdevSource.Pci(address);
            else if (MdevUuid.TryParse(wrapped.Properties["Uuid"]?.Value?.ToString(), out var uuid)) source = HostdevSource.Mdev(uuid);
            else return null;
            return LookUp(domain, source, string.IsNullOrEmpty(root) ? "/" : root!);
        }

        /// <summary>Looks a hostdev's device up on its host (the input itself is left as it is).</summary>
        private (bool Known, PciDevice? Device, string What) LookUp(string domain, HostdevSource source, string root)
        {
            var hostdev = new Hostdev(domain, source, string.Empty);
            HostdevPresence.Fill(new[] { hostdev }, InventoryOf(root), null);
            return (hostdev.Present == true, hostdev.FoundDevice, Describe(hostdev));
        }

        private static string Describe(Hostdev hostdev) => $"the hostdev {hostdev.Source} of guest '{hostdev.Domain}'";

        private PciInventory InventoryOf(string root)
        {
            if (!_hosts.TryGetValue(root, out var inventory))
            {
                inventory = new PciInventory(new HostRoot(GetUnresolvedProviderPathFromPSPath(root)).EnsureExists());
                _hosts[root] = inventory;
            }
            return inventory;
        }

        /// <summary>The address to convert: a string or address value as is; a hostdev's guest address; a device's address.</summary>
        private static PciAddress AddressOf(object? item)
        {
            var value = item is PSObject ps ? ps.BaseObject : item;
            switch (value)
            {
                case null:
                    throw Invalid(item);
                case PciAddress address:
                    return address;
                case string text:
                    return PciAddress.Parse(text);
                case Hostdev hostdev:
                    return hostdev.GuestPciAddress ?? throw NotAssigned(hostdev.Domain, hostdev.Source.ToString());
            }

            var wrapped = PSObject.AsPSObject(item);
            var guest = wrapped.Properties["GuestAddress"];
            if (guest != null)
            {
                if (guest.Value is null) throw NotAssigned(wrapped.Properties["Domain"]?.Value?.ToString() ?? "?", wrapped.ToString());
                return FromValue(guest.Value, item);
            }
            var host = wrapped.Properties["Address"];
            if (host?.Value != null) return FromValue(host.Value, item);
            throw Invalid(item);
        }

        private static PciAddress FromValue(object value, object? item)
        {
            var inner = value is PSObject p ? p.BaseObject : value;
            if (inner is PciAddress a) return a;
            if (inner is string s) return PciAddress.Parse(s);
            throw Invalid(item);
        }

        private static GpuVirtException NotAssigned(string domain, string source) =>
            new GpuVirtException(ErrorIds.GuestAddressNotAssigned, ErrorKind.ObjectNotFound,
                $"The hostdev {source} of guest '{domain}' has no guest PCI address yet: libvirt assigns one when the device is " +
                "attached to the definition (Add-GpuHostdev -Persistent or -Config). Read it with Get-GpuHostdev -Inactive.", source);

        private static GpuVirtException Invalid(object? item) =>
            new GpuVirtException(ErrorIds.XorgBusIdInputInvalid, ErrorKind.InvalidArgument,
                $"Cannot take a PCI address from '{item}': give an address such as 00:0a.0, a device with an Address, or a hostdev with a GuestAddress.", item);
    }
}
