using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace GpuVirt.Core
{
    /// <summary>
    /// An exclusive <c>flock(2)</c> on <c>/run/lock/gpuvirt-vgpu.lock</c> under the host root, held while one command
    /// checks a type's free instances and creates a device, so that two commands racing for the last instance cannot
    /// both pass the check: the second waits, then sees the count the first one left. The kernel drops the lock when
    /// the holder exits, however it exits.
    /// </summary>
    public sealed class VgpuLock : IDisposable
    {
        public const string HostPath = "/run/lock/gpuvirt-vgpu.lock";

        private const int O_RDWR = 0x2;
        private const int O_CREAT = 0x40;
        private const int O_CLOEXEC = 0x80000;
        private const int LOCK_EX = 2;
        private const int LOCK_NB = 4;
        private const int LOCK_UN = 8;
        private const int EWOULDBLOCK = 11;

        private int _fd;

        private VgpuLock(int fd)
        {
            _fd = fd;
        }

        /// <summary>Takes the lock, waiting as long as another command holds it; <paramref name="waiting"/> is told when it has to wait.</summary>
        public static VgpuLock Acquire(HostRoot root, CancellationToken cancellationToken, Action<string>? waiting = null) =>
            Acquire(root, HostPath, "creating a vGPU", cancellationToken, waiting);

        /// <summary>
        /// The same exclusive flock on another lock file under the root (<paramref name="hostPath"/>); <paramref name="purpose"/>
        /// says in the waiting and stopped messages what the holder is doing ("writing the change journal").
        /// </summary>
        public static VgpuLock Acquire(HostRoot root, string hostPath, string purpose, CancellationToken cancellationToken, Action<string>? waiting = null)
        {
            var path = root.Resolve(hostPath);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(hostPath, "create", e);
            }
            var fd = LibC.open(LibC.Path(path), O_RDWR | O_CREAT | O_CLOEXEC, Convert.ToInt32("644", 8));
            if (fd < 0) throw Failed(Marshal.GetLastWin32Error(), "open", hostPath);
            if (LibC.flock(fd, LOCK_EX | LOCK_NB) == 0) return new VgpuLock(fd);
            var errno = Marshal.GetLastWin32Error();
            if (errno != EWOULDBLOCK)
            {
                LibC.close(fd);
                throw Failed(errno, "lock", hostPath);
            }

            waiting?.Invoke($"Waiting for another command that is {purpose} to finish (lock '{hostPath}').");
            var abandoned = 0;
            var wait = Task.Run(() =>
            {
                var rc = LibC.flock(fd, LOCK_EX);
                var err = rc == 0 ? 0 : Marshal.GetLastWin32Error();
                // A caller that gave up (Ctrl+C) leaves the descriptor to this task: close it, which drops the lock.
                if (Interlocked.CompareExchange(ref abandoned, 1, 0) != 0) LibC.close(fd);
                return err;
            });
            try
            {
                wait.Wait(cancellationToken);
            }
            catch (OperationCanceledException e)
            {
                if (Interlocked.CompareExchange(ref abandoned, 1, 0) != 0) LibC.close(fd);
                throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped,
                    $"Stopped while waiting for another command to finish {purpose}.", hostPath, e);
            }
            Interlocked.Exchange(ref abandoned, 2);
            if (wait.Result != 0)
            {
                LibC.close(fd);
                throw Failed(wait.Result, "lock", hostPath);
            }
            return new VgpuLock(fd);
        }

        private static GpuVirtException Failed(int errno, string what, string hostPath) =>
            errno == 13 || errno == 1
                ? Sysfs.RootRequired(hostPath, what)
                : new GpuVirtException(ErrorIds.VgpuLockFailed, ErrorKind.ResourceUnavailable,
                    $"Cannot {what} '{hostPath}': {Errno.Describe(errno)} (errno {errno}).", hostPath);

        public void Dispose()
        {
            var fd = Interlocked.Exchange(ref _fd, -1);
            if (fd < 0) return;
            LibC.flock(fd, LOCK_UN);
            LibC.close(fd);
        }

    }
}
