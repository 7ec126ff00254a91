using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>Turns a PCI address into the BusID the guest's xorg.conf needs (procedure 16.17), or the whole Device section.</summary>
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

        /// <summary>The section's Identifier (with -DeviceSection).</summary>
        [Parameter]
        public string Identifier { get; set; } = XorgConfig.DefaultIdentifier;

        /// <summary>The section's Driver (with -DeviceSection).</summary>
        [Parameter]
        public string Driver { get; set; } = XorgConfig.DefaultDriver;

        /// <summary>The section's VendorName (with -DeviceSection).</summary>
        [Parameter]
        public string VendorName { get; set; } = XorgConfig.DefaultVendorName;

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
                    WriteObject(DeviceSection ? XorgConfig.DeviceSection(address, Identifier, Driver, VendorName) : XorgConfig.BusId(address));
                }
                catch (GpuVirtException e)
                {
                    WriteError(e);
                }
            }
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
