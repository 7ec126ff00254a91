using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Lists the host's GPUs (display-class functions) with their companions, IOMMU group and vGPU capability.</summary>
    [Cmdlet(VerbsCommon.Get, "GpuDevice")]
    [OutputType(typeof(GpuDevice))]
    public sealed class GetGpuDeviceCommand : HostCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(PciAddressCompleter))]
        public string[]? Address { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(GpuVendorCompleter))]
        public string[]? Vendor { get; set; }

        private bool _problemsReported;

        /// <summary>The libvirt connection URI; with it, each device's Guests lists the guests whose definitions reference it.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Connect { get; set; }

        protected override bool DisplayAsGpu => true;

        protected override void ProcessRecord()
        {
            ushort[]? vendors = null;
            try
            {
                vendors = Vendor?.SelectMany(GpuVendors.Resolve).ToArray();
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }

            foreach (var gpu in DeviceSelector.ByAddress(Inventory.Gpus(), Address, WriteError))
            {
                if (vendors != null && !vendors.Contains(gpu.VendorId)) continue;
                GuestsAt(Connect)?.Fill(new[] { gpu });
                WriteObject(gpu);
            }
            if (!_problemsReported)
            {
                // A function whose class, vendor or device could not be read may be a GPU: say so, never drop it silently.
                _problemsReported = true;
                foreach (var problem in Inventory.Problems) WriteError(problem);
            }
        }
    }
}
