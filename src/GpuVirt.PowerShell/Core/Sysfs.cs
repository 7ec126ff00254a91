using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core
{
    /// <summary>
    /// Tolerant readers of sysfs-style attribute files and links. Optional attributes that are missing or unreadable
    /// read as null; a permission error on a path the caller must have turns into a "requires root" error naming it.
    /// </summary>
    internal static class Sysfs
    {
        /// <summary>The trimmed text of an attribute, or null when it is missing or cannot be read.</summary>
        /// <remarks>
        /// Reads through open/read/close directly: most optional attributes are absent on most devices, and an
        /// exception for each would cost more than the read itself.
        /// </remarks>
        public static string? TryReadText(string path) => TryReadUntrimmed(path, out _)?.Trim();

        /// <summary>The same, with the errno when it could not be read (0 when it was).</summary>
        public static string? TryReadText(string path, out int errno) => TryReadUntrimmed(path, out errno)?.Trim();

        /// <summary>The whole text of a file as it is (an attribute with inner lines), or null when it is missing or cannot be read.</summary>
        public static string? TryReadUntrimmed(string path) => TryReadUntrimmed(path, out _);

        /// <summary>
        /// The most a text file read through these readers may hold: far above any attribute (a page) or procfs file
        /// (/proc/cpuinfo of thousands of CPUs), far below what would exhaust memory. Larger is <see cref="ErrorIds.HostFileTooLarge"/>.
        /// </summary>
        public const int MaxTextBytes = 16 * 1024 * 1024;

        /// <summary>
        /// THE tolerant reader: opened without blocking (<c>O_NONBLOCK</c>), so a FIFO put in a file's place cannot hang
        /// the command; a missing file (or a directory) is null, as an optional attribute is; a file that cannot be read
        /// for want of permission is said (<see cref="RootRequired"/>), never read as nothing; a FIFO, device or socket
        /// is <see cref="ErrorIds.HostFileNotRegular"/>; more than <paramref name="maxBytes"/> is <see cref="ErrorIds.HostFileTooLarge"/>.
        /// </summary>
        /// <remarks>
        /// The file's type is asked (fstat) only where a read cannot tell it apart from an attribute: an empty read, a read
        /// that would block, and one that fills the buffer. A FIFO with no writer reads empty; one with a writer fills
        /// the buffer or would block: each is caught there, and an ordinary attribute read pays no extra call.
        /// </remarks>
        internal static string? TryReadUntrimmed(string path, out int errno, int maxBytes = MaxTextBytes)
        {
            errno = 0;
            var fd = LibC.open(LibC.Path(path), OpenFlags.ReadOnly | OpenFlags.CloseOnExec | OpenFlags.NonBlock);
            if (fd < 0)
            {
                errno = Marshal.GetLastWin32Error();
                if (errno == Errno.EACCES || errno == Errno.EPERM) throw RootRequired(path, "read");
                return null;
            }
            try
            {
                // sysfs hands out a whole attribute (at most a page) in one read; a larger file is read on to its end.
                var buffer = ReadBuffer ??= new byte[8192];
                var n = LibC.read(fd, buffer, (IntPtr)buffer.Length).ToInt64();
                if (n < 0)
                {
                    errno = Marshal.GetLastWin32Error();
                    if (errno == Errno.EAGAIN) CheckRegular(fd, path);
                    if (errno == Errno.EACCES || errno == Errno.EPERM) throw RootRequired(path, "read");
                    return null;
                }
                if (n == 0 || n == buffer.Length) CheckRegular(fd, path);
                if (n == buffer.Length) return ReadRest(fd, path, buffer, maxBytes);
                return Encoding.UTF8.GetString(buffer, 0, (int)n);
            }
            finally
            {
                LibC.close(fd);
            }
        }

        /// <summary>Refuses an open file that is a FIFO, a device or a socket (<see cref="ErrorIds.HostFileNotRegular"/>).</summary>
        internal static void CheckRegular(int fd, string path)
        {
            var type = FileReads.FileType(fd);
            if (type != 0 && type != FileReads.FileTypeRegular && type != FileReads.FileTypeDirectory) throw FileReads.NotRegular(path, type);
        }

        /// <summary>The rest of a file whose first read filled <paramref name="first"/>, to its end or its bound.</summary>
        private static string ReadRest(int fd, string path, byte[] first, int maxBytes)
        {
            var bytes = FileReads.ReadToEnd(fd, path, first, maxBytes, errno =>
                new GpuVirtException(ErrorIds.SysfsReadFailed, ErrorKind.ResourceUnavailable,
                    $"Cannot read '{path}': {Errno.Describe(errno)} (errno {errno.ToString(CultureInfo.InvariantCulture)}).", path));
            return Encoding.UTF8.GetString(bytes);
        }

        [ThreadStatic]
        private static byte[]? ReadBuffer;

        [ThreadStatic]
        private static byte[]? LinkBuffer;


        /// <summary>The trimmed text of an attribute the caller needs; a missing or unreadable file is an error.</summary>
        public static string ReadText(string path)
        {
            var text = TryReadUntrimmed(path, out var errno);
            if (text != null) return text.Trim();
            throw new GpuVirtException(ErrorIds.SysfsReadFailed, ErrorKind.ResourceUnavailable,
                $"Cannot read '{path}': {Errno.Describe(errno)} (errno {errno.ToString(CultureInfo.InvariantCulture)}).", path);
        }

        /// <summary>Parses <c>0x10de</c>-style hex attributes; null when missing or malformed.</summary>
        public static uint? TryReadHex(string path)
        {
            var text = TryReadText(path);
            return ParseHex(text);
        }

        public static uint? ParseHex(string? text)
        {
            if (text is null) return null;
            var s = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text.Substring(2) : text;
            return uint.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v) ? v : (uint?)null;
        }

        public static int? TryReadInt(string path)
        {
            var text = TryReadText(path);
            return text != null && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : (int?)null;
        }

        /// <summary>The target of a symbolic link as stored (often relative), or null when the path is not a link.</summary>
        public static string? TryReadLink(string path)
        {
            var buffer = LinkBuffer ??= new byte[4096];
            var n = LibC.readlink(LibC.Path(path), buffer, (IntPtr)buffer.Length).ToInt64();
            if (n <= 0) return null;
            return Encoding.UTF8.GetString(buffer, 0, (int)n);
        }

        /// <summary>The last path element of a link's target (<c>driver</c> → <c>vfio-pci</c>), or null.</summary>
        public static string? TryReadLinkName(string path)
        {
            var target = TryReadLink(path);
            if (target is null) return null;
            var trimmed = target.TrimEnd('/');
            var slash = trimmed.LastIndexOf('/');
            return slash < 0 ? trimmed : trimmed.Substring(slash + 1);
        }

        /// <summary>Resolves a link to an absolute path (one level, relative to the link's directory).</summary>
        public static string? TryResolveLink(string path)
        {
            var buffer = LinkBuffer ??= new byte[4096];
            var n = (int)LibC.readlink(LibC.TransientPath(path), buffer, (IntPtr)buffer.Length).ToInt64();
            if (n <= 0) return null;
            return ResolveRelative(path, buffer, n) ?? ResolveSlowly(path, Encoding.UTF8.GetString(buffer, 0, n));
        }

        [ThreadStatic]
        private static char[]? _resolveBuffer;

        /// <summary>
        /// The usual kernel link, <c>../../../devices/pci0000:00/0000:00:01.0</c> (leading <c>../</c> steps, then
        /// plain names), joined to the link's directory with one string made; null for any other shape.
        /// </summary>
        private static string? ResolveRelative(string linkPath, byte[] target, int length)
        {
            var at = 0;
            var up = 0;
            while (at + 2 < length && target[at] == (byte)'.' && target[at + 1] == (byte)'.' && target[at + 2] == (byte)'/')
            {
                up++;
                at += 3;
            }
            if (at == length || target[at] == (byte)'/' || target[at] == (byte)'.') return null;
            for (var i = at; i < length; i++)
            {
                var b = target[i];
                if (b >= 0x80) return null;   // not ASCII: decoded the ordinary way
                if (b == (byte)'/' && (i + 1 == length || target[i + 1] == (byte)'/' || target[i + 1] == (byte)'.')) return null;
                if (b == (byte)'.' && target[i - 1] == (byte)'/') return null;
            }
            var end = linkPath.LastIndexOf('/');   // the link's directory
            if (end <= 0 || end == linkPath.Length - 1 || linkPath[0] != '/') return null;
            // A directory that is not in its plain form (".", "..", "//") is left to the full normalization.
            if (linkPath.IndexOf("/.", StringComparison.Ordinal) >= 0 || linkPath.IndexOf("//", StringComparison.Ordinal) >= 0) return null;
            for (var i = 0; i < up; i++)
            {
                end = linkPath.LastIndexOf('/', end - 1);
                if (end <= 0) return null;
            }
            var total = end + 1 + (length - at);
            var chars = _resolveBuffer;
            if (chars is null || chars.Length < total) _resolveBuffer = chars = new char[Math.Max(total, 512)];
            linkPath.CopyTo(0, chars, 0, end + 1);
            for (var i = at; i < length; i++) chars[end + 1 + i - at] = (char)target[i];
            return new string(chars, 0, total);
        }

        private static string ResolveSlowly(string linkPath, string target)
        {
            if (target.StartsWith("/", StringComparison.Ordinal)) return Path.GetFullPath(target);
            var dir = Path.GetDirectoryName(linkPath) ?? "/";
            return Path.GetFullPath(Path.Combine(dir, target));
        }


        /// <summary>
        /// Writes one value to an existing attribute (<c>driver_override</c>, <c>unbind</c>, <c>create</c>, <c>remove</c>),
        /// as <c>echo value &gt; attribute</c> does: the file is opened for writing, never created, and the value is
        /// written in a single write. Permission errors become "requires root"; a kernel refusal (EBUSY, EINVAL, ENODEV)
        /// becomes <see cref="ErrorIds.SysfsWriteFailed"/> with the kernel's reason.
        /// </summary>
        public static void WriteAttribute(string path, string value)
        {
            var errno = SysfsWriter.Write(path, value);
            if (errno != 0) throw WriteFailure(path, value, errno);
        }

        /// <summary>The error for a failed attribute write: "requires root" for EACCES/EPERM, else the kernel's reason.</summary>
        public static GpuVirtException WriteFailure(string path, string value, int errno)
        {
            if (errno == Errno.EACCES || errno == Errno.EPERM) return RootRequired(path, "write");
            return new GpuVirtException(ErrorIds.SysfsWriteFailed, ErrorKind.WriteError,
                $"Writing '{value.Trim()}' to '{path}' failed: {Errno.Describe(errno)} (errno {errno}).", path);
        }

        /// <summary>
        /// The names in a directory (no <c>.</c> and <c>..</c>), or null when it cannot be opened. Read with readdir
        /// alone: .NET's listing stats every symbolic link it meets, and <c>/sys/bus/pci/devices</c> is nothing but links.
        /// </summary>
        public static List<string>? TryListNames(string dir)
        {
            var handle = LibC.opendir(LibC.Path(dir));
            if (handle == IntPtr.Zero) return null;
            try
            {
                var names = new List<string>();
                while (true)
                {
                    var entry = LibC.readdir(handle);
                    if (entry == IntPtr.Zero) return names;
                    // On Unix the runtime's "ANSI" strings are UTF-8.
                    var name = Marshal.PtrToStringAnsi(entry + LibC.DirentNameOffset);
                    if (name is null || name == "." || name == "..") continue;
                    names.Add(name);
                }
            }
            finally
            {
                LibC.closedir(handle);
            }
        }

        /// <summary>
        /// The entries of a directory as paths; none when it is missing or cannot be listed (another user's /proc/PID/fd).
        /// Listed by name (<see cref="TryListNames"/>): no stat of each link on the way.
        /// </summary>
        public static string[] TryListEntries(string dir) =>
            TryListNames(dir)?.Select(name => Path.Combine(dir, name)).ToArray() ?? Array.Empty<string>();

        /// <summary>
        /// A permission error: <see cref="ErrorIds.RootRequired"/> for a user who is not root; for root, who was refused
        /// anyway, <see cref="ErrorIds.PermissionDeniedAsRoot"/> with what refuses root (running as root would not help).
        /// </summary>
        public static GpuVirtException RootRequired(string path, string verb, Exception? inner = null) =>
            PermissionDenied(path, verb, LibC.geteuid() == 0, inner);

        internal static GpuVirtException PermissionDenied(string path, string verb, bool asRoot, Exception? inner = null) => asRoot && verb == "read"
            ? new GpuVirtException(ErrorIds.PermissionDeniedAsRoot, ErrorKind.PermissionDenied,
                $"Permission denied to read '{path}', though pwsh runs as root: it is unreadable (mode 000 with pwsh running without CAP_DAC_OVERRIDE, " +
                "or a security policy such as SELinux or AppArmor, or the file system refuses it). What it holds is unknown, so nothing was read as it.",
                path, inner)
            : asRoot
            ? new GpuVirtException(ErrorIds.PermissionDeniedAsRoot, ErrorKind.PermissionDenied,
                $"Permission denied to {verb} '{path}', though pwsh runs as root: the file or its directory is immutable or append-only " +
                "(lsattr shows 'i' or 'a'; chattr -i takes it off), or a security policy (SELinux, AppArmor) or the file system refuses it.",
                path, inner)
            : new GpuVirtException(ErrorIds.RootRequired, ErrorKind.PermissionDenied,
                $"Permission denied to {verb} '{path}'. This requires root: run pwsh as root (sudo pwsh).", path, inner);

    }
}
