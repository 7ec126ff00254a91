using System;
using System.Threading;

namespace GpuVirt.Core
{
    /// <summary>
    /// An exclusive <c>flock(2)</c> on <c>/run/lock/gpuvirt-vgpu.lock</c> under the host root, held while one command
    /// checks a type's free instances and creates a device, so that two commands racing for the last instance cannot
    /// both pass the check: the second waits, then sees the count the first one left.
    /// </summary>
    public static class VgpuLock
    {
        public const string HostPath = "/run/lock/gpuvirt-vgpu.lock";

        /// <summary>Takes the lock, waiting as long as another command holds it; <paramref name="waiting"/> is told when it has to wait.</summary>
        public static FileLock Acquire(HostRoot root, CancellationToken cancellationToken, Action<string>? waiting = null) =>
            FileLock.Acquire(root, HostPath, "creating a vGPU", cancellationToken, waiting);
    }
}
