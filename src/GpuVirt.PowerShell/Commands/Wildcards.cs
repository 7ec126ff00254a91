using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>
    /// The wildcard patterns of the module's parameters: checked when made, so that a pattern PowerShell cannot read
    /// (<c>'['</c>) is an <see cref="ErrorIds.InvalidWildcard"/> error naming the parameter, not a bare RuntimeException
    /// at the first match.
    /// </summary>
    internal static class Wildcards
    {
        public static WildcardPattern Create(string text, string parameter)
        {
            var pattern = new WildcardPattern(text, WildcardOptions.IgnoreCase);
            try
            {
                // WildcardPattern parses on first use.
                pattern.IsMatch(string.Empty);
            }
            catch (WildcardPatternException e)
            {
                throw new GpuVirtException(ErrorIds.InvalidWildcard, ErrorKind.InvalidArgument,
                    $"-{parameter} '{text}' is not a valid wildcard pattern: {e.Message.TrimEnd('.')}. " +
                    "A literal '[' or ']' is written with a backtick before it ('`[').", text, e);
            }
            return pattern;
        }
    }
}
