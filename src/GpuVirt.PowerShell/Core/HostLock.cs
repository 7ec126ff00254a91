using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;

namespace GpuVirt.Core
{
    /// <summary>
    /// The host's one lock: an exclusive <c>flock(2)</c> on <c>/run/lock/gpuvirt.lock</c> under the host root, held by
    /// every command for the whole of a read-modify-write of host state (a boot file and its record, a vGPU's free
    /// instances, a guest definition, a device's assignment), so that a second command waits, then re-reads what the
    /// first one left. The kernel drops the lock when the holder exits, however it exits.
    /// </summary>
    /// <remarks>
    /// The path is resolved inside the root (an image whose <c>/run</c> is an absolute link never locks the running
    /// host's file). The wait is bounded (<see cref="DefaultTimeout"/>, or the caller's): a holder that never lets go
    /// ends in <see cref="ErrorIds.HostLockTimedOut"/>, naming the file. The lock is re-entrant on one thread: a step
    /// that takes it while its caller already holds it goes straight on; another thread of the same process (another
    /// runspace) waits like another process would, because each holder opens its own file description.
    /// </remarks>
    internal sealed class HostLock : IDisposable
    {
        public const string HostPath = "/run/lock/gpuvirt.lock";

        /// <summary>How long a command waits for another one to finish when the caller names no bound.</summary>
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

        private const int LOCK_EX = 2;
        private const int LOCK_NB = 4;
        private const int LOCK_UN = 8;

        private static readonly object Gate = new object();

        /// <summary>Locks this process holds, by the full path of their file.</summary>
        private static readonly Dictionary<string, Holder> Held = new Dictionary<string, Holder>(StringComparer.Ordinal);

        private sealed class Holder
        {
            public int Fd;
            public int Count;
            public int ThreadId;
        }

        private readonly string _path;
        private int _released;

        private HostLock(string path)
        {
            _path = path;
        }

        /// <summary>The file the lock is taken on, resolved inside the root.</summary>
        public static string PathFor(HostRoot root) => root.Resolve(HostPath);

        /// <summary>Whether this thread holds the lock of the root now.</summary>
        public static bool IsHeld(HostRoot root)
        {
            lock (Gate)
            {
                return Held.TryGetValue(PathFor(root), out var h) && h.ThreadId == Environment.CurrentManagedThreadId;
            }
        }

        /// <summary>
        /// Takes the lock, waiting at most <paramref name="timeout"/> (null: <see cref="DefaultTimeout"/>) for another
        /// command to let go; <paramref name="waiting"/> is told when it has to wait, and <paramref name="purpose"/>
        /// (e.g. "change the kernel command line") goes into the messages.
        /// </summary>
        public static HostLock Acquire(HostRoot root, string purpose, CancellationToken cancellationToken = default,
            TimeSpan? timeout = null, Action<string>? waiting = null)
        {
            var path = PathFor(root);
            return AcquireFile(path, HostPath, purpose, cancellationToken, timeout, waiting, () => CreateDirectory(root, path));
        }

        private static void CreateDirectory(HostRoot root, string path)
        {
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(HostPath, "create", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(ErrorIds.HostLockFailed, ErrorKind.ResourceUnavailable,
                    $"Cannot create the directory of the host lock '{HostPath}' under '{root.Directory}': {e.Message}", HostPath, e);
            }
        }

        /// <summary>
        /// Whether this thread holds the lock on <paramref name="path"/> (a file taken with <see cref="AcquireFile"/>).
        /// </summary>
        public static bool IsHeldFile(string path)
        {
            lock (Gate)
            {
                return Held.TryGetValue(path, out var h) && h.ThreadId == Environment.CurrentManagedThreadId;
            }
        }

