using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;

namespace GpuVirt.Core.Boot
{
    /// <summary>The stub driver that holds a device at boot so that no host driver takes it.</summary>
    internal enum StubDriver
    {
        /// <summary><c>pci-stub.ids=</c>, as the RHEL 7 procedure writes it (pci-stub is built into RHEL kernels).</summary>
        PciStub,

        /// <summary><c>vfio-pci.ids=</c>: the device is ready for a guest at boot (vfio-pci built in or in the initramfs).</summary>
        VfioPci,
    }

    /// <summary>The CPU vendor, which decides the IOMMU arguments.</summary>
    public enum CpuVendor
    {
        /// <summary>Intel VT-d: <c>intel_iommu=on iommu=pt</c>.</summary>
        Intel,

        /// <summary>AMD-Vi (also Hygon): the IOMMU is on by default; <c>iommu=pt</c>.</summary>
        Amd,
    }

    /// <summary>Kernel command line words: keys, comma lists, and the arguments this module manages.</summary>
    internal static class KernelArguments
    {
        public const string IntelIommu = "intel_iommu";
        public const string AmdIommu = "amd_iommu";
        public const string Iommu = "iommu";
        public const string PciStubIds = "pci-stub.ids";
        public const string VfioPciIds = "vfio-pci.ids";
        public const string ModprobeBlacklist = "modprobe.blacklist";
        public const string Nouveau = "nouveau";

        private static readonly Regex IdPattern = new Regex("^(?:0x)?([0-9a-fA-F]{1,4}):(?:0x)?([0-9a-fA-F]{1,4})$", RegexOptions.CultureInvariant);

        /// <summary>Characters the module writes into a command line: none needs quoting in any shell string.</summary>
        public static bool IsPlainChar(char c) =>
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "._-:,=/+@%".IndexOf(c) >= 0;

        /// <summary>The key of an argument: the text before the first <c>=</c>.</summary>
        public static string KeyOf(string argument)
        {
            var eq = argument.IndexOf('=');
            return eq < 0 ? argument : argument.Substring(0, eq);
        }

        /// <summary>The value after the first <c>=</c>, or null when the argument has none.</summary>
        public static string? ValueOf(string argument)
        {
            var eq = argument.IndexOf('=');
            return eq < 0 ? null : argument.Substring(eq + 1);
        }

        /// <summary>The kernel compares parameter names with <c>-</c> and <c>_</c> as the same character.</summary>
        public static bool SameKey(string a, string b) =>
            string.Equals(a.Replace('-', '_'), b.Replace('-', '_'), StringComparison.Ordinal);

        /// <summary>The comma-separated items of a value; an empty or missing value has none.</summary>
        public static List<string> ItemsOf(string argument)
        {
            var value = ValueOf(argument);
            return string.IsNullOrEmpty(value) ? new List<string>() : value!.Split(',').ToList();
        }

        /// <summary>Builds <c>key=item,item</c> (or the bare key when it had no <c>=</c> and has no items).</summary>
        public static string Compose(string key, IReadOnlyList<string> items, bool hadEquals = true) =>
            items.Count == 0 && !hadEquals ? key : key + "=" + string.Join(",", items);

        /// <summary>Splits a command line (<c>/proc/cmdline</c>, a BLS <c>options</c> line) into arguments, honouring double quotes.</summary>
        public static IReadOnlyList<string> Split(string? commandLine)
        {
            var result = new List<string>();
            if (string.IsNullOrEmpty(commandLine)) return result;
            var current = new System.Text.StringBuilder();
            var inQuotes = false;
            foreach (var c in commandLine!)
            {
                if (c == '"') inQuotes = !inQuotes;
                if (!inQuotes && char.IsWhiteSpace(c))
                {
                    if (current.Length > 0) result.Add(current.ToString());
                    current.Clear();
                    continue;
                }
                current.Append(c);
            }
            if (current.Length > 0) result.Add(current.ToString());
            return result;
        }

        /// <summary>Module parameters: when given twice the kernel (or modprobe) keeps only the last one.</summary>
        public static bool IsLastWins(string key) => SameKey(key, PciStubIds) || SameKey(key, VfioPciIds);

        /// <summary>
        /// The items the kernel takes for a key: those of the last argument for a module parameter
        /// (<see cref="IsLastWins"/>), of every argument otherwise.
        /// </summary>
        public static IReadOnlyList<string> EffectiveItems(IEnumerable<string> arguments, string key)
        {
            if (!IsLastWins(key)) return ItemsFor(arguments, key);
            var last = arguments.LastOrDefault(a => SameKey(KeyOf(a), key));
            return last is null ? new List<string>() : ItemsOf(last);
        }

        /// <summary>The items of every argument with the key (later arguments after earlier ones).</summary>
        public static IReadOnlyList<string> ItemsFor(IEnumerable<string> arguments, string key) =>
            arguments.Where(a => SameKey(KeyOf(a), key)).SelectMany(ItemsOf).ToList();

        /// <summary>The kernel key for a stub driver's id list.</summary>
        public static string IdsKey(StubDriver driver) => driver == StubDriver.VfioPci ? VfioPciIds : PciStubIds;

        public static StubDriver OtherDriver(StubDriver driver) => driver == StubDriver.VfioPci ? StubDriver.PciStub : StubDriver.VfioPci;

        /// <summary>Normalizes a <c>vendor:device</c> id (<c>10DE:11FA</c>, <c>0x10de:0x11fa</c>) to <c>10de:11fa</c>; null when malformed.</summary>
        public static string? NormalizeId(string? id)
        {
            if (id is null) return null;
            var m = IdPattern.Match(id.Trim());
            if (!m.Success) return null;
            var vendor = ushort.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var device = ushort.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return vendor.ToString("x4", CultureInfo.InvariantCulture) + ":" + device.ToString("x4", CultureInfo.InvariantCulture);
        }

        /// <summary>The IOMMU arguments for a CPU vendor, as the RHEL procedure gives them.</summary>
        public static IReadOnlyList<string> IommuArguments(CpuVendor vendor, bool passthrough)
        {
            var list = new List<string>();
            if (vendor == CpuVendor.Intel) list.Add(IntelIommu + "=on");
            if (passthrough) list.Add(Iommu + "=pt");
            return list;
        }
    }
}
