using Markdig.Extensions.Yaml;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GpuVirt.HelpBuilder.Reading;

/// <summary>
/// The YAML front matter of a page: a flat map of scalar values, read with YamlDotNet.
/// Keys are compared case-insensitively, as PlatyPS does.
/// </summary>
internal sealed class FrontMatter
{
    private readonly Dictionary<string, (string Value, int Line)> _values;

    private FrontMatter(int line, Dictionary<string, (string Value, int Line)> values)
    {
        Line = line;
        _values = values;
    }

    /// <summary>The 1-based line of the opening <c>---</c>.</summary>
    public int Line { get; }

    public IReadOnlyDictionary<string, string> Values =>
        _values.ToDictionary(kv => kv.Key, kv => kv.Value.Value, StringComparer.OrdinalIgnoreCase);

    public bool TryGet(string key, out string value, out int line)
    {
        if (_values.TryGetValue(key, out var entry))
        {
            value = entry.Value;
            line = entry.Line;
            return true;
        }

        value = string.Empty;
        line = Line;
        return false;
    }

    public static FrontMatter Read(string path, YamlFrontMatterBlock block)
    {
        // The block's lines include the --- fences; the YAML text starts on the line after the opening one.
        int fenceLine = block.Line + 1;
        var lines = block.Lines.Lines.Take(block.Lines.Count).Select(l => l.Slice.ToString()).ToList();
        if (lines.Count > 0 && lines[0].Trim() == "---")
        {
            lines.RemoveAt(0);
        }

        if (lines.Count > 0 && lines[^1].Trim() is "---" or "...")
        {
            lines.RemoveAt(lines.Count - 1);
        }

        var yaml = new YamlStream();
        try
        {
            yaml.Load(new StringReader(string.Join('\n', lines)));
        }
        catch (YamlException e)
        {
            throw new HelpSchemaException(path, fenceLine + (int)e.Start.Line, $"malformed YAML front matter: {Reason(e)}", e);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner gives up this way on some broken input (an unclosed flow sequence), with no position.
            throw new HelpSchemaException(path, fenceLine, $"malformed YAML front matter: {ParameterYaml.ScannerGaveUp}", e);
        }

        var values = new Dictionary<string, (string, int)>(StringComparer.OrdinalIgnoreCase);
        if (yaml.Documents.Count == 0)
        {
            return new FrontMatter(fenceLine, values);
        }

        if (yaml.Documents[0].RootNode is not YamlMappingNode map)
        {
            throw new HelpSchemaException(path, fenceLine, "malformed YAML front matter: expected 'key: value' lines");
        }

        foreach (var (keyNode, valueNode) in map.Children)
        {
            int line = fenceLine + (int)keyNode.Start.Line;
            string key = keyNode is YamlScalarNode k ? k.Value ?? string.Empty : keyNode.ToString();
            string value = valueNode switch
            {
                YamlScalarNode s => s.Value ?? string.Empty,
                _ => throw new HelpSchemaException(path, line, $"front matter key '{key}' must have a single value"),
            };
            if (!values.TryAdd(key, (value, line)))
            {
                throw new HelpSchemaException(path, line, $"front matter key '{key}' appears twice");
            }
        }

        return new FrontMatter(fenceLine, values);
    }

    /// <summary>YamlDotNet's message, without the position prefix it adds (we give our own).</summary>
    internal static string Reason(YamlException e)
    {
        return ParameterYaml.StripMark(e.Message);
    }
}
