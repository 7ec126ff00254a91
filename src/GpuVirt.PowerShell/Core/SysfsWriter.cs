using System;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>
    /// Writes a sysfs attribute the way <c>echo VALUE &gt; ATTRIBUTE</c> does — one <c>open(O_WRONLY|O_TRUNC)</c>, one
    /// <c>write</c>, one <c>close</c> — and returns the kernel's errno, so that callers can tell EBUSY from ENOSPC.
    /// The attribute must exist: nothing is created. The value is written as given (echo's newline is the caller's).
    /// </summary>
    public static class SysfsWriter
    {
        /// <summary>Writes <paramref name="value"/>; 0 on success, otherwise the errno.</summary>
        public static int Write(string path, string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            var fd = LibC.open(LibC.Path(path), OpenFlags.WriteOnly | OpenFlags.Truncate | OpenFlags.CloseOnExec);
            if (fd < 0) return Marshal.GetLastWin32Error();
            try
            {
                long n;
                do
                {
                    n = LibC.write(fd, bytes, (IntPtr)bytes.Length).ToInt64();
                }
                while (n < 0 && Marshal.GetLastWin32Error() == Errno.EINTR);
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
