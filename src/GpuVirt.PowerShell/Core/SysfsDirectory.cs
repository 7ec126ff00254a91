using System;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>
    /// One sysfs directory held open while its attributes are read relative to it (<c>openat</c>, <c>readlinkat</c>):
    /// the kernel walks the directory's path once instead of once per attribute, and the attribute names are passed as
    /// bytes made once. Reads are as tolerant as <see cref="Sysfs.TryReadText"/>: a missing or unreadable attribute is null.
    /// </summary>
    internal sealed class SysfsDirectory : IDisposable
    {
        private const int DirentHeader = 19;         // struct linux_dirent64: ino, off, reclen, type, then the name

        /// <summary><c>getdents64</c>: 217 on x86-64, 61 on arm64 (the generic table); other architectures list nothing.</summary>
        private static readonly long GetDents64 =
            RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 217
            : RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 61 : -1;


        [ThreadStatic]
        private static byte[]? _buffer;

        [ThreadStatic]
        private static byte[]? _listing;

        [ThreadStatic]
        private static SysfsDirectory? _listingOwner;

        private int _fd;
        private int _listed = -1;

        private SysfsDirectory(string path, int fd)
        {
            Path = path;
            _fd = fd;
        }

        /// <summary>The directory's path as it was opened.</summary>
        public string Path { get; }

        /// <summary>Opens a directory; null when it does not exist or is not a directory.</summary>
        public static SysfsDirectory? TryOpen(string path)
        {
            var fd = LibC.open(LibC.TransientPath(path), OpenFlags.ReadOnly | OpenFlags.CloseOnExec | OpenFlags.Directory);
            return fd < 0 ? null : new SysfsDirectory(path, fd);
        }

        /// <summary>
        /// Whether the directory has an entry of that name, from one <c>getdents64</c> of the whole directory: a device
        /// directory has a few dozen entries, and asking once is cheaper than a failed open for each absent attribute.
        /// True when the directory could not be listed in one call (the read then says).
        /// </summary>
        public bool Has(byte[] name)
        {
            if (_listed == -1)
            {
                _listed = List();
                _listingOwner = this;
            }
            // Another directory on this thread has listed into the buffer since: nothing is known any more.
            else if (_listingOwner != this) _listed = -2;
            if (_listed < 0) return true;
            var listing = _listing!;
            var length = name.Length - 1; // without the NUL
            for (var offset = 0; offset < _listed;)
            {
                var reclen = listing[offset + 16] | (listing[offset + 17] << 8);
                if (reclen == 0) return true;
                var at = offset + DirentHeader;
                var i = 0;
                while (i < length && listing[at + i] == name[i]) i++;
                if (i == length && listing[at + i] == 0) return true;
                offset += reclen;
            }
            return false;
        }

        private int List()
        {
            if (GetDents64 < 0 || !BitConverter.IsLittleEndian) return -2;
            var listing = _listing ??= new byte[32768];
            var n = (int)LibC.syscall((IntPtr)GetDents64, _fd, listing, (IntPtr)listing.Length).ToInt64();
            // A call that leaves room for another entry returned the whole directory; a full one may not have.
            return n < 0 || n > listing.Length - 512 ? -2 : n;
        }

        /// <summary>An attribute name as the C library takes it; made once per name, in a static field of the reader.</summary>
        public static byte[] Name(string name) => LibC.Path(name);

        /// <summary>The trimmed text of an attribute, or null.</summary>
        public string? Text(byte[] name) => Text(name, out _);

        /// <summary>The same, with the errno when it could not be read (0 when it was; ENOENT when there is no such entry).</summary>
        public string? Text(byte[] name, out int errno)
        {
            var n = Read(name, out var buffer, out errno);
            if (n < 0) return null;
            if (n == buffer.Length) return LargeText(name);
            var (start, length) = Trimmed(buffer, n);
            return Encoding.UTF8.GetString(buffer, start, length);
        }

        /// <summary>A <c>0x10de</c>-style hex attribute parsed without making a string; null when missing or malformed.</summary>
        public uint? Hex(byte[] name)
        {
            var n = Read(name, out var buffer, out _);
            if (n < 0 || n == buffer.Length) return null;
            var (start, length) = Trimmed(buffer, n);
            if (length > 2 && buffer[start] == (byte)'0' && (buffer[start + 1] | 0x20) == (byte)'x')
            {
                start += 2;
                length -= 2;
            }
            if (length == 0 || length > 8) return null;
            uint value = 0;
            for (var i = start; i < start + length; i++)
            {
                var c = buffer[i];
                int digit = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
                if (digit < 0) return null;
                value = (value << 4) | (uint)digit;
            }
            return value;
        }

        /// <summary>A decimal attribute (an optional leading sign); null when missing or malformed.</summary>
        public int? Int(byte[] name)
        {
            var n = Read(name, out var buffer, out _);
            if (n < 0 || n == buffer.Length) return null;
            var (start, length) = Trimmed(buffer, n);
            return Decimal(buffer, start, length, allowSign: true);
        }

        /// <summary>
        /// The text of an attribute, or null when it is missing, empty or reads exactly <paramref name="none"/>
        /// (<c>driver_override</c> reads <c>(null)</c> when unset): no string is made for that word.
        /// </summary>
        public string? TextUnless(byte[] name, byte[] none)
        {
            var n = Read(name, out var buffer, out _);
            if (n < 0) return null;
            if (n == buffer.Length) return LargeText(name);
            var (start, length) = Trimmed(buffer, n);
            if (length == 0) return null;
            if (length == none.Length - 1)
            {
                var i = 0;
                while (i < length && buffer[start + i] == none[i]) i++;
                if (i == length) return null;
            }
            return Encoding.UTF8.GetString(buffer, start, length);
        }

        /// <summary>A link whose target ends in a number (<c>iommu_group</c> → <c>../../../kernel/iommu_groups/12</c>), or null.</summary>
        public int? LinkNumber(byte[] name)
        {
            if (!Has(name)) return null;
            var buffer = _buffer ??= new byte[8192];
            var n = (int)LibC.readlinkat(_fd, name, buffer, (IntPtr)buffer.Length).ToInt64();
            if (n <= 0) return null;
            var end = n;
            while (end > 0 && buffer[end - 1] == (byte)'/') end--;
            var start = end;
            while (start > 0 && buffer[start - 1] != (byte)'/') start--;
            return Decimal(buffer, start, end - start, allowSign: false);
        }

        private static int? Decimal(byte[] buffer, int start, int length, bool allowSign)
        {
            if (length == 0) return null;
            var negative = false;
            if (allowSign && (buffer[start] == (byte)'-' || buffer[start] == (byte)'+'))
            {
                negative = buffer[start] == (byte)'-';
                start++;
                length--;
            }
            if (length == 0 || length > 10) return null;
            long value = 0;
            for (var i = start; i < start + length; i++)
            {
                var digit = buffer[i] - '0';
                if (digit < 0 || digit > 9) return null;
                value = value * 10 + digit;
            }
            if (negative) value = -value;
            return value < int.MinValue || value > int.MaxValue ? (int?)null : (int)value;
        }

        /// <summary>The last path element of a link's target (<c>driver</c> → <c>vfio-pci</c>), or null when it is not a link.</summary>
        public string? LinkName(byte[] name)
        {
            if (!Has(name)) return null;
            var buffer = _buffer ??= new byte[8192];
            var n = LibC.readlinkat(_fd, name, buffer, (IntPtr)buffer.Length).ToInt64();
            if (n <= 0) return null;
            var end = (int)n;
            while (end > 0 && buffer[end - 1] == (byte)'/') end--;
            var start = end;
            while (start > 0 && buffer[start - 1] != (byte)'/') start--;
            return Encoding.UTF8.GetString(buffer, start, end - start);
        }

        public void Dispose()
        {
            if (_listingOwner == this) _listingOwner = null;
            if (_fd >= 0)
            {
                LibC.close(_fd);
                _fd = -1;
            }
        }

        private int Read(byte[] name, out byte[] buffer, out int errno)
        {
            buffer = _buffer ??= new byte[8192];
            errno = 0;
            if (!Has(name))
            {
                errno = Errno.ENOENT;
                return -1;
            }
            // Without blocking: a FIFO in an attribute's place cannot hang the read (see Sysfs.TryReadUntrimmed).
            var fd = LibC.openat(_fd, name, OpenFlags.ReadOnly | OpenFlags.CloseOnExec | OpenFlags.NonBlock);
            if (fd < 0)
            {
                errno = Marshal.GetLastWin32Error();
                if (errno == Errno.EACCES || errno == Errno.EPERM) throw Sysfs.RootRequired(AttributePath(name), "read");
                return -1;
            }
            try
            {
                // sysfs hands out a whole attribute (at most a page) in one read.
                var n = (int)LibC.read(fd, buffer, (IntPtr)buffer.Length).ToInt64();
                if (n < 0)
                {
                    errno = Marshal.GetLastWin32Error();
                    if (errno == Errno.EACCES || errno == Errno.EPERM) throw Sysfs.RootRequired(AttributePath(name), "read");
                }
                // An empty read, one that would block and one that fills the buffer are what a FIFO gives: its type is asked there.
                if (n == 0 || n == buffer.Length || (n < 0 && errno == Errno.EAGAIN)) Sysfs.CheckRegular(fd, AttributePath(name));
                return n;
            }
            finally
            {
                LibC.close(fd);
            }
        }

        /// <summary>The most a text attribute may hold: a sysfs attribute is at most a page; anything far past that is no attribute.</summary>
        internal const int MaxAttributeBytes = 1024 * 1024;

        private string? LargeText(byte[] name) => Sysfs.TryReadUntrimmed(AttributePath(name), out _, MaxAttributeBytes)?.Trim();

        private string AttributePath(byte[] name) => Path.TrimEnd('/') + "/" + Encoding.UTF8.GetString(name, 0, name.Length - 1);

        private static (int Start, int Length) Trimmed(byte[] buffer, int n)
        {
            var start = 0;
            var end = n;
            while (start < end && IsSpace(buffer[start])) start++;
            while (end > start && IsSpace(buffer[end - 1])) end--;
            return (start, end - start);
        }

        private static bool IsSpace(byte b) => b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '\v' || b == '\f';
    }
}
