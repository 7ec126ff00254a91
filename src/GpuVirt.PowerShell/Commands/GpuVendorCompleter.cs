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
}
