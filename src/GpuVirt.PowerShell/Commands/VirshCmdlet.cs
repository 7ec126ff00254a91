using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet that talks to libvirt through virsh: <c>-Connect</c>, else <c>LIBVIRT_DEFAULT_URI</c>, else virsh's default.</summary>
    public abstract class VirshCmdlet : GpuVirtCmdlet
    {
        private Virsh? _virsh;

        /// <summary>The libvirt connection URI (<c>qemu:///system</c>), passed to virsh as <c>-c</c>.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Connect { get; set; }

        private protected Virsh Virsh => _virsh ??= new Virsh(Runner, Connect, StopToken);
    }

    /// <summary>A cmdlet that reads the host through its root (<c>-Root</c>) and talks to libvirt (<c>-Connect</c>).</summary>
    public abstract class HostVirshCmdlet : HostCmdlet
    {
        private Virsh? _virsh;

        /// <summary>The libvirt connection URI (<c>qemu:///system</c>), passed to virsh as <c>-c</c>.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Connect { get; set; }

        private protected Virsh Virsh => _virsh ??= new Virsh(Runner, Connect, StopToken);

        private protected override string? ConnectUri => Virsh.Uri;
    }
}
