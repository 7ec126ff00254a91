using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>How a host turns its kernel command line configuration into boot entries.</summary>
    public enum BootLoaderFamily
    {
        /// <summary>RHEL 7 and alike: <c>/etc/sysconfig/grub</c> (a link to <c>/etc/default/grub</c>), then <c>grub2-mkconfig -o /etc/grub2.cfg</c> (UEFI: <c>/etc/grub2-efi.cfg</c>).</summary>
        Rhel7,

        /// <summary>RHEL 8+, Fedora (<c>GRUB_ENABLE_BLSCFG=true</c>): <c>/etc/default/grub</c> for future kernels, <c>grubby --update-kernel=ALL</c> for the installed ones.</summary>
        Bls,

        /// <summary>Debian, Ubuntu: <c>/etc/default/grub</c>, then <c>update-grub</c>.</summary>
        Debian,

        /// <summary>systemd-boot and kernel-install: <c>/etc/kernel/cmdline</c>, then <c>kernel-install add</c> for each installed kernel.</summary>
        SystemdBoot,
    }

    /// <summary>The file a boot loader family keeps the kernel command line in, and how to make it take effect.</summary>
    public sealed class BootConfiguration
    {
        public const string GrubVariable = "GRUB_CMDLINE_LINUX";
        public const string DefaultGrub = "/etc/default/grub";
        public const string SysconfigGrub = "/etc/sysconfig/grub";
        public const string GrubDropIns = "/etc/default/grub.d";
        public const string KernelCmdline = "/etc/kernel/cmdline";
        public const string UsrKernelCmdline = "/usr/lib/kernel/cmdline";
        public const string Grub2Cfg = "/etc/grub2.cfg";
        public const string Grub2EfiCfg = "/etc/grub2-efi.cfg";
        public const string BlsEntries = "/boot/loader/entries";
        public const string GrubEnv = "/boot/grub2/grubenv";

        private BootConfiguration(BootLoaderFamily family, string file, string? linkPath, bool detected)
        {
            Family = family;
            File = file;
            LinkPath = linkPath;
            Detected = detected;
        }

        public BootLoaderFamily Family { get; }

        /// <summary>The host path of the file that is edited (a link's target).</summary>
        public string File { get; }

        /// <summary>The path the procedure names when it is a symbolic link to <see cref="File"/> (<c>/etc/sysconfig/grub</c>).</summary>
        public string? LinkPath { get; }

        /// <summary>False when the family was given rather than detected.</summary>
        public bool Detected { get; }

        /// <summary>A shell file with <c>GRUB_CMDLINE_LINUX</c>, or a plain command line.</summary>
        public bool IsShellFile => Family != BootLoaderFamily.SystemdBoot;

        internal CmdlineDocument Parse(string text) =>
            IsShellFile ? CmdlineDocument.ParseShell(text, GrubVariable) : CmdlineDocument.ParsePlain(text);

        /// <summary>Finds the family under the root, or takes the one given.</summary>
        public static BootConfiguration Detect(HostRoot root, BootLoaderFamily? family = null)
        {
            var hasDefault = HostFiles.Exists(root, DefaultGrub);
            var hasSysconfig = HostFiles.Exists(root, SysconfigGrub);
            var detected = family is null;
            if (family is null)
            {
                if (hasDefault || hasSysconfig)
                {
                    var grub = hasSysconfig ? SysconfigGrub : DefaultGrub;
                    var text = HostFiles.ReadText(root.Resolve(HostFiles.ResolveLinks(root, grub)), grub);
                    if (IsBlsEnabled(text)) family = BootLoaderFamily.Bls;
                    else if (hasSysconfig) family = BootLoaderFamily.Rhel7;
                    else if (HostFiles.Exists(root, "/etc/debian_version")) family = BootLoaderFamily.Debian;
                    else if (HostFiles.Exists(root, "/etc/redhat-release")) family = BootLoaderFamily.Rhel7;
                }
                else if (HostFiles.Exists(root, KernelCmdline) || new[] { "/boot/loader/loader.conf", "/efi/loader/loader.conf", "/boot/efi/loader/loader.conf" }.Any(p => HostFiles.Exists(root, p)))
                {
                    family = BootLoaderFamily.SystemdBoot;
                }
                if (family is null)
                {
                    throw new GpuVirtException(ErrorIds.BootLoaderNotDetected, ErrorKind.ObjectNotFound,
                        $"No known boot loader configuration was found under '{root.Directory}' ({DefaultGrub}, {SysconfigGrub}, {KernelCmdline}). " +
                        "Give -BootLoader Rhel7, Bls, Debian or SystemdBoot if the host uses one of them.", root.Directory);
                }
            }

            switch (family.Value)
            {
                case BootLoaderFamily.Rhel7:
                {
                    var named = hasSysconfig ? SysconfigGrub : DefaultGrub;
                    if (!hasSysconfig && !hasDefault) throw Missing(SysconfigGrub, family.Value);
                    var target = HostFiles.ResolveLinks(root, named);
                    return new BootConfiguration(family.Value, target, target != named ? named : null, detected);
                }
                case BootLoaderFamily.Bls:
                case BootLoaderFamily.Debian:
                {
                    var named = hasDefault ? DefaultGrub : hasSysconfig && family == BootLoaderFamily.Bls ? SysconfigGrub : null;
                    if (named is null) throw Missing(DefaultGrub, family.Value);
                    var target = HostFiles.ResolveLinks(root, named);
                    return new BootConfiguration(family.Value, target, target != named ? named : null, detected);
                }
                default:
                {
                    var target = HostFiles.ResolveLinks(root, KernelCmdline);
                    return new BootConfiguration(family.Value, target, target != KernelCmdline ? KernelCmdline : null, detected);
                }
            }
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
                case BootLoaderFamily.SystemdBoot:
                    return InstalledKernels(root).Select(k => new HostCommand("kernel-install", "add", k.Version, k.Image)).ToList();
                default:
                    return Array.Empty<HostCommand>();
            }
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

        /// <summary>The <c>options</c> of every BLS entry (with <c>$kernelopts</c> read from grubenv), for merging id lists.</summary>
        public static IReadOnlyList<string> BlsEntryArguments(HostRoot root)
        {
            var dir = root.Resolve(BlsEntries);
            var result = new List<string>();
            if (!Directory.Exists(dir)) return result;
            string? kernelopts = null;
            foreach (var file in Directory.GetFiles(dir, "*.conf").OrderBy(f => f, StringComparer.Ordinal))
            {
                var text = Sysfs.TryReadText(file);
                if (text is null) continue;
                foreach (var line in text.Split('\n'))
                {
                    var trimmed = line.Trim();
                    if (!trimmed.StartsWith("options", StringComparison.Ordinal) || trimmed.Length < 8 || !char.IsWhiteSpace(trimmed[7])) continue;
                    foreach (var arg in KernelArguments.Split(trimmed.Substring(8)))
                    {
                        if (arg == "$kernelopts")
                        {
                            kernelopts ??= ReadGrubEnvKernelopts(root);
                            result.AddRange(KernelArguments.Split(kernelopts));
                        }
                        else
                        {
                            result.Add(arg);
                        }
                    }
                }
            }
            return result;
        }

        private static string ReadGrubEnvKernelopts(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(GrubEnv)) ?? string.Empty;
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("kernelopts=", StringComparison.Ordinal));
            return line?.Substring("kernelopts=".Length) ?? string.Empty;
        }

        /// <summary>Drop-in files (<c>/etc/default/grub.d/*.cfg</c>) that set <c>GRUB_CMDLINE_LINUX</c> over the edited file.</summary>
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
                    if (ShellScanner.FindAssignments(text, GrubVariable).Any(a => !a.ReferencesItself(text)))
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

    /// <summary>A program and its arguments, run on the host (inside the root when the root is not <c>/</c>).</summary>
    public sealed class HostCommand
    {
        public HostCommand(string program, params string[] arguments)
        {
            Program = program;
            Arguments = arguments;
        }

        public string Program { get; }
        public IReadOnlyList<string> Arguments { get; }

        public override string ToString() => ProcessRunner.Render(Program, Arguments);
    }

    /// <summary>Reads the CPU vendor from <c>/proc/cpuinfo</c>.</summary>
    public static class CpuInfo
    {
        public static CpuVendor? TryReadVendor(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCpuinfo));
            if (text is null) return null;
            foreach (var line in text.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon < 0 || line.Substring(0, colon).Trim() != "vendor_id") continue;
                switch (line.Substring(colon + 1).Trim())
                {
                    case "GenuineIntel":
                        return CpuVendor.Intel;
                    case "AuthenticAMD":
                    case "HygonGenuine":
                        return CpuVendor.Amd;
                    default:
                        return null;
                }
            }
            return null;
        }

        public static CpuVendor ReadVendor(HostRoot root) =>
            TryReadVendor(root) ?? throw new GpuVirtException(ErrorIds.CpuVendorUnknown, ErrorKind.ObjectNotFound,
                $"The CPU vendor could not be read from '{HostPaths.ProcCpuinfo}' under '{root.Directory}' (GenuineIntel or AuthenticAMD). Give -CpuVendor Intel or -CpuVendor Amd.",
                root.Directory);

        /// <summary>The CPU's physical address bits (<c>address sizes : 46 bits physical, 48 bits virtual</c>); null when not shown.</summary>
        public static int? TryReadPhysicalAddressBits(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCpuinfo));
            if (text is null) return null;
            foreach (var line in text.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon < 0 || line.Substring(0, colon).Trim() != "address sizes") continue;
                var words = line.Substring(colon + 1).Trim().Split(' ');
                return words.Length > 1 && words[1] == "bits" && int.TryParse(words[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bits)
                    ? bits : (int?)null;
            }
            return null;
        }

        /// <summary>The feature flags of the first CPU (<c>flags : fpu vme … vmx</c>); empty when not shown.</summary>
        public static IReadOnlyCollection<string> ReadFlags(HostRoot root)
        {
            var text = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCpuinfo));
            var flags = new HashSet<string>(StringComparer.Ordinal);
            if (text is null) return flags;
            foreach (var line in text.Split('\n'))
            {
                var colon = line.IndexOf(':');
                if (colon < 0 || line.Substring(0, colon).Trim() != "flags") continue;
                foreach (var flag in line.Substring(colon + 1).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries)) flags.Add(flag);
                break;
            }
            return flags;
        }
    }
}
