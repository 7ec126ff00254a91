using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet that reads or changes the host through its root directory (<c>-Root</c>, <c>/</c> by default).</summary>
    public abstract class HostCmdlet : GpuVirtCmdlet
    {
        private HostRoot? _host;
        private PciInventory? _inventory;

        /// <summary>The directory that stands for the host's <c>/</c>: a mounted image or a test tree.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Root { get; set; } = "/";

        protected HostRoot HostSystem
        {
            get
            {
                if (_host is null)
                {
                    var path = GetUnresolvedProviderPathFromPSPath(Root);
                    try
                    {
                        _host = new HostRoot(path).EnsureExists();
                    }
                    catch (GpuVirtException e)
                    {
                        ThrowTerminatingError(e);
                    }
                }
                return _host!;
            }
        }

        /// <summary>The host's PCI functions, read once per command.</summary>
        protected PciInventory Inventory => _inventory ??= new PciInventory(HostSystem, DisplayAsGpu);

        /// <summary>Whether display-class functions are read as <see cref="GpuDevice"/> objects.</summary>
        protected virtual bool DisplayAsGpu => false;
    }
}
