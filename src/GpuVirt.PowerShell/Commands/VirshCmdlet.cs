using System;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet that talks to libvirt through virsh: <c>-Connect</c>, else <c>LIBVIRT_DEFAULT_URI</c>, else virsh's default.</summary>
    public abstract class VirshCmdlet : GpuVirtCmdlet
    {
        private readonly VirshConnection _connection = new VirshConnection();

        /// <summary>
        /// The libvirt connection URI (<c>qemu:///system</c>), passed to virsh as <c>-c</c>. Piped objects bind it by their
        /// Connect property; an object read with no URI (null or empty) leaves the default connection.
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        public string? Connect { get; set; }

        /// <summary>virsh for the connection of the current record (each piped object may name another).</summary>
        private protected Virsh Virsh => _connection.For(Connect, Runner, StopToken, out _);
    }

    /// <summary>A cmdlet that reads the host through its root (<c>-Root</c>) and talks to libvirt (<c>-Connect</c>).</summary>
    public abstract class HostVirshCmdlet : HostCmdlet
    {
        private readonly VirshConnection _connection = new VirshConnection();

        /// <summary>
        /// The libvirt connection URI (<c>qemu:///system</c>), passed to virsh as <c>-c</c>. Piped objects bind it by their
        /// Connect property; an object read with no URI (null or empty) leaves the default connection.
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [AllowNull]
        [AllowEmptyString]
        public string? Connect { get; set; }

        /// <summary>The URI given for the current record (on the command line or by a piped object); null for the default.</summary>
        private protected string? ConnectGiven => VirshConnection.Given(Connect);

        /// <summary>virsh for the connection of the current record; a record with another URI gets its own (and its own journal entry's URI).</summary>
        private protected Virsh Virsh
        {
            get
            {
                var virsh = _connection.For(Connect, Runner, StopToken, out var changed);
                if (changed) ConnectionChanged();
                return virsh;
            }
        }

        /// <summary>Forgets what was read through the previous connection; a subclass that keeps more overrides this and calls the base.</summary>
        private protected virtual void ConnectionChanged() => ForgetRecorder();

        private protected override string? ConnectUri => Virsh.Uri;

        private protected override string? BoundConnect
        {
            get => VirshConnection.Given(Connect);
            set => Connect = value;
        }
    }

    /// <summary>The virsh of a cmdlet, made again when the URI of the record changes.</summary>
    internal sealed class VirshConnection
    {
        private Virsh? _virsh;
        private string? _for;

        /// <summary>The URI given, null when none (null or empty: a piped object read without one).</summary>
        public static string? Given(string? connect) => string.IsNullOrWhiteSpace(connect) ? null : connect!.Trim();

        public Virsh For(string? connect, ProcessRunner runner, System.Threading.CancellationToken stop, out bool changed)
        {
            var given = Given(connect);
            changed = _virsh != null && !string.Equals(_for, given, StringComparison.Ordinal);
            if (_virsh is null || changed)
            {
                _virsh = new Virsh(runner, given, stop);
                _for = given;
            }
            return _virsh;
        }
    }
}
