using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using System.Threading.Tasks;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Completes PCI addresses of the host of the typed <c>-Root</c>, with vendor, device and driver as the tip:
    /// GPUs only for the commands that take only GPUs, every function otherwise.
    /// </summary>
    public sealed class PciAddressCompleter : IArgumentCompleter
    {
        private static readonly HashSet<string> GpuCommands = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "Get-GpuDevice", "Enable-VgpuSriov",
        };

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            var gpusOnly = GpuCommands.Contains(commandName ?? string.Empty);
            return CompletionHost.Bounded(() =>
            {
                var inventory = new PciInventory(host, displayAsGpu: gpusOnly);
                IEnumerable<PciDevice> devices = gpusOnly ? inventory.Gpus() : inventory.Devices;
                return devices
                    .Select(d => (Text: d.Address.ToString(), Device: d))
                    .Where(x => CompletionHost.MatchesAddress(x.Text, prefix))
                    .Select(x => CompletionHost.Value(x.Text,
                        $"{x.Text} {x.Device.VendorName ?? x.Device.VendorId.ToString("x4")} {x.Device.DeviceName ?? x.Device.DeviceId.ToString("x4")} ({x.Device.Driver ?? "no driver"})"));
            });
        }
    }
}
