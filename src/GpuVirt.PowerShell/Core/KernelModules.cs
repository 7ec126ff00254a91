using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace GpuVirt.Core
{
    /// <summary>Which kernel modules are loaded (<c>/sys/module</c>, <c>/proc/modules</c>) and which are blacklisted (<c>/etc/modprobe.d</c>, the kernel command line).</summary>
    internal static class KernelModules
    {
        public const string ModprobeDirectory = "/etc/modprobe.d";

        /// <summary>
        /// True when the module is loaded: <c>/sys/module/&lt;name&gt;</c> holds an <c>initstate</c> (built-in code also has a
        /// directory there, without it) or <c>/proc/modules</c> lists it. Dashes and underscores are the same to the kernel.
        /// </summary>
        public static bool IsLoaded(HostRoot root, string name)
        {
            var module = Normalize(name);
            if (File.Exists(Path.Combine(root.Resolve(HostPaths.SysModule), module, "initstate"))) return true;
            var modules = Sysfs.TryReadText(root.Resolve(HostPaths.ProcModules));
            return modules != null && modules.Split('\n').Any(l => Normalize(l.Split(' ')[0]) == module);
        }

        /// <summary>Where the module is blacklisted: <c>blacklist NAME</c> lines in <c>/etc/modprobe.d/*.conf</c> (with their files) and <c>modprobe.blacklist=</c> on the kernel command line.</summary>
        public static IReadOnlyList<string> BlacklistedBy(HostRoot root, string name)
        {
            var module = Normalize(name);
            var found = new List<string>();
            var dir = root.Resolve(ModprobeDirectory);
            if (Directory.Exists(dir))
            {
                foreach (var file in Directory.EnumerateFiles(dir, "*.conf").OrderBy(f => f, StringComparer.Ordinal))
                {
                    var text = Sysfs.TryReadText(file);
                    if (text is null) continue;
                    foreach (var raw in text.Split('\n'))
                    {
                        var words = raw.Trim().Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
                        if (words.Length == 2 && words[0] == "blacklist" && Normalize(words[1]) == module)
                            found.Add(ModprobeDirectory + "/" + Path.GetFileName(file));
                    }
                }
            }
            var cmdline = Sysfs.TryReadText(root.Resolve(HostPaths.ProcCmdline)) ?? string.Empty;
            foreach (var word in cmdline.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = word.IndexOf('=');
                if (eq < 0) continue;
                var key = word.Substring(0, eq);
                if ((key == "modprobe.blacklist" || key == "rd.driver.blacklist" || key == "module_blacklist")
                    && word.Substring(eq + 1).Split(',').Any(m => Normalize(m) == module))
                    found.Add(HostPaths.ProcCmdline + " (" + word + ")");
            }
            return found;
        }

        private static string Normalize(string name) => name.Trim().Replace('-', '_');
    }
}
