using System;
using System.Collections;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>What a completion is asked for: the command, the typed prefix, the other parameters on the line and their host.</summary>
    internal sealed class CompletionRequest
    {
        public CompletionRequest(string command, string prefix, IDictionary? bound, HostRoot? host)
        {
            Command = command;
            Prefix = prefix;
            Bound = bound;
            Host = host;
        }

        public string Command { get; }

        /// <summary>What was typed so far, without its quotes.</summary>
        public string Prefix { get; }

        public IDictionary? Bound { get; }

        /// <summary>The host of the typed <c>-Root</c> (<c>/</c> without one).</summary>
        public HostRoot? Host { get; }

        /// <summary>A parameter typed on the line, as text; null when it is not there.</summary>
        public string? Text(string parameter) => Text(Bound, parameter);

        /// <summary>A parameter of <paramref name="bound"/> (the line's fake bound parameters), as text; null when it is not there.</summary>
        public static string? Text(IDictionary? bound, string parameter) =>
            bound?[parameter] is { } value ? LanguagePrimitives.ConvertTo<string>(value) : null;

        public bool Matches(string candidate) => candidate.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

        /// <summary>Whether a PCI address matches what was typed, in full (<c>0000:01</c>) or without the domain (<c>01:00</c>).</summary>
        public bool MatchesAddress(string address) =>
            Matches(address) || (address.StartsWith("0000:", StringComparison.Ordinal) && address.Substring(5).StartsWith(Prefix, StringComparison.OrdinalIgnoreCase));
    }
}
