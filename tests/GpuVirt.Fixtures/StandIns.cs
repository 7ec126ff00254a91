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
    public static string Install(string root, string program, int exitCode = 0, string? stderr = null, string? extraScript = null)
    {
        var bin = Path.Combine(root, "bin");
        Directory.CreateDirectory(bin);
        var sh = Path.Combine(bin, "sh");
        if (!File.Exists(sh))
        {
            var busybox = BusyboxPaths.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("A static busybox is needed for the stand-ins (Debian package busybox-static).");
            File.Copy(busybox, Path.Combine(bin, "busybox"), overwrite: true);
            File.CreateSymbolicLink(sh, "busybox");
        }
        var sbin = Path.Combine(root, "usr", "sbin");
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
    /// A grubby stand-in that does to the BLS entries what grubby's <c>--update-kernel=ALL|KERNEL</c>,
    /// <c>--args=</c> (set a key's value or append) and <c>--remove-args=</c> (remove a word, or every word of a bare key)
    /// do to their <c>options</c> lines, so that a second run and the undo see the entries as grubby leaves them.
    /// </summary>
    public static string InstallGrubby(string root, int exitCode = 0, string? stderr = null) => Install(root, "grubby", exitCode, stderr, exitCode != 0 ? null : GrubbyScript);

    private const string GrubbyScript = @"kernel=; args=; remove=
for a in ""$@""; do
  case ""$a"" in
    --update-kernel=*) kernel=""${a#--update-kernel=}"";;
    --args=*) args=""${a#--args=}"";;
    --remove-args=*) remove=""${a#--remove-args=}"";;
  esac
done
for f in /boot/loader/entries/*.conf; do
  [ -f ""$f"" ] || continue
  linux=$(awk '$1==""linux""{print $2}' ""$f"")
  case ""$linux"" in /boot/*) ;; *) linux=""/boot$linux"";; esac
  [ ""$kernel"" = ALL ] || [ ""$kernel"" = ""$linux"" ] || continue
  awk -v add=""$args"" -v rm=""$remove"" '
    function key(w) { sub(/=.*/, """", w); return w }
    $1==""options"" {
      n=split(add, A, "" ""); m=split(rm, R, "" ""); out=""options""; split("""", done)
      for (i=2; i<=NF; i++) { w=$i; drop=0
        for (j=1; j<=m; j++) if (w==R[j] || (index(R[j], ""="")==0 && key(w)==R[j])) drop=1
        for (j=1; j<=n; j++) if (!drop && key(w)==key(A[j])) { if (!(j in done)) { w=A[j]; done[j]=1 } else drop=1 }
        if (!drop) out=out "" "" w }
      for (j=1; j<=n; j++) if (!(j in done)) out=out "" "" A[j]
      print out; next }
    { print }' ""$f"" > ""$f.new"" && mv ""$f.new"" ""$f""
done";

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
