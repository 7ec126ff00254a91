using System.Globalization;
using System.Text.RegularExpressions;
using GpuVirt.HelpBuilder.Model;
using Markdig.Syntax;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace GpuVirt.HelpBuilder.Reading;

/// <summary>
/// The yaml block under a <c>### -Name</c> heading (PlatyPS 2024-05-01), read with YamlDotNet.
/// Keys are matched exactly; a key the schema does not have is an error, so a typo does not vanish silently.
/// </summary>
internal sealed class ParameterYaml
{
    public string? Type { get; set; }

    public string? DefaultValue { get; set; }

    public bool SupportsWildcards { get; set; }

    /// <summary>Written by PlatyPS (always empty there); accepted and ignored.</summary>
    public List<string>? ParameterValue { get; set; }

    public List<string>? Aliases { get; set; }

    public List<ParameterSetYaml>? ParameterSets { get; set; }

    public bool DontShow { get; set; }

    public List<string>? AcceptedValues { get; set; }

    public string? HelpMessage { get; set; }

    /// <summary>Present in some PlatyPS output; accepted and ignored.</summary>
    public bool? VariableLength { get; set; }

    /// <summary>What to say when the YAML scanner stops without a position.</summary>
    internal const string ScannerGaveUp = "the YAML could not be read (is a '[', '{' or quote left open?)";

    private static readonly IDeserializer Deserializer = new DeserializerBuilder().Build();

    /// <summary>Reads the block and checks it against the schema.</summary>
    /// <param name="source">The page, for messages.</param>
    /// <param name="name">The parameter name (without the dash).</param>
    /// <param name="description">The description paragraphs.</param>
    /// <param name="heading">The parameter's heading.</param>
    /// <param name="block">The yaml code block.</param>
    public static Parameter Read(MarkdownSource source, string name, IReadOnlyList<string> description, HeadingBlock heading, FencedCodeBlock block)
    {
        string yaml = MarkdownText.Code(block);
        int firstLine = MarkdownSource.LineOf(block) + 1; // the line after the opening fence
        ParameterYaml? parsed;
        try
        {
            parsed = Deserializer.Deserialize<ParameterYaml>(yaml);
        }
        catch (YamlException e)
        {
            throw source.Error(firstLine + (int)e.Start.Line - 1, $"parameter -{name}: malformed yaml: {YamlMessage(e)}");
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner gives up this way on some broken input (an unclosed flow sequence), with no position.
            throw source.Error(block, $"parameter -{name}: malformed yaml: {ScannerGaveUp}");
        }

        if (parsed is null)
        {
            throw source.Error(block, $"parameter -{name}: the yaml block is empty");
        }

        if (string.IsNullOrWhiteSpace(parsed.Type))
        {
            throw source.Error(block, $"parameter -{name}: the yaml block has no 'Type'");
        }

        if (parsed.ParameterSets is null || parsed.ParameterSets.Count == 0)
        {
            throw source.Error(block, $"parameter -{name}: the yaml block has no 'ParameterSets' (use '- Name: (All)' for every set)");
        }

        var sets = new List<ParameterSetInfo>();
        foreach (var set in parsed.ParameterSets)
        {
            if (set is null || string.IsNullOrWhiteSpace(set.Name))
            {
                throw source.Error(block, $"parameter -{name}: every entry of 'ParameterSets' needs a 'Name'");
            }

            string position = string.IsNullOrWhiteSpace(set.Position) ? "Named" : set.Position.Trim();
            if (!string.Equals(position, "Named", StringComparison.OrdinalIgnoreCase)
                && !(int.TryParse(position, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p >= 0))
            {
                throw source.Error(block, $"parameter -{name}: Position '{position}' in set '{set.Name}' is neither 'Named' nor a number");
            }

            sets.Add(new ParameterSetInfo(set.Name.Trim(), position, set.IsRequired, set.ValueFromPipeline,
                set.ValueFromPipelineByPropertyName, set.ValueFromRemainingArguments));
        }

        var duplicate = sets.GroupBy(s => s.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw source.Error(block, $"parameter -{name}: parameter set '{duplicate.Key}' is listed twice");
        }

        return new Parameter(
            name,
            description,
            parsed.Type.Trim(),
            parsed.DefaultValue?.Trim() ?? string.Empty,
            parsed.SupportsWildcards,
            Clean(parsed.Aliases),
            sets,
            parsed.DontShow,
            Clean(parsed.AcceptedValues),
            parsed.HelpMessage?.Trim() ?? string.Empty,
            MarkdownSource.LineOf(heading));
    }

    private static List<string> Clean(List<string>? values) =>
        values?.Where(v => !string.IsNullOrWhiteSpace(v)).Select(v => v.Trim()).ToList() ?? [];

    /// <summary>The keys a parameter's yaml block may have.</summary>
    internal static readonly IReadOnlyList<string> Keys =
    [
        nameof(Type), nameof(DefaultValue), nameof(SupportsWildcards), nameof(ParameterValue), nameof(Aliases),
        nameof(ParameterSets), nameof(DontShow), nameof(AcceptedValues), nameof(HelpMessage), nameof(VariableLength),
    ];

    private static string YamlMessage(YamlException e)
    {
        var unknown = Regex.Match(e.Message, @"Property '(?<key>[^']*)' not found on type '[^']*\.(?<type>\w+)'");
        if (unknown.Success)
        {
            var keys = unknown.Groups["type"].Value == nameof(ParameterSetYaml) ? ParameterSetYaml.Keys : Keys;
            return $"unknown key '{unknown.Groups["key"].Value}'; the keys are {string.Join(", ", keys)}";
        }

        // YamlDotNet wraps conversion errors ("Property 'X' not found on type ..."); the innermost message says most.
        var messages = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            string m = StripMark(x.Message).Replace("Exception during deserialization", string.Empty, StringComparison.Ordinal).Trim();
            if (m.Length > 0 && !messages.Contains(m))
            {
                messages.Add(m);
            }
        }

        return string.Join(" ", messages);
    }

    internal static string StripMark(string message)
    {
        // "(Line: 3, Col: 1, Idx: 20) - (Line: 3, Col: 9, Idx: 28): text" -> "text"
        int i = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && i > 0 ? message[(i + 3)..].Trim() : message.Trim();
    }
}

/// <summary>One entry of <c>ParameterSets</c>.</summary>
internal sealed class ParameterSetYaml
{
    /// <summary>The keys an entry of ParameterSets may have.</summary>
    internal static readonly IReadOnlyList<string> Keys =
    [
        nameof(Name), nameof(Position), nameof(IsRequired), nameof(ValueFromPipeline),
        nameof(ValueFromPipelineByPropertyName), nameof(ValueFromRemainingArguments),
    ];

    public string? Name { get; set; }

    public string? Position { get; set; }

    public bool IsRequired { get; set; }

    public bool ValueFromPipeline { get; set; }

    public bool ValueFromPipelineByPropertyName { get; set; }

    public bool ValueFromRemainingArguments { get; set; }
}
