using System;
using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Turns the bound <c>-Address</c> and <c>-Uuid</c> values of a hostdev cmdlet into sources. A piped object with a
    /// <c>Uuid</c> (a vGPU device) is a mediated device even when it also has an <c>Address</c>; an object with only an
    /// <c>Address</c> (a GPU or PCI device) is a PCI function. Malformed values are reported one by one.
    /// </summary>
    internal static class HostdevSelector
    {
        public static IReadOnlyList<HostdevSource> Sources(string[]? addresses, string[]? uuids, bool piped, Action<GpuVirtException> reportError)
        {
            var a = NonEmpty(addresses);
            var u = NonEmpty(uuids);
            if (a.Count == 0 && u.Count == 0)
            {
                reportError(new GpuVirtException(ErrorIds.HostdevSourceMissing, ErrorKind.InvalidArgument,
                    "Give the device: -Address (a PCI address, or a piped GPU or PCI device) or -Uuid (a mediated device UUID, or a piped vGPU device)."));
                return Array.Empty<HostdevSource>();
            }
            if (a.Count > 0 && u.Count > 0)
            {
                if (!piped)
                {
                    reportError(new GpuVirtException(ErrorIds.HostdevSourceAmbiguous, ErrorKind.InvalidArgument,
                        "Give either -Address (PCI hostdevs) or -Uuid (mediated device hostdevs), not both in one call."));
                    return Array.Empty<HostdevSource>();
                }
                a = new List<string>();
            }

            var sources = new List<HostdevSource>();
            foreach (var text in u)
            {
                if (MdevUuid.TryParse(text, out var uuid)) sources.Add(HostdevSource.Mdev(uuid));
                else reportError(new GpuVirtException(ErrorIds.InvalidMdevUuid, ErrorKind.InvalidArgument,
                    $"'{text}' is not a mediated device UUID. Give {MdevUuid.AcceptedForm}.", text));
            }
            foreach (var text in a)
            {
                if (PciAddress.TryParse(text, out var address)) sources.Add(HostdevSource.Pci(address));
                else reportError(PciAddress.NotAnAddress(text));
            }
            return sources;
        }

        private static List<string> NonEmpty(string[]? values) =>
            values?.Where(v => !string.IsNullOrWhiteSpace(v)).ToList() ?? new List<string>();
    }
}
