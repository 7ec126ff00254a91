using System;
using System.Runtime.InteropServices;

namespace GpuVirt.Core
{
    /// <summary>The Linux errno values the module tells apart (the same on every architecture Linux runs .NET on).</summary>
    internal static class Errno
    {
        public const int EPERM = 1;
        public const int ENOENT = 2;
        public const int EINTR = 4;
        public const int EIO = 5;
        public const int E2BIG = 7;
        public const int EAGAIN = 11;
        public const int EWOULDBLOCK = EAGAIN;
        public const int EACCES = 13;
        public const int EBUSY = 16;
        public const int EEXIST = 17;
        public const int ENODEV = 19;
        public const int ENOTDIR = 20;
        public const int EISDIR = 21;
        public const int EINVAL = 22;
        public const int ENOSPC = 28;
        public const int EROFS = 30;
        public const int ENOSYS = 38;
        public const int EUSERS = 87;
        public const int ENOTSUP = 95;

        /// <summary>The C library's text for an errno (<c>Device or resource busy</c>).</summary>
        public static string Describe(int errno)
        {
            var p = LibC.strerror(errno);
            var text = p == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(p);
            return string.IsNullOrEmpty(text) ? "errno " + errno : text!;
        }
    }
}
