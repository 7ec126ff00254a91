using System;
using System.Threading;

namespace GpuVirt.Core.Planning
{
    /// <summary>Takes the host's lock for the time a plan is re-checked and applied.</summary>
    public interface IHostLockProvider
    {
        /// <summary>Waits (bounded by <paramref name="cancellationToken"/>) for the lock; disposing the result releases it.</summary>
        IDisposable Acquire(ChangeHost host, CancellationToken cancellationToken, Action<string>? waiting);
    }
}
