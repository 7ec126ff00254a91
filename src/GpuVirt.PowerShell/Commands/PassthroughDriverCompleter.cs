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
}
