namespace GpuVirt.Fixtures;

/// <summary>
/// Stand-ins for programs that cannot run on a test machine (grub2-mkconfig, grubby, update-grub, dracut,
/// update-initramfs, kernel-install). The module runs them inside a host root with chroot, so each stand-in is a
/// small script in the root's <c>/usr/sbin</c>, run by a static busybox shell copied to the root's <c>/bin/sh</c>.
/// It appends its argument vector to <c>/stand-ins.log</c> in the root, and can fail with an exit code and stderr.
/// </summary>
public static class StandIns
{
    public const string LogName = "stand-ins.log";
    private static readonly string[] BusyboxPaths = { "/usr/bin/busybox", "/bin/busybox" };

    /// <summary>
    /// Installs a stand-in; with a non-zero <paramref name="exitCode"/> it writes <paramref name="stderr"/> and fails.
    /// <paramref name="extraScript"/> runs before it exits (busybox sh), e.g. to change a file the way a half-done run would.
    /// </summary>
    /// <param name="directory">Where in the root it goes (<c>/usr/sbin</c> by default; NVIDIA's sriov-manage lives in <c>/usr/lib/nvidia</c>).</param>
    public static string Install(string root, string program, int exitCode = 0, string? stderr = null, string? extraScript = null, string directory = "/usr/sbin")
    {
        InstallShell(root);
        var sbin = Path.Combine(root, directory.TrimStart('/'));
        Directory.CreateDirectory(sbin);
        var script = "#!/bin/sh\n" +
                     "for a in \"${0##*/}\" \"$@\"; do printf '%s\\t' \"$a\"; done >> /" + LogName + "\n" +
                     "echo >> /" + LogName + "\n" +
                     (extraScript is null ? string.Empty : extraScript + "\n") +
                     (stderr is null ? string.Empty : "echo '" + stderr.Replace("'", "'\\''") + "' >&2\n") +
                     "exit " + exitCode + "\n";
        var path = Path.Combine(sbin, program);
        File.WriteAllText(path, script);
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("Stand-ins are shell scripts.");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                   UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return path;
    }

    /// <summary>
    /// A static busybox in the root's <c>/bin</c> with <c>/bin/sh</c> and any other <paramref name="applets"/> (<c>sleep</c>)
    /// linked to it, so that a shell script can run inside the root with chroot.
    /// </summary>
    public static void InstallShell(string root, params string[] applets)
    {
        var bin = Path.Combine(root, "bin");
        Directory.CreateDirectory(bin);
        if (!File.Exists(Path.Combine(bin, "busybox")))
        {
            var busybox = BusyboxPaths.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("A static busybox is needed for the stand-ins (Debian package busybox-static).");
            File.Copy(busybox, Path.Combine(bin, "busybox"), overwrite: true);
        }
        foreach (var name in new[] { "sh" }.Concat(applets))
        {
            var link = Path.Combine(bin, name);
            if (!File.Exists(link)) File.CreateSymbolicLink(link, "busybox");
        }
    }

    /// <summary>Every call so far: the program name, then its arguments.</summary>
    public static IReadOnlyList<string[]> Calls(string root)
    {
        var log = Path.Combine(root, LogName);
        if (!File.Exists(log)) return Array.Empty<string[]>();
        return File.ReadAllLines(log)
            .Where(l => l.Length > 0)
            .Select(l => l.TrimEnd('\t').Split('\t'))
            .ToList();
    }
}
