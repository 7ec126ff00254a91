using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace GpuVirt.Core.Boot
{
    /// <summary>Owner and permission bits of a file.</summary>
    internal readonly struct FileIdentity
    {
        public FileIdentity(uint uid, uint gid, int mode)
        {
            Uid = uid;
            Gid = gid;
            Mode = mode;
        }

        public uint Uid { get; }
        public uint Gid { get; }

        /// <summary>The permission bits (<c>0644</c>), setuid/setgid/sticky included.</summary>
        public int Mode { get; }

        public override string ToString() => string.Format(CultureInfo.InvariantCulture, "{0}:{1} {2}", Uid, Gid, Convert.ToString(Mode, 8));
    }

    /// <summary>
    /// Reads and writes host configuration files the careful way: symbolic links followed inside the host root
    /// (the link is kept, its target is edited), every byte kept (Latin-1 round trip), new content written to a
    /// temporary file in the same directory with the original's owner, mode and extended attributes (SELinux label,
    /// ACLs), flushed to disk and renamed over the original, so that a reader sees the old file or the new one, never
    /// half of one.
    /// </summary>
    internal static class HostFiles
    {
        /// <summary>Bytes 0–255 map to chars 0–255 and back: what is read is written back byte for byte.</summary>
        public static readonly Encoding Bytes = Encoding.GetEncoding("iso-8859-1");

        /// <summary>True when the host path itself is a symbolic link.</summary>
        public static bool IsLink(HostRoot root, string hostPath) => Sysfs.TryReadLink(root.ResolveEntry(hostPath)) != null;

        /// <summary>True when the path exists as a file, a directory or a link (even a dangling one).</summary>
        public static bool Exists(HostRoot root, string hostPath)
        {
            var full = root.ResolveEntry(hostPath);
            return File.Exists(full) || Directory.Exists(full) || Sysfs.TryReadLink(full) != null;
        }

        /// <summary>Reads a whole file as text that maps each byte to one char.</summary>
        public static string ReadText(string fullPath, string hostPath) => Bytes.GetString(FileReads.ReadBytes(fullPath, hostPath));

        /// <summary>Owner and mode of a file (not following a final link).</summary>
        public static FileIdentity GetIdentity(string fullPath)
        {
            var buffer = new byte[256];
            try
            {
                if (LibC.statx(Native.AtFdCwd, LibC.Path(fullPath), Native.AtSymlinkNoFollow, Native.StatxBasicStats, buffer) == 0)
                {
                    return new FileIdentity(BitConverter.ToUInt32(buffer, 20), BitConverter.ToUInt32(buffer, 24), BitConverter.ToUInt16(buffer, 28) & 0xfff);
                }
                var errno = Marshal.GetLastWin32Error();
                if (errno != Errno.ENOSYS) throw new IOException($"Cannot read the owner and mode of '{fullPath}': {new Win32Exception(errno).Message}");
            }
            catch (EntryPointNotFoundException)
            {
                // glibc before 2.28 (RHEL 7): no statx wrapper.
            }
            return GetIdentityFromRuntime(fullPath);
        }

        /// <summary>The same through the .NET runtime's own portable stat (for C libraries without statx).</summary>
        internal static FileIdentity GetIdentityFromRuntime(string fullPath)
        {
            // SystemNative_LStat fills a FileStatus whose first fields are Flags, Mode, Uid, Gid (all 32-bit).
            var buffer = new byte[512];
            if (LibC.SystemNative_LStat(LibC.Path(fullPath), buffer) != 0)
                throw new IOException($"Cannot read the owner and mode of '{fullPath}'.");
            return new FileIdentity(BitConverter.ToUInt32(buffer, 8), BitConverter.ToUInt32(buffer, 12), BitConverter.ToInt32(buffer, 4) & 0xfff);
        }

        /// <summary>
        /// THE atomic file writer, for boot files, backups, journals' neighbours and mdevctl definitions alike: the content
        /// goes to a temporary file in the same directory, is flushed to disk (fsync), then renamed over the target and
        /// the directory is synced, so that after a crash the file is the old one or the new one, whole. An existing
        /// file keeps its owner, mode and extended attributes; a new one gets <paramref name="newFileMode"/>, owned by
        /// the caller. With <paramref name="replace"/> false the target must not exist: the temporary file is linked
        /// to its name (link(2) refuses a name that is taken, as mdevctl refuses to overwrite a definition). A failure
        /// is <paramref name="failedId"/>.
        /// </summary>
        public static void WriteAtomically(string fullPath, string hostPath, string content, int newFileMode = 0x1a4 /* 0644 */,
            bool replace = true, string failedId = ErrorIds.BootFileWriteFailed) =>
            WriteAtomically(fullPath, hostPath, Bytes.GetBytes(content), newFileMode, replace, failedId);

        /// <summary>UTF-8 without a byte order mark: GpuVirt's own state files (the journal, the intents).</summary>
        public static readonly UTF8Encoding Utf8 = new UTF8Encoding(false);

        /// <summary>
        /// Writes one of GpuVirt's own state files (the journal, an intent) atomically as UTF-8, mode 0600 where it is new
        /// (they hold command lines and guest definitions), making its directory first; a failure is <paramref name="failedId"/>.
        /// </summary>
        public static void WriteStateFile(string fullPath, string hostPath, string text, string failedId)
        {
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(fullPath) ?? "/");
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(Path.GetDirectoryName(hostPath)!, "create", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(failedId, ErrorKind.WriteError, $"Cannot create the directory of '{hostPath}': {e.Message}", hostPath, e);
            }
            try
            {
                WriteAtomically(fullPath, hostPath, Utf8.GetBytes(text), 0x180);
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.BootFileWriteFailed && failedId != ErrorIds.BootFileWriteFailed)
            {
                throw new GpuVirtException(failedId, ErrorKind.WriteError, e.Message, hostPath, e);
            }
        }

        /// <summary>The same with the bytes to write (the journal and the intent, which are UTF-8).</summary>
        public static void WriteAtomically(string fullPath, string hostPath, byte[] bytes, int newFileMode = 0x1a4 /* 0644 */,
            bool replace = true, string failedId = ErrorIds.BootFileWriteFailed)
        {
            var dir = Path.GetDirectoryName(fullPath) ?? "/";
            var temp = Path.Combine(dir, TemporaryName(Path.GetFileName(fullPath)));
            try
            {
                var existing = replace && File.Exists(fullPath) ? GetIdentity(fullPath) : (FileIdentity?)null;
                using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    stream.Write(bytes, 0, bytes.Length);
                    stream.Flush(true);
                }
                if (existing is FileIdentity id)
                {
                    CopyExtendedAttributes(fullPath, temp);
                    Check(LibC.chown(LibC.Path(temp), id.Uid, id.Gid), temp, "chown");
                    Check(LibC.chmod(LibC.Path(temp), id.Mode), temp, "chmod");
                }
                else
                {
                    Check(LibC.chmod(LibC.Path(temp), newFileMode), temp, "chmod");
                }
                if (replace)
                {
                    Check(LibC.rename(LibC.Path(temp), LibC.Path(fullPath)), fullPath, "rename");
                }
                else
                {
                    Check(LibC.link(LibC.Path(temp), LibC.Path(fullPath)), fullPath, "link");
                    TryDelete(temp);
                }
                SyncDirectory(dir);
            }
            catch (UnauthorizedAccessException e)
            {
                TryDelete(temp);
                throw Sysfs.RootRequired(hostPath, "write", e);
            }
            catch (IOException e)
            {
                TryDelete(temp);
                if (e.Message.Contains("Read-only file system") || e.Message.Contains("Permission denied"))
                    throw Sysfs.RootRequired(hostPath, "write", e);
                throw new GpuVirtException(failedId, ErrorKind.WriteError, $"Cannot write '{hostPath}': {e.Message}", hostPath, e);
            }
        }

        /// <summary>The name of the temporary file the atomic writer writes beside <paramref name="fileName"/>: <c>.NAME.gpuvirt-XXXXXXXX.tmp</c>.</summary>
        internal static string TemporaryName(string fileName) => "." + fileName + ".gpuvirt-" + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp";

        /// <summary>What <see cref="TemporaryName"/> makes, and nothing else.</summary>
        private static readonly System.Text.RegularExpressions.Regex TemporaryPattern =
            new System.Text.RegularExpressions.Regex(@"^\..+\.gpuvirt-[0-9a-f]{8}\.tmp$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

        /// <summary>True for a name the atomic writer gives its temporary files.</summary>
        internal static bool IsTemporaryName(string fileName) => TemporaryPattern.IsMatch(fileName);

        /// <summary>
        /// Removes the temporary files the atomic writer left beside the given files (a command killed between writing
        /// one and renaming it over its file): only regular files named as <see cref="TemporaryName"/> names them, in
        /// the directories of those files inside the root. Call under the host lock, so that no writer of this root is
        /// half-way. Returns the host paths removed; what cannot be removed is left (the next command tries again).
        /// </summary>
        public static IReadOnlyList<string> RemoveLeftovers(HostRoot root, IEnumerable<string> hostPaths)
        {
            var directories = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var p in hostPaths)
            {
                if (string.IsNullOrEmpty(p) || p[0] != '/' || p.Split('/').Contains("..")) continue;
                try
                {
                    foreach (var resolved in new[] { p, root.ResolveLinks(p) })
                    {
                        var dir = Path.GetDirectoryName(resolved);
                        if (!string.IsNullOrEmpty(dir)) directories.Add(dir!);
                    }
                }
                catch (ArgumentException)
                {
                }
                catch (GpuVirtException)
                {
                }
            }
            var removed = new List<string>();
            foreach (var hostDir in directories)
            {
                var full = root.Resolve(hostDir);
                foreach (var name in Sysfs.TryListNames(full) ?? new List<string>())
                {
                    if (!IsTemporaryName(name)) continue;
                    var path = Path.Combine(full, name);
                    try
                    {
                        if ((GetIdentityType(path) & 0xf000) != FileReads.FileTypeRegular) continue;
                        File.Delete(path);
                        removed.Add(hostDir.TrimEnd('/') + "/" + name);
                    }
                    catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                    {
                    }
                }
                if (removed.Count > 0) SyncDirectory(full);
            }
            return removed;
        }

        /// <summary>The file type bits of a path, not following a final link (0 when it cannot be read).</summary>
        private static int GetIdentityType(string fullPath)
        {
            var buffer = new byte[512];
            return LibC.SystemNative_LStat(LibC.Path(fullPath), buffer) == 0 ? BitConverter.ToInt32(buffer, 4) & 0xf000 : 0;
        }

        /// <summary>Creates a file that must not exist yet (a backup); fails rather than overwrite.</summary>
        public static string Backup(HostRoot root, string hostPath, DateTime stamp)
        {
            var full = root.Resolve(hostPath);
            var baseName = hostPath + ".gpuvirt-" + stamp.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
            var candidate = baseName + ".bak";
            for (var n = 1; Exists(root, candidate); n++) candidate = baseName + "-" + n.ToString(CultureInfo.InvariantCulture) + ".bak";
            var content = ReadText(full, hostPath);
            var id = GetIdentity(full);
            var backupFull = root.Resolve(candidate);
            WriteAtomically(backupFull, candidate, content, id.Mode);
            try
            {
                LibC.chown(LibC.Path(backupFull), id.Uid, id.Gid);
            }
            catch (EntryPointNotFoundException)
            {
            }
            return candidate;
        }

        /// <summary>Deletes a file; a missing file is fine.</summary>
        public static void Delete(string fullPath, string hostPath)
        {
            try
            {
                if (File.Exists(fullPath)) File.Delete(fullPath);
                SyncDirectory(Path.GetDirectoryName(fullPath) ?? "/");
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(hostPath, "delete", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(ErrorIds.BootFileWriteFailed, ErrorKind.WriteError, $"Cannot delete '{hostPath}': {e.Message}", hostPath, e);
            }
        }

        /// <summary>Checks, without changing anything, that a file can be created in the directory (as the write will).</summary>
        public static void CheckWritable(string fullPath, string hostPath)
        {
            var dir = Path.GetDirectoryName(fullPath) ?? "/";
            var probe = Path.Combine(dir, ".gpuvirt-probe-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            try
            {
                if (!Directory.Exists(dir))
                {
                    throw new GpuVirtException(ErrorIds.BootFileNotFound, ErrorKind.ObjectNotFound,
                        $"The directory of '{hostPath}' does not exist.", hostPath);
                }
                using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                }
                File.Delete(probe);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(hostPath, "write", e);
            }
            catch (IOException e)
            {
                TryDelete(probe);
                if (e.Message.Contains("Read-only") || e.Message.Contains("Permission denied"))
                    throw Sysfs.RootRequired(hostPath, "write", e);
                throw new GpuVirtException(ErrorIds.BootFileWriteFailed, ErrorKind.WriteError, $"Cannot write '{hostPath}': {e.Message}", hostPath, e);
            }
        }

        private static void CopyExtendedAttributes(string from, string to)
        {
            var names = new byte[65536];
            long length;
            try
            {
                length = LibC.llistxattr(LibC.Path(from), names, (IntPtr)names.Length).ToInt64();
            }
            catch (EntryPointNotFoundException)
            {
                return;
            }
            if (length <= 0) return;
            var start = 0;
            for (var i = 0; i < length; i++)
            {
                if (names[i] != 0) continue;
                var name = Encoding.UTF8.GetString(names, start, i - start);
                start = i + 1;
                var nameBytes = LibC.Path(name);
                var value = new byte[65536];
                var size = LibC.lgetxattr(LibC.Path(from), nameBytes, value, (IntPtr)value.Length).ToInt64();
                if (size < 0) continue;
                if (LibC.lsetxattr(LibC.Path(to), nameBytes, value, (IntPtr)size, 0) != 0)
                {
                    var errno = Marshal.GetLastWin32Error();
                    // A label the file system cannot take is not worth failing over; anything else is.
                    if (errno != Errno.ENOTSUP && errno != Errno.EPERM)
                        throw new IOException($"Cannot copy the extended attribute '{name}' to '{to}': {new Win32Exception(errno).Message}");
                }
            }
        }

        private static void SyncDirectory(string dir)
        {
            var fd = LibC.open(LibC.Path(dir), 0);
            if (fd < 0) return;
            LibC.fsync(fd);
            LibC.close(fd);
        }

        private static void Check(int result, string path, string call)
        {
            if (result == 0) return;
            var errno = Marshal.GetLastWin32Error();
            var message = $"{call} '{path}': {new Win32Exception(errno).Message}";
            if (errno == Errno.EACCES || errno == Errno.EPERM || errno == Errno.EROFS) throw new UnauthorizedAccessException(message);
            throw new IOException(message);
        }

        private static void TryDelete(string path)
        {
            try
            {
                if (File.Exists(path)) File.Delete(path);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        private static class Native
        {
            public const int AtFdCwd = -100;
            public const int AtSymlinkNoFollow = 0x100;
            public const uint StatxBasicStats = 0x7ff;
        }
    }
}
