using Markdig;
using Markdig.Extensions.Yaml;
using Markdig.Syntax;

namespace GpuVirt.HelpBuilder.Reading;

/// <summary>A markdown file parsed by Markdig, with its front matter split off.</summary>
internal sealed class MarkdownSource
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .UseYamlFrontMatter()
        .UsePipeTables()
        .Build();

    private MarkdownSource(string path, MarkdownDocument document, FrontMatter? frontMatter)
    {
        Path = path;
        Document = document;
        FrontMatter = frontMatter;
        Blocks = document.Where(b => b is not YamlFrontMatterBlock).ToList();
    }

    /// <summary>The file as given (used in messages).</summary>
    public string Path { get; }

    public MarkdownDocument Document { get; }

    /// <summary>The front matter, or null when the file has none.</summary>
    public FrontMatter? FrontMatter { get; }

    /// <summary>The top-level blocks after the front matter.</summary>
    public IReadOnlyList<Block> Blocks { get; }

    public static MarkdownSource Load(string path) => Parse(path, File.ReadAllText(path));

    public static MarkdownSource Parse(string path, string text)
    {
        var document = Markdown.Parse(text, Pipeline);
        FrontMatter? frontMatter = null;
        if (document.FirstOrDefault() is YamlFrontMatterBlock yaml)
        {
            frontMatter = FrontMatter.Read(path, yaml);
        }

        return new MarkdownSource(path, document, frontMatter);
    }

    /// <summary>The 1-based line a block starts on.</summary>
    public static int LineOf(Block block) => block.Line + 1;

    public HelpSchemaException Error(Block block, string problem) => new(Path, LineOf(block), problem);

    public HelpSchemaException Error(int line, string problem) => new(Path, line, problem);
}
