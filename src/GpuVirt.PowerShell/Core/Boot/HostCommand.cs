using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>A program and its arguments, run on the host (inside the root when the root is not <c>/</c>).</summary>
    internal sealed class HostCommand
    {
        public HostCommand(string program, params string[] arguments)
        {
            Program = program;
            Arguments = arguments;
        }

        public string Program { get; }
        public IReadOnlyList<string> Arguments { get; }

        public override string ToString() => ProcessRunner.Render(Program, Arguments);
    }
}
