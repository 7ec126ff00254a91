using System;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>
    /// The C library calls the core makes, in one place. netstandard2.0 has no API for file modes, owners, links,
    /// flock or errno-preserving sysfs writes, and sysfs reads are cheaper without an exception per absent attribute.
    /// </summary>
    internal static class LibC
    {
        /// <summary>A path as the C library takes it: UTF-8, NUL-terminated.</summary>
        public static byte[] Path(string path)
        {
            var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
            Encoding.UTF8.GetBytes(path, 0, path.Length, bytes, 0);
            return bytes;
        }

        [ThreadStatic]
        private static byte[]? _pathBuffer;

        /// <summary>
        /// The same in a buffer of this thread's, reused by the next call on the thread: for a path passed straight to
        /// one call (a directory opened for each of thousands of functions), with no array made per path.
        /// </summary>
        public static byte[] TransientPath(string path)
        {
            var length = Encoding.UTF8.GetMaxByteCount(path.Length) + 1;
            var buffer = _pathBuffer;
            if (buffer is null || buffer.Length < length) _pathBuffer = buffer = new byte[Math.Max(length, 512)];
            var n = Encoding.UTF8.GetBytes(path, 0, path.Length, buffer, 0);
            buffer[n] = 0;
            return buffer;
        }

        [DllImport("libc", SetLastError = true)]
        public static extern int open(byte[] path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int open(byte[] path, int flags, int mode);

        [DllImport("libc", SetLastError = true)]
        public static extern int openat(int dirfd, byte[] path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr readlinkat(int dirfd, byte[] path, byte[] buffer, IntPtr size);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr opendir(byte[] path);

        /// <summary>The next entry (a <c>struct dirent</c>: name at <see cref="DirentNameOffset"/>), or zero at the end.</summary>
        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr readdir(IntPtr dir);

        [DllImport("libc", SetLastError = true)]
        public static extern int closedir(IntPtr dir);

        /// <summary>The raw <c>syscall(2)</c>, for <c>getdents64</c>, which the C library does not wrap on older glibc.</summary>
        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr syscall(IntPtr number, int fd, byte[] buffer, IntPtr count);

        /// <summary>Where <c>d_name</c> starts in glibc's and musl's 64-bit <c>struct dirent</c> (ino, off, reclen, type).</summary>
        public const int DirentNameOffset = 19;

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr read(int fd, [In, Out] byte[] buffer, IntPtr count);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr write(int fd, byte[] buffer, IntPtr count);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int flock(int fd, int operation);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr readlink(byte[] path, byte[] buffer, IntPtr size);

        [DllImport("libc", SetLastError = true)]
        public static extern int access(byte[] path, int mode);

        [DllImport("libc", SetLastError = true)]
        public static extern int symlink(byte[] target, byte[] linkPath);

        [DllImport("libc", SetLastError = true)]
        public static extern int statx(int dirfd, byte[] path, int flags, uint mask, byte[] buffer);

        /// <summary>The .NET runtime's own portable lstat, for kernels without statx (RHEL 7).</summary>
        [DllImport("libSystem.Native", EntryPoint = "SystemNative_LStat", SetLastError = true)]
        public static extern int SystemNative_LStat(byte[] path, byte[] output);

        /// <summary>The runtime's fstat of an open file (the same FileStatus as <see cref="SystemNative_LStat"/>).</summary>
        [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat", SetLastError = true)]
        public static extern int SystemNative_FStat(IntPtr fd, byte[] output);

        [DllImport("libc", SetLastError = true)]
        public static extern int chmod(byte[] path, int mode);

        [DllImport("libc", SetLastError = true)]
        public static extern int chown(byte[] path, uint owner, uint group);

        [DllImport("libc", SetLastError = true)]
        public static extern int rename(byte[] from, byte[] to);

        /// <summary><c>link(2)</c>: a new name for a file, refused (EEXIST) when the name is taken.</summary>
        [DllImport("libc", SetLastError = true)]
        public static extern int link(byte[] existing, byte[] newPath);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr llistxattr(byte[] path, byte[] list, IntPtr size);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr lgetxattr(byte[] path, byte[] name, byte[] value, IntPtr size);

        [DllImport("libc", SetLastError = true)]
        public static extern int lsetxattr(byte[] path, byte[] name, byte[] value, IntPtr size, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern IntPtr mkdtemp(byte[] template);

        [DllImport("libc")]
        public static extern IntPtr strerror(int errnum);

        [DllImport("libc", SetLastError = true)]
        public static extern int kill(int pid, int signal);

        [DllImport("libc")]
        public static extern uint geteuid();
    }
}
