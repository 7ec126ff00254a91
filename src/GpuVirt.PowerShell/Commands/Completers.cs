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
    /// What every completer shares: the host it completes for (the command's <c>-Root</c> when typed, else <c>/</c>),
    /// PowerShell quoting, and the bound on its time: a completion that has not answered in <see cref="Budget"/> offers
    /// nothing rather than hold the prompt.
    /// </summary>
    internal static class CompletionHost
    {
        /// <summary>The longest a completion may take (sysfs reads and virsh alike).</summary>
        public static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

        /// <summary>The host of the typed <c>-Root</c> (relative to the current location, <c>~</c> expanded), null when it does not exist.</summary>
        public static HostRoot? Root(IDictionary? fakeBoundParameters)
        {
            var given = fakeBoundParameters?["Root"] is { } value ? LanguagePrimitives.ConvertTo<string>(value) : "/";
            if (string.IsNullOrEmpty(given)) given = "/";
            try
            {
                var path = given;
                if (Runspace.DefaultRunspace != null)
                {
                    // The completion runs on the session's pipeline thread: a nested command there sees its location.
                    using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
                    ps.AddScript("$ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($args[0])").AddArgument(given);
                    try
                    {
                        var resolved = ps.Invoke();
                        if (resolved.Count == 1 && resolved[0]?.BaseObject is string full) path = full;
                    }
                    catch (Exception e) when (e is RuntimeException || e is PSInvalidOperationException)
                    {
                        path = given;
                    }
                }
                var host = new HostRoot(path);
                return Directory.Exists(host.Directory) ? host : null;
            }
            catch (ArgumentException)
            {
                return null;
            }
        }

        /// <summary>
        /// Runs <paramref name="complete"/> for at most <see cref="Budget"/>; its results, or none when it is slower or fails.
        /// </summary>
        public static IEnumerable<CompletionResult> Bounded(Func<IEnumerable<CompletionResult>> complete)
        {
            var task = Task.Run(() => complete().ToList());
            try
            {
                return task.Wait(Budget) ? task.Result : Enumerable.Empty<CompletionResult>();
            }
            catch (AggregateException)
            {
                return Enumerable.Empty<CompletionResult>();
            }
        }

        /// <summary>A text as a PowerShell argument: bare when plain, else single-quoted with every kind of single quote doubled.</summary>
        public static string Quote(string text)
        {
            if (text.Length > 0 && text.All(c => char.IsLetterOrDigit(c) || c == '-' || c == '_' || c == '.') && !char.IsDigit(text[0]) && text[0] != '-')
                return text;
            var sb = new System.Text.StringBuilder("'");
            foreach (var c in text)
            {
                sb.Append(c);
                if (c == '\'' || c == '\u2018' || c == '\u2019' || c == '\u201a' || c == '\u201b') sb.Append(c);
            }
            return sb.Append('\'').ToString();
        }

        public static string Prefix(string? word) => (word ?? string.Empty).Trim('\'', '"');

        /// <summary>Whether a PCI address matches what was typed, in full (<c>0000:01</c>) or without the domain (<c>01:00</c>).</summary>
        public static bool MatchesAddress(string address, string prefix) =>
            address.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            || (address.StartsWith("0000:", StringComparison.Ordinal) && address.Substring(5).StartsWith(prefix, StringComparison.OrdinalIgnoreCase));

        public static CompletionResult Value(string text, string tip) =>
            new CompletionResult(text, text, CompletionResultType.ParameterValue, tip);
    }

    /// <summary>Completes the GPU vendor names Get-GpuDevice understands.</summary>
    public sealed class GpuVendorCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var prefix = CompletionHost.Prefix(wordToComplete);
            return GpuVendors.ByName.Keys
                .Where(k => k.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                .OrderBy(k => k)
                .Select(k => CompletionHost.Value(k, k + " (" + string.Join(", ", GpuVendors.ByName[k].Select(v => v.ToString("x4"))) + ")"));
        }
    }

    /// <summary>
    /// Completes guest names from virsh on the connection given with -Connect (or the default). One virsh process, stopped
    /// at <see cref="CompletionHost.Budget"/> and not tried again: a libvirt that does not answer offers no names.
    /// </summary>
    public sealed class DomainNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var connect = fakeBoundParameters?["Connect"] is { } value ? LanguagePrimitives.ConvertTo<string>(value) : null;
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
            {
                IReadOnlyList<string> names;
                try
                {
                    var virsh = new Virsh(new ProcessRunner(), connect) { Timeout = CompletionHost.Budget, RetryStalledReads = false };
                    names = virsh.ListDomains();
                }
                catch (GpuVirtException)
                {
                    return Enumerable.Empty<CompletionResult>();
                }
                return names
                    .Where(n => n.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    .OrderBy(n => n, StringComparer.OrdinalIgnoreCase)
                    .Select(n => new CompletionResult(CompletionHost.Quote(n), n, CompletionResultType.ParameterValue, n));
            });
        }
    }

    /// <summary>Completes the drivers Dismount-GpuHostDriver binds for passthrough.</summary>
    public sealed class PassthroughDriverCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var prefix = CompletionHost.Prefix(wordToComplete);
            return new[] { HostDriverBinding.VfioPci, HostDriverBinding.PciStub }
                .Where(d => d.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                .Select(d => CompletionHost.Value(d, d));
        }
    }

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

    /// <summary>Completes the IOMMU group numbers of the host of the typed <c>-Root</c>, with their members as the tip.</summary>
    public sealed class IommuGroupNumberCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
            {
                var groups = host.Resolve(HostPaths.IommuGroups);
                return IommuGroups.GroupNumbers(host)
                    .Select(n => n.ToString(CultureInfo.InvariantCulture))
                    .Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
                    .Select(n =>
                    {
                        var members = Sysfs.TryListNames(Path.Combine(groups, n, "devices")) ?? new List<string>();
                        members.Sort(StringComparer.Ordinal);
                        return CompletionHost.Value(n, "IOMMU group " + n + ": " + string.Join(", ", members));
                    });
            });
        }
    }

    /// <summary>Completes the PCI drivers loaded on the host of the typed <c>-Root</c> (<c>/sys/bus/pci/drivers</c>).</summary>
    public sealed class PciDriverCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var host = CompletionHost.Root(fakeBoundParameters);
            if (host is null) return Enumerable.Empty<CompletionResult>();
            var prefix = CompletionHost.Prefix(wordToComplete);
            return CompletionHost.Bounded(() =>
                (Sysfs.TryListNames(host.Resolve(HostPaths.PciDrivers)) ?? new List<string>())
                    .Where(d => d.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    .OrderBy(d => d, StringComparer.Ordinal)
                    .Select(d => new CompletionResult(CompletionHost.Quote(d), d, CompletionResultType.ParameterValue, "loaded PCI driver " + d)));
        }
    }
}
