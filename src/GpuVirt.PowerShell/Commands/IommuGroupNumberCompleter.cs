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
}
