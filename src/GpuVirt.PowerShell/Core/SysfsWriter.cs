using System;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>Linux errno values the kernel answers sysfs writes with.</summary>
    internal static class Errno
    {
        public const int EPERM = 1;
        public const int ENOENT = 2;
        public const int EIO = 5;
        public const int ENODEV = 19;
        public const int EACCES = 13;
        public const int EBUSY = 16;
        public const int EEXIST = 17;
        public const int EISDIR = 21;
        public const int EINVAL = 22;
        public const int ENOSPC = 28;
        public const int EROFS = 30;
        public const int EUSERS = 87;

        /// <summary>The C library's text for an errno (<c>Device or resource busy</c>).</summary>
        public static string Describe(int errno)
        {
            var p = LibC.strerror(errno);
            var text = p == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(p);
            return string.IsNullOrEmpty(text) ? "errno " + errno : text!;
        }

    }

    /// <summary>
    /// Writes a sysfs attribute the way <c>echo VALUE &gt; ATTRIBUTE</c> does — one <c>open(O_WRONLY|O_TRUNC)</c>, one
    /// <c>write</c>, one <c>close</c> — and returns the kernel's errno, so that callers can tell EBUSY from ENOSPC.
    /// The attribute must exist: nothing is created. The value is written as given (echo's newline is the caller's).
    /// </summary>
    internal static class SysfsWriter
    {
        private const int O_WRONLY = 0x1;
        private const int O_TRUNC = 0x200;
        private const int O_CLOEXEC = 0x80000;

        /// <summary>Writes <paramref name="value"/>; 0 on success, otherwise the errno.</summary>
        public static int Write(string path, string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            var fd = LibC.open(LibC.Path(path), O_WRONLY | O_TRUNC | O_CLOEXEC);
            if (fd < 0) return Marshal.GetLastWin32Error();
            try
            {
                long n;
                do
                {
                    n = LibC.write(fd, bytes, (IntPtr)bytes.Length).ToInt64();
                }
                while (n < 0 && Marshal.GetLastWin32Error() == 4); // EINTR
                if (n < 0) return Marshal.GetLastWin32Error();
                return n == bytes.Length ? 0 : Errno.EIO;
            }
            finally
            {
                // sysfs reports nothing at close; a failed close of a regular file here changes no outcome.
                LibC.close(fd);
            }
        }

        /// <summary>The error for a failed write: EACCES/EPERM/EROFS as "requires root", others with the kernel's text.</summary>
        public static GpuVirtException Failure(string path, int errno, string errorId, string what)
        {
            if (errno == Errno.EACCES || errno == Errno.EPERM) return Sysfs.RootRequired(path, "write");
            return new GpuVirtException(errorId, ErrorKind.WriteError,
                $"{what}: writing '{path}' failed: {Errno.Describe(errno)} (errno {errno}).", path);
        }


    }
}
