using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Picks devices by address (exact, in any accepted form, or with wildcards) and by hex ids, the way every
    /// inventory cmdlet does. Bad or unmatched addresses are reported per address; the rest still match.
    /// </summary>
    internal static class DeviceSelector
    {
        public static IEnumerable<T> ByAddress<T>(IReadOnlyList<T> devices, string[]? addresses, Action<GpuVirtException> reportError)
            where T : PciDevice
        {
            if (addresses is null || addresses.Length == 0)
            {
                foreach (var d in devices) yield return d;
                yield break;
            }

            var seen = new HashSet<PciAddress>();
            foreach (var text in addresses)
            {
                if (WildcardPattern.ContainsWildcardCharacters(text))
                {
                    WildcardPattern pattern;
                    try
                    {
                        pattern = Wildcards.Create(text, "Address");
                    }
                    catch (GpuVirtException e)
                    {
                        reportError(e);
                        continue;
                    }
                    foreach (var d in devices.Where(d => Matches(pattern, d.Address)))
                    {
                        if (seen.Add(d.Address)) yield return d;
                    }
                    continue;
                }
                if (!PciAddress.TryParse(text, out var address))
                {
                    reportError(PciAddress.NotAnAddress(text));
                    continue;
                }
                var found = devices.FirstOrDefault(d => d.Address == address);
                if (found is null)
                {
                    reportError(PciInventory.NotFound(address));
                    continue;
                }
                if (seen.Add(found.Address)) yield return found;
            }
        }

        private static bool Matches(WildcardPattern pattern, PciAddress address)
        {
            var canonical = address.ToString();
            if (pattern.IsMatch(canonical) || pattern.IsMatch(address.NodeDeviceName)) return true;
            return address.Domain == 0 && pattern.IsMatch(canonical.Substring(5));
        }

        /// <summary>Parses hex ids given as <c>10de</c> or <c>0x10de</c>.</summary>
        public static ushort[]? ParseIds(string[]? values, string parameter)
        {
            if (values is null || values.Length == 0) return null;
            return values.Select(v =>
            {
                var parsed = Sysfs.ParseHex(v?.Trim());
                if (parsed is null || parsed > 0xffff)
                {
                    throw new GpuVirtException(ErrorIds.InvalidPciId, ErrorKind.InvalidArgument,
                        $"-{parameter} '{v}' is not a 16-bit hex id such as 10de or 0x10de.", v);
                }
                return (ushort)parsed.Value;
            }).ToArray();
        }

        /// <summary>Class filters: hex prefixes of the 24-bit class code (<c>03</c>, <c>0300</c>, <c>030000</c>).</summary>
        public static string[]? ParseClasses(string[]? values)
        {
            if (values is null || values.Length == 0) return null;
            return values.Select(v =>
            {
                var s = (v ?? string.Empty).Trim().ToLowerInvariant();
                if (s.StartsWith("0x", StringComparison.Ordinal)) s = s.Substring(2);
                if (s.Length == 0 || s.Length > 6 || s.Length % 2 != 0 || Sysfs.ParseHex(s) is null)
                {
                    throw new GpuVirtException(ErrorIds.InvalidPciClass, ErrorKind.InvalidArgument,
                        $"-Class '{v}' is not a class code: give 2, 4 or 6 hex digits (03 display, 0300 VGA, 030000).", v);
                }
                return s;
            }).ToArray();
        }

        public static bool ClassMatches(uint classCode, string[] prefixes)
        {
            var text = classCode.ToString("x6", CultureInfo.InvariantCulture);
            return prefixes.Any(p => text.StartsWith(p, StringComparison.Ordinal));
        }
    }
}
