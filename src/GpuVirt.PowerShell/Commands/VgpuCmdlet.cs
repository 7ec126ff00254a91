using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet about vGPU types and devices: the host's vGPU inventory, and the planner of its changes.</summary>
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

        /// <summary>The vGPU writes; each sysfs write and each program run goes to the verbose stream.</summary>
        private protected VgpuManager Manager
        {
            get
            {
                var vgpu = Vgpu;
                return _manager ??= new VgpuManager(vgpu, Runner, WriteVerbose) { LockTimeout = LockTimeout, Notice = WriteWarning };
            }
        }

        /// <summary>Another host's record: its vGPU inventory and manager are its own.</summary>
        private protected override void HostChanged()
        {
            base.HostChanged();
            _vgpu = null;
            _manager = null;
        }

        /// <summary>Plans the vGPU changes of this host; the guests' references are read through <paramref name="connect"/> (or virsh's default on the live host).</summary>
        private protected VgpuPlanner Planner(string? connect = null) =>
            new VgpuPlanner(new ChangeHost(HostSystem, connect), Manager, () => new Virsh(Runner, connect, StopToken), WriteVerbose);
    }
}
