using System;
using System.Collections.Generic;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>
    /// vfio-pci in the initial ramdisk, where each initramfs tool takes its list of modules: a GPU whose host driver
    /// the initramfs loads (amdgpu, nouveau, an early-KMS i915) is taken by that driver before the root filesystem,
    /// and its modprobe.d softdep and driverctl record, are there, unless vfio-pci is loaded in the initramfs too.
    /// dracut: <c>force_drivers+=</c> in a file of its own in <c>/etc/dracut.conf.d</c>; mkinitcpio: <c>MODULES+=()</c>
    /// in a drop-in of <c>/etc/mkinitcpio.conf.d</c> (read after <c>/etc/mkinitcpio.conf</c>, which is left as it is);
    /// initramfs-tools: a block of lines, under a marker, appended to the administrator's <c>/etc/initramfs-tools/modules</c>.
    /// pci-stub (a module on Debian, built in on RHEL) gets the same, in files of its own and under a marker of its own.
    /// </summary>
    internal static class InitramfsModules
    {
        /// <summary>The modules, in the order the tools load them (vfio-pci's dependencies are resolved by the tools too).</summary>
        public static readonly IReadOnlyList<string> Modules = new[] { "vfio_pci", "vfio", "vfio_iommu_type1" };

        public const string DracutFile = "/etc/dracut.conf.d/gpuvirt-vfio-pci.conf";
        public const string MkinitcpioFile = "/etc/mkinitcpio.conf.d/gpuvirt-vfio-pci.conf";
        public const string InitramfsToolsFile = "/etc/initramfs-tools/modules";

        /// <summary>The first line of what the module writes: how to recognise it, and what takes it back.</summary>
        public const string Marker = "# Added by GpuVirt (Dismount-GpuHostDriver -Persistent; Mount-GpuHostDriver -Persistent takes it back): vfio-pci in the initramfs";

        /// <summary>pci-stub's module, for a function -Persistent binds to pci-stub.</summary>
        public static readonly IReadOnlyList<string> StubModules = new[] { "pci_stub" };

        private const string PciStub = "pci-stub";

        private static IReadOnlyList<string> ModulesOf(string driver) => driver == PciStub ? StubModules : Modules;

        private static string MarkerOf(string driver) => driver == PciStub ? Marker.Replace("vfio-pci in the initramfs", "pci-stub in the initramfs") : Marker;

        /// <summary>The file the tool reads its module list from.</summary>
        public static string FileOf(InitramfsTool tool, string driver = "vfio-pci") => tool switch
        {
            InitramfsTool.Dracut => driver == PciStub ? DracutFile.Replace("vfio-pci", PciStub) : DracutFile,
            InitramfsTool.Mkinitcpio => driver == PciStub ? MkinitcpioFile.Replace("vfio-pci", PciStub) : MkinitcpioFile,
            _ => InitramfsToolsFile,
        };

        /// <summary>The line (or lines) that put the modules in, as <see cref="With"/> writes them.</summary>
        public static string Entry(InitramfsTool tool, string driver = "vfio-pci") => tool switch
        {
            InitramfsTool.Dracut => "force_drivers+=\" " + string.Join(" ", ModulesOf(driver)) + " \"",
            InitramfsTool.Mkinitcpio => "MODULES+=(" + string.Join(" ", ModulesOf(driver)) + ")",
            _ => string.Join("\n", ModulesOf(driver)),
        };

        /// <summary>Whether <paramref name="text"/> (the file, null when it does not exist) holds what the module writes.</summary>
        public static bool Has(string? text, string driver = "vfio-pci") => text != null && Lines(text).Contains(MarkerOf(driver));

        /// <summary>The file with the modules in: the module's own file, or the administrator's with the block appended.</summary>
        public static string With(InitramfsTool tool, string? text, string driver = "vfio-pci")
        {
            if (Has(text, driver)) return text!;
            var block = MarkerOf(driver) + "\n" + Entry(tool, driver) + "\n";
            if (tool != InitramfsTool.InitramfsTools || string.IsNullOrEmpty(text)) return block;
            return text + (text!.EndsWith("\n", StringComparison.Ordinal) ? string.Empty : "\n") + block;
        }

        /// <summary>
        /// The file without what the module wrote: null (delete) for the module's own file, or for an
        /// initramfs-tools list left with nothing; the administrator's lines stay as they are.
        /// </summary>
        public static string? Without(InitramfsTool tool, string? text, string driver = "vfio-pci")
        {
            if (!Has(text, driver)) return text;
            if (tool != InitramfsTool.InitramfsTools) return null;
            var lines = text!.Split('\n').ToList();
            var at = lines.IndexOf(MarkerOf(driver));
            var modules = ModulesOf(driver);
            var count = 1;
            while (count <= modules.Count && at + count < lines.Count && lines[at + count] == modules[count - 1]) count++;
            lines.RemoveRange(at, count);
            var left = string.Join("\n", lines);
            return left.Length == 0 ? null : left;
        }

        private static IEnumerable<string> Lines(string text) => text.Split('\n');
    }
}
