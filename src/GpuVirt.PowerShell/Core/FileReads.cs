using System;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>What the readers of host files share at the level of an open file: its type, the refusals of what is
    /// not a regular file or is too large, and the bounded read to its end.</summary>
    internal static class FileReads
    {
        /// <summary>
        /// The most a host file GpuVirt reads may hold (a grub file, a BLS entry, the journal, an intent): far above any
        /// real one, far below what would exhaust memory. A larger file is <see cref="ErrorIds.HostFileTooLarge"/>.
        /// </summary>
        public const long MaxFileBytes = 64L * 1024 * 1024;

        /// <summary>
        /// THE reader of whole host files: opened without blocking (<c>O_NONBLOCK</c>: a FIFO put in a file's place cannot
        /// hang the command), only a regular file is read (anything else is <see cref="ErrorIds.HostFileNotRegular"/>),
        /// and never more than <paramref name="maxBytes"/> (an endless or huge file is <see cref="ErrorIds.HostFileTooLarge"/>,
        /// read no further than its bound).
        /// </summary>
        public static byte[] ReadBytes(string fullPath, string hostPath, long maxBytes = MaxFileBytes)
        {
            var fd = LibC.open(LibC.Path(fullPath), OpenFlags.ReadOnly | OpenFlags.CloseOnExec | OpenFlags.NonBlock);
            if (fd < 0)
            {
                var errno = Marshal.GetLastWin32Error();
                if (errno == Errno.ENOENT || errno == Errno.ENOTDIR)
                    throw new GpuVirtException(ErrorIds.BootFileNotFound, ErrorKind.ObjectNotFound, $"'{hostPath}' does not exist.", hostPath);
                if (errno == Errno.EACCES || errno == Errno.EPERM)
                    throw Sysfs.RootRequired(hostPath, "read", new UnauthorizedAccessException(Errno.Describe(errno)));
                throw new GpuVirtException(ErrorIds.BootFileUnreadable, ErrorKind.ResourceUnavailable,
                    $"Cannot read '{hostPath}': {Errno.Describe(errno)} (errno {errno.ToString(CultureInfo.InvariantCulture)}).", hostPath);
            }
            try
            {
                var type = FileType(fd);
                if (type == FileTypeDirectory)
                    throw new GpuVirtException(ErrorIds.BootFileUnreadable, ErrorKind.InvalidData, $"'{hostPath}' is a directory, not a file.", hostPath);
                if (type != FileTypeRegular) throw NotRegular(hostPath, type);
                return ReadToEnd(fd, hostPath, Array.Empty<byte>(), maxBytes, errno =>
                    errno == Errno.EACCES || errno == Errno.EPERM
                        ? Sysfs.RootRequired(hostPath, "read")
                        : new GpuVirtException(ErrorIds.BootFileUnreadable, ErrorKind.ResourceUnavailable,
                            $"Cannot read '{hostPath}': {Errno.Describe(errno)} (errno {errno.ToString(CultureInfo.InvariantCulture)}).", hostPath));
            }
            finally
            {
                LibC.close(fd);
            }
        }

        /// <summary>A whole UTF-8 text file through <see cref="ReadBytes"/> (the module's own files, mdevctl's definitions).</summary>
        public static string ReadUtf8(string fullPath, string hostPath, long maxBytes = MaxFileBytes)
        {
            var text = Encoding.UTF8.GetString(ReadBytes(fullPath, hostPath, maxBytes));
            // As File.ReadAllText reads: a byte order mark is no part of the text.
            return text.Length > 0 && text[0] == '\uFEFF' ? text.Substring(1) : text;
        }

        internal const int FileTypeRegular = 0x8000;
        internal const int FileTypeDirectory = 0x4000;

        /// <summary>The file type bits (<c>S_IFMT</c>) of an open file, through the runtime's own fstat.</summary>
        internal static int FileType(int fd)
        {
            var buffer = new byte[512];
            // FileStatus: Flags, Mode, Uid, Gid (32-bit each); Mode carries the S_IFMT bits as Linux numbers them.
            if (LibC.SystemNative_FStat((IntPtr)fd, buffer) != 0) return 0;
            return BitConverter.ToInt32(buffer, 4) & 0xf000;
        }

        internal static string DescribeType(int type) => type switch
        {
            0x1000 => "a FIFO (named pipe)",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0xc000 => "a socket",
            0xa000 => "a symbolic link",
            0x4000 => "a directory",
            _ => "not a regular file",
        };

        internal static GpuVirtException NotRegular(string hostPath, int type) =>
            new GpuVirtException(ErrorIds.HostFileNotRegular, ErrorKind.InvalidData,
                $"'{hostPath}' is {DescribeType(type)}, not a regular file: GpuVirt reads only regular files there and left it unread. " +
                "Put the real file back (something replaced it).", hostPath);

        internal static GpuVirtException TooLarge(string hostPath, long maxBytes) =>
            new GpuVirtException(ErrorIds.HostFileTooLarge, ErrorKind.InvalidData,
                $"'{hostPath}' holds more than {(maxBytes / 1024).ToString(CultureInfo.InvariantCulture)} KiB, more than such a file can sensibly hold: " +
                "GpuVirt stopped reading it. Look at what the file is (an endless file or a runaway writer in its place).", hostPath);

        /// <summary>
        /// Reads an open file to its end after the bytes already read (<paramref name="first"/>), never past
        /// <paramref name="maxBytes"/> (<see cref="ErrorIds.HostFileTooLarge"/>); a failed read is <paramref name="failed"/>'s error for its errno.
        /// </summary>
        internal static byte[] ReadToEnd(int fd, string path, byte[] first, long maxBytes, Func<int, GpuVirtException> failed)
        {
            using (var content = new MemoryStream())
            {
                content.Write(first, 0, first.Length);
                var buffer = new byte[65536];
                while (true)
                {
                    var n = LibC.read(fd, buffer, (IntPtr)buffer.Length).ToInt64();
                    if (n < 0)
                    {
                        var errno = Marshal.GetLastWin32Error();
                        if (errno == Errno.EINTR) continue;
                        throw failed(errno);
                    }
                    if (n == 0) return content.ToArray();
                    if (content.Length + n > maxBytes) throw TooLarge(path, maxBytes);
                    content.Write(buffer, 0, (int)n);
                }
            }
        }
    }
}
