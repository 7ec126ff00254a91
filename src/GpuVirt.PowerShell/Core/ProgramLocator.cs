using System;
using System.IO;

namespace GpuVirt.Core
{
    /// <summary>
    /// THE lookup of installed programs: on PATH for the running host (to choose between a tool such as mdevctl and the
    /// module's own way), in the usual bin directories of another root (an image, where programs run under chroot).
    /// </summary>
    public static class ProgramLocator
    {
        /// <summary>Where programs are looked for under a root other than <c>/</c>, whose PATH is not known.</summary>
        public static readonly string[] ImageBinDirectories = { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin" };

        /// <summary>The full path of an executable file named <paramref name="program"/> on PATH, or null.</summary>
        public static string? Find(string program)
        {
            foreach (var dir in SearchPath())
            {
                var candidate = Path.Combine(dir, program);
                if (File.Exists(candidate) && LibC.access(LibC.Path(candidate), X_OK) == 0) return candidate;
            }
            return null;
        }

        /// <summary>
        /// Whether a program can be run on the host: on PATH for <c>/</c>, in <see cref="ImageBinDirectories"/> of
        /// another root (where <see cref="ProcessRunner.RunOnHost"/> runs it with chroot; a link there may point at a
        /// path that only exists inside the image, so the link itself is enough).
        /// </summary>
        public static bool ExistsOnHost(HostRoot root, string program)
        {
            if (root.IsLive) return Find(program) != null;
            foreach (var dir in ImageBinDirectories)
            {
                var full = root.ResolveEntry(dir + "/" + program);
                if (File.Exists(full) || Sysfs.TryReadLink(full) != null) return true;
            }
            return false;
        }

        private static string[] SearchPath() =>
            (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries);

        private const int X_OK = 1;

    }
}
