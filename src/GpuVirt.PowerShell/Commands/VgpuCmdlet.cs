using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet about vGPU types and devices: the host's vGPU inventory and the manager that changes it.</summary>
    public abstract class VgpuCmdlet : HostCmdlet
    {
        private VgpuInventory? _vgpu;
        private VgpuManager? _manager;

        private protected VgpuInventory Vgpu => _vgpu ??= new VgpuInventory(HostSystem, Inventory);

        /// <summary>Creates and removes vGPUs; each sysfs write and each program run goes to the verbose stream.</summary>
        private protected VgpuManager Manager => _manager ??= new VgpuManager(Vgpu, Runner, WriteVerbose) { Recorder = Recorder, LockTimeout = LockTimeout, Notice = WriteWarning };
    }
}
