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
    /// A stand-in for Fedora's grubby-bls (the grubby of RHEL 8, RHEL 9 and Fedora), doing what the real script does:
    /// <c>--update-kernel=ALL|KERNEL</c> with <c>--args=</c> (a word replaces every word of its key, then goes last) and
    /// <c>--remove-args=</c> (a word, or every word of a bare key) edit the <c>options</c> line of each entry; with
    /// <c>ALL</c>, grubby-bls since 8.40-41 also sources <c>/etc/default/grub</c>, edits the value of
    /// <c>GRUB_CMDLINE_LINUX</c> the same way and writes it back with <c>sed -i "s/^GRUB_CMDLINE_LINUX.*/…/"</c>
    /// (so a <c>$(...)</c> is lost, a CRLF line loses its CR (bash splits words on blanks only, so the CR of a sourced
    /// CRLF value stays inside the new value), and a <c>GRUB_CMDLINE_LINUX_DEFAULT</c> line becomes
    /// another <c>GRUB_CMDLINE_LINUX</c> line), unless <c>--no-etc-grub-update</c> (8.40-43 and later) is given; and it
    /// writes <c>/etc/kernel/cmdline</c> (created from an entry's options when missing) where <c>/etc/kernel</c> exists.
    /// Its option loop shifts twice for <c>--no-etc-grub-update</c>, so an option after it is read as an invalid one:
    /// the stand-in refuses that as the real script does. <c>--help</c> prints the usage (with the flag when
    /// <paramref name="knowsNoEtcGrubUpdate"/>) and, changing nothing, is not logged; a grubby without the flag
    /// (8.40-41, 8.40-42) refuses it as an invalid option.
    /// </summary>
    public static string InstallGrubby(string root, int exitCode = 0, string? stderr = null, bool knowsNoEtcGrubUpdate = true)
    {
        var path = Install(root, "grubby", exitCode, stderr, exitCode != 0 ? null : GrubbyScript);
        var script = File.ReadAllText(path);
        var usage = string.Concat(GrubbyUsage(knowsNoEtcGrubUpdate).Split('\n').Select(l => "printf '%s\\n' '" + l.Replace("'", "'\\''") + "'\n"));
        var help = "case \"$1\" in --help|-h)\n" + usage + "exit 0;; esac\n" +
                   "noflag=" + (knowsNoEtcGrubUpdate ? "" : "1") + "\n";
        File.WriteAllText(path, script.Replace("#!/bin/sh\n", "#!/bin/sh\n" + help));
        return path;
    }

    private static string GrubbyUsage(bool flag) =>
        "Usage: grubby [OPTION...]\n" +
        "      --add-kernel=kernel-path            add an entry for the specified kernel\n" +
        "      --args=args                         default arguments for the new kernel or new arguments for kernel being updated)\n" +
        "      --remove-args=STRING                remove kernel arguments\n" +
        "      --update-kernel=kernel-path         updated information for the specified kernel\n" +
        "  -b, --bls-directory                     path to directory containing the BootLoaderSpec fragment files\n" +
        (flag ? "      --no-etc-grub-update                don't update the GRUB_CMDLINE_LINUX variable in /etc/default/grub\n" : string.Empty) +
        "\nHelp options:\n  -h, --help                              Show this help message\n\n";

    private const string GrubbyScript = @"kernel=; args=; remove=; noetc=; prev=
for a in ""$@""; do
  if [ ""$prev"" = --no-etc-grub-update ]; then echo; echo ""grubby: invalid option \""${a%%=*}\"""" >&2; exit 1; fi
  case ""$a"" in
    --update-kernel=*) kernel=""${a#--update-kernel=}"";;
    --args=*) args=""${a#--args=}"";;
    --remove-args=*) remove=""${a#--remove-args=}"";;
    --no-etc-grub-update) [ -z ""$noflag"" ] || { echo ""grubby: invalid option \""$a\"""" >&2; exit 1; }; noetc=1;;
  esac
  prev=""$a""
done
update_args() {
  echo ""$1"" | awk -v rm=""$2"" -v add=""$3"" '
    function key(w) { sub(/=.*/, """", w); return w }
    { n=split(add, A, "" ""); m=split(rm, R, "" ""); out=""""; sub(/^[ 	]+/, """"); nw=split($0, W, /[ 	]+/)
      for (i=1; i<=nw; i++) { w=W[i]; drop=0; if (w=="""") continue
        for (j=1; j<=m; j++) if (w==R[j] || (index(R[j], ""="")==0 && key(w)==R[j])) drop=1
        for (j=1; j<=n; j++) if (key(w)==key(A[j])) drop=1
        if (!drop) out=out (out=="""" ? """" : "" "") w }
      for (j=1; j<=n; j++) out=out (out=="""" ? """" : "" "") A[j]
      print out }'
}
first=
for f in /boot/loader/entries/*.conf; do
  [ -f ""$f"" ] || continue
  [ -n ""$first"" ] || first=$(awk '$1==""options""{ $1=""""; sub(/^ /, """"); print }' ""$f"")
  linux=$(awk '$1==""linux""{print $2}' ""$f"")
  case ""$linux"" in /boot/*) ;; *) linux=""/boot$linux"";; esac
  [ ""$kernel"" = ALL ] || [ ""$kernel"" = ""$linux"" ] || continue
  old=$(awk '$1==""options""{ $1=""""; sub(/^ /, """"); print }' ""$f"")
  new=$(update_args ""$old"" ""$remove"" ""$args"")
  awk -v v=""$new"" '$1==""options"" { print ""options "" v; next } { print }' ""$f"" > ""$f.new"" && mv ""$f.new"" ""$f""
done
if [ ""$kernel"" = ALL ] && [ -n ""$args$remove"" ]; then
  if [ -z ""$noetc"" ] && [ -e /etc/default/grub ]; then
    old=$( . /etc/default/grub; echo $GRUB_CMDLINE_LINUX )
    if [ -n ""$old"" ]; then
      opts=$(update_args ""$old"" ""$remove"" ""$args"")
      awk -v v=""$opts"" '/^GRUB_CMDLINE_LINUX/ { print ""GRUB_CMDLINE_LINUX=\"""" v ""\""""; next } { print }' /etc/default/grub > /etc/default/grub.sed && mv /etc/default/grub.sed /etc/default/grub
    fi
  fi
  if [ -d /etc/kernel ]; then
    [ -f /etc/kernel/cmdline ] || echo $first > /etc/kernel/cmdline
    read old < /etc/kernel/cmdline
    update_args ""$old"" ""$remove"" ""$args"" > /etc/kernel/cmdline
  fi
fi";

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
