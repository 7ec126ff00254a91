using System;
using System.Threading;

namespace GpuVirt.Core.Planning
{
    /// <summary>The host's one lock (<see cref="HostLock"/>: <c>/run/lock/gpuvirt.lock</c> under the root, re-entrant within a command).</summary>
    internal sealed class HostLockProvider : IHostLockProvider
    {
        public IDisposable Acquire(ChangeHost host, TimeSpan? timeout, CancellationToken cancellationToken, Action<string>? waiting) =>
            HostLock.Acquire(host.Root, "change this host", cancellationToken, timeout, waiting);
    }
}