        /// <summary>
        /// Takes an exclusive <c>flock</c> on the file <paramref name="path"/> (created when missing, after
        /// <paramref name="prepare"/> made its directory), with the same bounded wait and re-entrance as the host lock;
        /// <paramref name="shown"/> is how the messages name it. A file that this user may not open for writing is
        /// locked through a read-only descriptor (flock needs no write access).
        /// </summary>
        internal static HostLock AcquireFile(string path, string shown, string purpose, CancellationToken cancellationToken,
            TimeSpan? timeout, Action<string>? waiting, Action prepare)
        {
            var thread = Environment.CurrentManagedThreadId;
            lock (Gate)
            {
                if (Held.TryGetValue(path, out var mine) && mine.ThreadId == thread)
                {
                    mine.Count++;
                    return new HostLock(path);
                }
            }

            prepare();
            // O_NOFOLLOW: the last component was resolved inside the root already; a link planted there since is refused.
            var fd = LibC.open(LibC.Path(path), OpenFlags.ReadWrite | OpenFlags.Create | OpenFlags.CloseOnExec | OpenFlags.NoFollow, Convert.ToInt32("644", 8));
            if (fd < 0 && Marshal.GetLastWin32Error() == Errno.EACCES)
            {
                fd = LibC.open(LibC.Path(path), OpenFlags.ReadOnly | OpenFlags.CloseOnExec | OpenFlags.NoFollow, 0);
            }
            if (fd < 0) throw Failed(Marshal.GetLastWin32Error(), "open", shown);
            if (LibC.flock(fd, LOCK_EX | LOCK_NB) != 0)
            {
                var errno = Marshal.GetLastWin32Error();
                if (errno != Errno.EWOULDBLOCK)
                {
                    LibC.close(fd);
                    throw Failed(errno, "lock", shown);
                }
                Wait(fd, shown, purpose, timeout ?? DefaultTimeout, cancellationToken, waiting);
            }
            lock (Gate)
            {
                Held[path] = new Holder { Fd = fd, Count = 1, ThreadId = thread };
            }
            return new HostLock(path);
        }

        /// <summary>
        /// Waits for the lock in a blocking <c>flock</c> on a pool thread (so the kernel queues this command behind the
        /// holder, visible in <c>/proc/locks</c>), bounded by <paramref name="timeout"/> and Ctrl+C. A caller that gives
        /// up leaves the descriptor to that thread, which closes it as soon as its <c>flock</c> returns: the lock is
        /// never kept by a command that stopped waiting.
        /// </summary>
        private static void Wait(int fd, string shown, string purpose, TimeSpan timeout, CancellationToken cancellationToken, Action<string>? waiting)
        {
            waiting?.Invoke($"Waiting for another GpuVirt command to finish before this one can {purpose} (lock '{shown}', at most {Seconds(timeout)}).");
            var abandoned = 0;
            var wait = System.Threading.Tasks.Task.Run(() =>
            {
                int rc, err;
                do
                {
                    rc = LibC.flock(fd, LOCK_EX);
                    err = rc == 0 ? 0 : Marshal.GetLastWin32Error();
                }
                while (rc != 0 && err == Errno.EINTR);
                if (Interlocked.CompareExchange(ref abandoned, 1, 0) != 0) LibC.close(fd);
                return err;
            });
            bool done;
            try
            {
                done = wait.Wait((int)Math.Min(int.MaxValue, timeout.TotalMilliseconds), cancellationToken);
            }
            catch (OperationCanceledException e)
            {
                if (Interlocked.CompareExchange(ref abandoned, 1, 0) != 0) LibC.close(fd);
                throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped,
                    $"Stopped while waiting for another GpuVirt command to finish (lock '{shown}'); nothing was changed.", shown, e);
            }
            if (!done)
            {
                if (Interlocked.CompareExchange(ref abandoned, 1, 0) != 0) LibC.close(fd);
                throw new GpuVirtException(ErrorIds.HostLockTimedOut, ErrorKind.ResourceBusy,
                    $"Another GpuVirt command held the lock '{shown}' for longer than {Seconds(timeout)}, so this one could not {purpose}; nothing was changed. " +
                    $"Find the holder with 'fuser {shown}' (or lslocks), let it finish, and run the command again ($GpuVirtLockTimeout sets the bound in seconds).", shown);
            }
            Interlocked.Exchange(ref abandoned, 2);
            if (wait.Result != 0)
            {
                LibC.close(fd);
                throw Failed(wait.Result, "lock", shown);
            }
        }

        private static string Seconds(TimeSpan t) =>
            t.TotalSeconds >= 1 ? $"{t.TotalSeconds:0.#} s" : $"{t.TotalMilliseconds:0} ms";

        private static GpuVirtException Failed(int errno, string what, string shown) =>
            errno == Errno.EACCES || errno == Errno.EPERM
                ? Sysfs.RootRequired(shown, what)
                : new GpuVirtException(ErrorIds.HostLockFailed, ErrorKind.ResourceUnavailable,
                    $"Cannot {what} the lock '{shown}': {Errno.Describe(errno)} (errno {errno}).", shown);

        /// <summary>Lets go (the last release of a re-entered lock drops it).</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            int fd;
            lock (Gate)
            {
                if (!Held.TryGetValue(_path, out var h)) return;
                if (--h.Count > 0) return;
                Held.Remove(_path);
                fd = h.Fd;
            }
            LibC.flock(fd, LOCK_UN);
            LibC.close(fd);
        }
    }
}
