using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>How the kernel arguments of a boot loader family are kept.</summary>
    internal enum BootFileKind
    {
        /// <summary>A shell file: <c>GRUB_CMDLINE_LINUX</c> then <c>GRUB_CMDLINE_LINUX_DEFAULT</c>.</summary>
        Shell,

        /// <summary>A plain command line file (<c>/etc/kernel/cmdline</c>).</summary>
        Plain,

        /// <summary>A tool keeps them (kernelstub, rpm-ostree): read from its files, changed only through the tool.</summary>
        Tool,
    }

    /// <summary>The file a boot loader family keeps the kernel command line in, and how to make it take effect.</summary>
    internal sealed class BootConfiguration
    {
        public const string GrubVariable = "GRUB_CMDLINE_LINUX";
        public const string GrubDefaultVariable = "GRUB_CMDLINE_LINUX_DEFAULT";
        public const string DefaultGrub = "/etc/default/grub";
        public const string SysconfigGrub = "/etc/sysconfig/grub";
        public const string GrubDropIns = "/etc/default/grub.d";
        public const string KernelCmdline = "/etc/kernel/cmdline";
        public const string UsrKernelCmdline = "/usr/lib/kernel/cmdline";
        public const string Grub2Cfg = "/etc/grub2.cfg";
        public const string Grub2EfiCfg = "/etc/grub2-efi.cfg";
        public const string BootGrub2Cfg = "/boot/grub2/grub.cfg";
        public const string BootGrubCfg = "/boot/grub/grub.cfg";
        public const string EfiDirectory = "/boot/efi/EFI";
        public const string BlsEntries = "/boot/loader/entries";
        public const string GrubEnv = "/boot/grub2/grubenv";
        public const string KernelstubConfiguration = "/etc/kernelstub/configuration";
        public const string ProxmoxBootUuids = "/etc/kernel/proxmox-boot-uuids";
        public const string OstreeBooted = "/run/ostree-booted";
        public const string OstreeRepo = "/ostree/repo";

        /// <summary>The variables whose values the kernel gets, in that order (normal entries).</summary>
        public static readonly string[] GrubVariables = { GrubVariable, GrubDefaultVariable };

        private BootConfiguration(BootLoaderFamily family, BootFileKind kind, string file, string? linkPath, bool detected)
        {
            Family = family;
            Kind = kind;
            File = file;
            LinkPath = linkPath;
            Detected = detected;
        }

        public BootLoaderFamily Family { get; }

        public BootFileKind Kind { get; }

        /// <summary>The host path of the file that is edited (a link's target), or the tool's own file.</summary>
        public string File { get; }

        /// <summary>The path the procedure names when it is a symbolic link to <see cref="File"/> (<c>/etc/sysconfig/grub</c>).</summary>
        public string? LinkPath { get; }

        /// <summary>False when the family was given rather than detected.</summary>
        public bool Detected { get; }

        /// <summary>A shell file with <c>GRUB_CMDLINE_LINUX</c> and <c>GRUB_CMDLINE_LINUX_DEFAULT</c>.</summary>
        public bool IsShellFile => Kind == BootFileKind.Shell;

        internal CmdlineDocument Parse(string text) =>
            IsShellFile ? CmdlineDocument.ParseShell(text, GrubVariables) : CmdlineDocument.ParsePlain(text);

        /// <summary>
        /// Finds the family under the root (the files present, and <c>/etc/os-release</c>'s ID and ID_LIKE where the
        /// files alone do not tell), or takes the one given.
        /// </summary>
        public static BootConfiguration Detect(HostRoot root, BootLoaderFamily? family = null)
        {
            var hasDefault = HostFiles.Exists(root, DefaultGrub);
            var hasSysconfig = HostFiles.Exists(root, SysconfigGrub);
            var os = OsRelease.Read(root);
            var detected = family is null;
            if (family is null)
            {
                if (HostFiles.Exists(root, OstreeBooted) || HostFiles.Exists(root, OstreeRepo))
                {
                    family = BootLoaderFamily.RpmOstree;
                }
                else if (HostFiles.Exists(root, ProxmoxBootUuids))
                {
                    family = BootLoaderFamily.ProxmoxBootTool;
                }
                else if (HostFiles.Exists(root, KernelstubConfiguration))
                {
                    family = BootLoaderFamily.Kernelstub;
                }
                else if (hasDefault || hasSysconfig)
                {
                    var grub = hasSysconfig ? SysconfigGrub : DefaultGrub;
                    var text = HostFiles.ReadText(root.Resolve(root.ResolveLinks(grub)), grub);
                    if (IsBlsEnabled(text)) family = BootLoaderFamily.Bls;
                    else if (hasSysconfig) family = BootLoaderFamily.Rhel7;
                    else if (os != null ? os.Is("debian", "ubuntu") : HostFiles.Exists(root, "/etc/debian_version")) family = BootLoaderFamily.Debian;
                    else if (os != null ? os.Is("rhel", "centos") && HostFiles.Exists(root, Grub2Cfg) : HostFiles.Exists(root, "/etc/redhat-release")) family = BootLoaderFamily.Rhel7;
                    else family = BootLoaderFamily.Grub;
                }
                else if (HostFiles.Exists(root, KernelCmdline) || new[] { "/boot/loader/loader.conf", "/efi/loader/loader.conf", "/boot/efi/loader/loader.conf" }.Any(p => HostFiles.Exists(root, p)))
                {
                    family = BootLoaderFamily.SystemdBoot;
                }
                if (family is null)
                {
                    throw new GpuVirtException(ErrorIds.BootLoaderNotDetected, ErrorKind.ObjectNotFound,
                        $"No known boot loader configuration was found under '{root.Directory}' ({DefaultGrub}, {SysconfigGrub}, {KernelCmdline}, {KernelstubConfiguration}, {ProxmoxBootUuids}, {OstreeRepo}). " +
                        "Give -BootLoader with the host's family if it uses one of them.", root.Directory);
                }
            }

            switch (family.Value)
            {
                case BootLoaderFamily.Rhel7:
                {
                    var named = hasSysconfig ? SysconfigGrub : DefaultGrub;
                    if (!hasSysconfig && !hasDefault) throw Missing(SysconfigGrub, family.Value);
                    return Shell(root, family.Value, named, detected);
                }
                case BootLoaderFamily.Bls:
                case BootLoaderFamily.Debian:
                case BootLoaderFamily.Grub:
                {
                    var named = hasDefault ? DefaultGrub : hasSysconfig && family != BootLoaderFamily.Debian ? SysconfigGrub : null;
                    if (named is null) throw Missing(DefaultGrub, family.Value);
                    return Shell(root, family.Value, named, detected);
                }
                case BootLoaderFamily.ProxmoxBootTool:
                {
                    // systemd-boot ESPs take /etc/kernel/cmdline; GRUB ones /etc/default/grub.
                    if (!HostFiles.Exists(root, KernelCmdline) && hasDefault) return Shell(root, family.Value, DefaultGrub, detected);
                    return Plain(root, family.Value, detected);
                }
                case BootLoaderFamily.Kernelstub:
                {
                    if (!HostFiles.Exists(root, KernelstubConfiguration)) throw Missing(KernelstubConfiguration, family.Value);
                    var target = root.ResolveLinks(KernelstubConfiguration);
                    return new BootConfiguration(family.Value, BootFileKind.Tool, target, target != KernelstubConfiguration ? KernelstubConfiguration : null, detected);
                }
                case BootLoaderFamily.RpmOstree:
                {
                    var entry = OstreeDefaultEntry(root) ?? throw Missing(BlsEntries + "/ostree-*.conf", family.Value);
                    return new BootConfiguration(family.Value, BootFileKind.Tool, entry, null, detected);
                }
                default:
                    return Plain(root, family.Value, detected);
            }
        }

        private static BootConfiguration Shell(HostRoot root, BootLoaderFamily family, string named, bool detected)
        {
            var target = root.ResolveLinks(named);
            return new BootConfiguration(family, BootFileKind.Shell, target, target != named ? named : null, detected);
        }

        private static BootConfiguration Plain(HostRoot root, BootLoaderFamily family, bool detected)
        {
            var target = root.ResolveLinks(KernelCmdline);
            return new BootConfiguration(family, BootFileKind.Plain, target, target != KernelCmdline ? KernelCmdline : null, detected);
        }

        private static GpuVirtException Missing(string path, BootLoaderFamily family) =>
            new GpuVirtException(ErrorIds.BootFileNotFound, ErrorKind.ObjectNotFound,
                $"The {family} boot loader keeps the kernel command line in '{path}', which does not exist.", path);

        /// <summary>True when the grub file sets <c>GRUB_ENABLE_BLSCFG=true</c>.</summary>
        public static bool IsBlsEnabled(string grubText)
        {
            var assignments = ShellScanner.FindAssignments(grubText, "GRUB_ENABLE_BLSCFG");
            if (assignments.Count == 0) return false;
            var value = string.Concat(assignments[assignments.Count - 1].Atoms.Select(a => a.Text));
            return value == "true";
        }

        /// <summary>The ostree entry of the default deployment: the one with the highest <c>version</c> (ostree numbers the default highest).</summary>
        public static string? OstreeDefaultEntry(HostRoot root)
        {
            string? best = null;
            var bestVersion = -1;
            foreach (var entry in BlsEntryFiles(root).Where(e => System.IO.Path.GetFileName(e).StartsWith("ostree-", StringComparison.Ordinal)))
            {
                var version = BlsField(root, entry, "version");
                var n = int.TryParse(version, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
                if (n > bestVersion)
                {
                    bestVersion = n;
                    best = entry;
                }
            }
            return best;
        }

        /// <summary>The host paths of the BLS entries, sorted by name.</summary>
        public static IReadOnlyList<string> BlsEntryFiles(HostRoot root)
        {
            var dir = root.Resolve(BlsEntries);
            if (!Directory.Exists(dir)) return Array.Empty<string>();
            return Directory.GetFiles(dir, "*.conf").OrderBy(f => f, StringComparer.Ordinal)
                .Select(f => BlsEntries + "/" + System.IO.Path.GetFileName(f)).ToList();
        }

        /// <summary>A BLS entry's field (<c>version</c>, <c>linux</c>, <c>options</c>): the text after the key, or null.</summary>
        public static string? BlsField(HostRoot root, string entry, string key)
        {
            var text = Sysfs.TryReadText(root.Resolve(entry));
            if (text is null) return null;
            foreach (var line in text.Split('\n'))
            {
                var trimmed = line.Trim();
                if (!trimmed.StartsWith(key, StringComparison.Ordinal) || trimmed.Length <= key.Length || !char.IsWhiteSpace(trimmed[key.Length])) continue;
                return trimmed.Substring(key.Length).Trim();
            }
            return null;
        }

        /// <summary>
        /// The text a new <c>/etc/kernel/cmdline</c> starts from, as kernel-install would build it:
        /// <c>/usr/lib/kernel/cmdline</c>, else the running kernel's arguments without the boot loader's own.
        /// </summary>
        public static string? KernelInstallDefault(HostRoot root)
        {
            var usr = Sysfs.TryReadText(root.Resolve(UsrKernelCmdline));
            if (!string.IsNullOrEmpty(usr)) return usr + "\n";
            var running = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline));
            if (string.IsNullOrEmpty(running)) return null;
            var kept = KernelArguments.Split(running).Where(a =>
                !KernelArguments.SameKey(KernelArguments.KeyOf(a), "BOOT_IMAGE") && !KernelArguments.SameKey(KernelArguments.KeyOf(a), "initrd"));
            return string.Join(" ", kept) + "\n";
        }

        /// <summary>The programs that make the edited file take effect, with their exact arguments.</summary>
        public IReadOnlyList<HostCommand> RegenerationCommands(HostRoot root)
        {
            switch (Family)
            {
                case BootLoaderFamily.Rhel7:
                    var output = Directory.Exists(root.Resolve(HostPaths.EfiFirmware)) ? Grub2EfiCfg : Grub2Cfg;
                    return new[] { new HostCommand("grub2-mkconfig", "-o", output) };
                case BootLoaderFamily.Debian:
                    return new[] { new HostCommand("update-grub") };
                case BootLoaderFamily.Grub:
                    return new[] { GrubMkconfig(root) };
                case BootLoaderFamily.ProxmoxBootTool:
                    return new[] { new HostCommand("proxmox-boot-tool", "refresh") };
                case BootLoaderFamily.SystemdBoot:
                    return InstalledKernels(root).Select(k => new HostCommand("kernel-install", "add", k.Version, k.Image)).ToList();
                default:
                    return Array.Empty<HostCommand>();
            }
        }

        /// <summary>
        /// <c>grub-mkconfig -o</c> or <c>grub2-mkconfig -o</c> the configuration the host boots from: on UEFI a full
        /// configuration on the ESP (not the stub that only loads <c>/boot/grub2/grub.cfg</c>) first, then
        /// <c>/boot/grub2/grub.cfg</c> and <c>/boot/grub/grub.cfg</c>; with none yet, the one the installed program writes.
        /// </summary>
        internal static HostCommand GrubMkconfig(HostRoot root)
        {
            var candidates = new List<string>();
            if (Directory.Exists(root.Resolve(HostPaths.EfiFirmware)))
            {
                candidates.Add(Grub2EfiCfg);
                var efi = root.Resolve(EfiDirectory);
                if (Directory.Exists(efi))
                {
                    foreach (var dir in Directory.GetDirectories(efi).OrderBy(d => d, StringComparer.Ordinal))
                    {
                        var cfg = Path.Combine(dir, "grub.cfg");
                        var text = Sysfs.TryReadText(cfg);
                        if (text != null && !text.Contains("configfile")) candidates.Add(EfiDirectory + "/" + Path.GetFileName(dir) + "/grub.cfg");
                    }
                }
            }
            candidates.Add(Grub2Cfg);
            candidates.Add(BootGrub2Cfg);
            candidates.Add(BootGrubCfg);
            var hasGrub2 = ProgramLocator.ExistsOnHost(root, "grub2-mkconfig");
            var hasGrub = ProgramLocator.ExistsOnHost(root, "grub-mkconfig");
            var output = candidates.FirstOrDefault(c => System.IO.File.Exists(root.Resolve(root.ResolveLinks(c))))
                ?? (hasGrub2 && !hasGrub ? BootGrub2Cfg : BootGrubCfg);
            var grub2Named = output.Contains("grub2");
            var program = grub2Named ? (hasGrub2 || !hasGrub ? "grub2-mkconfig" : "grub-mkconfig") : (hasGrub || !hasGrub2 ? "grub-mkconfig" : "grub2-mkconfig");
            return new HostCommand(program, "-o", output);
        }

        /// <summary>Kernels with an image under <c>/usr/lib/modules/VERSION/vmlinuz</c> (or <c>/lib/modules</c>), by version.</summary>
        public static IReadOnlyList<(string Version, string Image)> InstalledKernels(HostRoot root)
        {
            foreach (var modules in new[] { "/usr/lib/modules", "/lib/modules" })
            {
                var dir = root.Resolve(modules);
                if (!Directory.Exists(dir)) continue;
                var found = Directory.GetDirectories(dir)
                    .Select(Path.GetFileName)
                    .Where(v => v != null && System.IO.File.Exists(Path.Combine(dir, v, "vmlinuz")))
                    .OrderBy(v => v, StringComparer.Ordinal)
                    .Select(v => (v!, modules + "/" + v + "/vmlinuz"))
                    .ToList();
                if (found.Count > 0) return found;
            }
            return Array.Empty<(string, string)>();
        }

        internal static string ReadGrubEnvKernelopts(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(GrubEnv)) ?? string.Empty;
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("kernelopts=", StringComparison.Ordinal));
            return line?.Substring("kernelopts=".Length) ?? string.Empty;
        }

        /// <summary>Drop-in files (<c>/etc/default/grub.d/*.cfg</c>) that set <c>GRUB_CMDLINE_LINUX</c> or <c>_DEFAULT</c> over the edited file.</summary>
        public IReadOnlyList<string> OverridingDropIns(HostRoot root)
        {
            if (!IsShellFile) return Array.Empty<string>();
            var dir = root.Resolve(GrubDropIns);
            if (!Directory.Exists(dir)) return Array.Empty<string>();
            var result = new List<string>();
            foreach (var file in Directory.GetFiles(dir, "*.cfg").OrderBy(f => f, StringComparer.Ordinal))
            {
                var text = Sysfs.TryReadText(file);
                if (text is null) continue;
                try
                {
                    if (GrubVariables.Any(v => ShellScanner.FindAssignments(text, v).Any(a => !a.ReferencesItself(text))))
                        result.Add(GrubDropIns + "/" + Path.GetFileName(file));
                }
                catch (GpuVirtException)
                {
                    result.Add(GrubDropIns + "/" + Path.GetFileName(file));
                }
            }
            return result;
        }
    }
}
