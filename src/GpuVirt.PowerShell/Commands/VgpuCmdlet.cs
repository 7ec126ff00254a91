using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet about vGPU types and devices: the host's vGPU inventory and the manager that changes it.</summary>
    public abstract class VgpuCmdlet : HostCmdlet
    {
        private VgpuInventory? _vgpu;
        private VgpuManager? _manager;

        private protected VgpuInventory Vgpu
        {
            get
            {
                var host = HostSystem;
                return _vgpu ??= new VgpuInventory(host, Inventory);
            }
        }

        /// <summary>Creates and removes vGPUs; each sysfs write and each program run goes to the verbose stream.</summary>
        private protected VgpuManager Manager
        {
            get
            {
                var vgpu = Vgpu;
                return _manager ??= new VgpuManager(vgpu, Runner, WriteVerbose) { Recorder = Recorder, LockTimeout = LockTimeout, Notice = WriteWarning };
            }
        }

        /// <summary>Another host's record: its vGPU inventory and manager are its own.</summary>
        private protected override void HostChanged()
        {
            base.HostChanged();
            _vgpu = null;
            _manager = null;
        }
    }
}
