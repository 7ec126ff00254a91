namespace GpuVirt.Core.Planning
{
    /// <summary>The host a plan reads and changes: its root directory and, for libvirt changes, the connection URI.</summary>
    internal sealed class ChangeHost
    {
        public ChangeHost(HostRoot root, string? connect = null)
        {
            Root = root;
            Connect = connect;
        }

        public HostRoot Root { get; }

        /// <summary>The libvirt connection URI the plan talks to (null: not a libvirt change, or virsh's default).</summary>
        public string? Connect { get; }

        public override string ToString() => Connect is null ? Root.Directory : Root.Directory + " (" + Connect + ")";
    }
}
