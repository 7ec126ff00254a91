using System;
using System.Threading;

namespace GpuVirt.Core.Planning
{
    /// <summary>Takes the host's lock for the time a plan is re-checked and applied.</summary>
    internal interface IHostLockProvider
    {
        /// <summary>
        /// Waits for the lock, at most <paramref name="timeout"/> (null: <see cref="HostLock.DefaultTimeout"/>) and
        /// until <paramref name="cancellationToken"/>; disposing the result releases it.
        /// </summary>
        IDisposable Acquire(ChangeHost host, TimeSpan? timeout, CancellationToken cancellationToken, Action<string>? waiting);
    }
}
