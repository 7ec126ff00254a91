using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Completes the GPU vendor names Get-GpuDevice understands.</summary>
    public sealed class GpuVendorCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
            return GpuVendors.ByName.Keys
                .Where(k => k.StartsWith(prefix, System.StringComparison.OrdinalIgnoreCase))
                .OrderBy(k => k)
                .Select(k => new CompletionResult(k, k, CompletionResultType.ParameterValue, k + " (" + string.Join(", ", GpuVendors.ByName[k].Select(v => v.ToString("x4"))) + ")"));
        }
    }
}
