using System;
using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Completes PCI addresses of the host of the typed <c>-Root</c>, with vendor, device and driver as the tip:
    /// GPUs only for the commands that take only GPUs, every function otherwise.
    /// </summary>
    internal sealed class PciAddressCompleter : GpuVirtCompleter
    {
        private static readonly HashSet<string> GpuCommands = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "Get-GpuDevice", "Enable-VgpuSriov",
        };

        protected override IEnumerable<CompletionResult> Offer(CompletionRequest request)
        {
            var gpusOnly = GpuCommands.Contains(request.Command);
            var inventory = new PciInventory(request.Host!, displayAsGpu: gpusOnly);
            IEnumerable<PciDevice> devices = gpusOnly ? inventory.Gpus() : inventory.Devices;
            foreach (var d in devices)
            {
                var text = d.Address.ToString();
                if (!request.MatchesAddress(text)) continue;
                yield return Value(text, $"{text} {d.VendorName ?? d.VendorId.ToString("x4")} {d.DeviceName ?? d.DeviceId.ToString("x4")} ({d.Driver ?? "no driver"})");
            }
        }
    }
}
