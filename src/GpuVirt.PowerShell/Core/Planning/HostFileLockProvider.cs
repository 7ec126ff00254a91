using System;
using System.Threading;

namespace GpuVirt.Core.Planning
{
    /// <summary>The host's lock as a file lock: <c>/run/lock/gpuvirt.lock</c> under the host root (<see cref="VgpuLock"/>).</summary>
    public sealed class HostFileLockProvider : IHostLockProvider
    {
        public const string HostPath = "/run/lock/gpuvirt.lock";

        public IDisposable Acquire(ChangeHost host, CancellationToken cancellationToken, Action<string>? waiting) =>
            VgpuLock.Acquire(host.Root, HostPath, "changing this host", cancellationToken, waiting);
    }
}
