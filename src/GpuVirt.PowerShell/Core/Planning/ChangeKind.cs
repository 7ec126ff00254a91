using GpuVirt.Core.Mmio;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Planning
{
    /// <summary>What kind of change a plan makes; plan checks choose the plans they look at by it.</summary>
    internal enum ChangeKind
    {
        /// <summary>PCI functions leave their host driver (Dismount-GpuHostDriver).</summary>
        HostDriverDetach,

        /// <summary>PCI functions go back to their host driver (Mount-GpuHostDriver).</summary>
        HostDriverReattach,

        /// <summary>A hostdev is attached to a guest (Add-GpuHostdev).</summary>
        HostdevAttach,

        /// <summary>A hostdev is detached from a guest (Remove-GpuHostdev).</summary>
        HostdevDetach,

        /// <summary>A vGPU is created (New-VgpuDevice).</summary>
        VgpuCreate,

        /// <summary>A vGPU is removed (Remove-VgpuDevice).</summary>
        VgpuRemove,

        /// <summary>A guest's console is set up for its vGPU (Set-VgpuConsole).</summary>
        VgpuConsole,

        /// <summary>The kernel command line and boot configuration (Enable-/Disable-IommuBoot).</summary>
        BootCommandLine,

        /// <summary>The nouveau blacklist and the initramfs (Disable-/Enable-NouveauDriver).</summary>
        BootNouveau,

        /// <summary>A guest's 64-bit MMIO space and vCPU physical address bits (Set-GuestMmioSpace).</summary>
        GuestMmio,

        /// <summary>An mdevctl definition is written without a device being made (Import-VgpuDefinition, New-VgpuDevice -DefineOnly).</summary>
        VgpuDefine,

        /// <summary>An NVIDIA GPU's SR-IOV virtual functions are enabled (Enable-VgpuSriov).</summary>
        SriovEnable,

        /// <summary>An NVIDIA GPU's SR-IOV virtual functions are disabled (the undo of Enable-VgpuSriov).</summary>
        SriovDisable,
    }
}
