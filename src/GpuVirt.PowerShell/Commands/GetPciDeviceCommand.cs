using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Lists the host's PCI functions from sysfs, like <c>lspci -Dnnk</c> with IOMMU groups.</summary>
    [Cmdlet(VerbsCommon.Get, "PciDevice")]
    [OutputType(typeof(PciDevice))]
    public sealed class GetPciDeviceCommand : HostVirshCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string[]? Address { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? VendorId { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? DeviceId { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? Class { get; set; }

        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(PciDriverCompleter))]
        public string[]? Driver { get; set; }


        protected override void ProcessRecord()
        {
            ushort[]? vendors, devices;
            string[]? classes;
            try
            {
                vendors = DeviceSelector.ParseIds(VendorId, nameof(VendorId));
                devices = DeviceSelector.ParseIds(DeviceId, nameof(DeviceId));
                classes = DeviceSelector.ParseClasses(Class);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
                return;
            }
            var drivers = Driver?.Select(d => Wildcard(d, nameof(Driver))).ToArray();

            Reading(() =>
            {
                foreach (var device in DeviceSelector.ByAddress(Inventory.Devices, Address, WriteError))
                {
                    if (vendors != null && !vendors.Contains(device.VendorId)) continue;
                    if (devices != null && !devices.Contains(device.DeviceId)) continue;
                    if (classes != null && !DeviceSelector.ClassMatches(device.ClassCode, classes)) continue;
                    if (drivers != null && !drivers.Any(p => p.IsMatch(device.Driver ?? string.Empty))) continue;
                    GuestsAt(ConnectGiven)?.Fill(new[] { device });
                    WriteObject(device);
                }
            });
        }
    }
}
