using GpuVirt.Core;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet about vGPU types and devices: the host's vGPU inventory, and the planner of its changes.</summary>
    public abstract class VgpuCmdlet : HostCmdlet
    {
        private VgpuInventory? _vgpu;
        private VgpuManager? _manager;

        protected VgpuInventory Vgpu => _vgpu ??= new VgpuInventory(HostSystem, Inventory);

        /// <summary>The vGPU writes; each sysfs write and each program run goes to the verbose stream.</summary>
        protected VgpuManager Manager => _manager ??= new VgpuManager(Vgpu, Runner, WriteVerbose) { LockTimeout = LockTimeout, Notice = WriteWarning };

        /// <summary>Plans the vGPU changes of this host; the guests' references are read through <paramref name="connect"/> (or virsh's default on the live host).</summary>
        protected VgpuPlanner Planner(string? connect = null) =>
            new VgpuPlanner(new ChangeHost(HostSystem, connect), Manager, () => new Virsh(Runner, connect, StopToken), WriteVerbose);
    }
}
