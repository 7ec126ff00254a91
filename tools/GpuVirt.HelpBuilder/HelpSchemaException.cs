namespace GpuVirt.HelpBuilder;

/// <summary>A markdown page breaks the schema. Carries the file and the 1-based line the problem is on.</summary>
internal sealed class HelpSchemaException : Exception
{
    public HelpSchemaException(string file, int line, string problem, Exception? inner = null)
        : base($"{file}:{line}: {problem}", inner)
    {
        File = file;
        Line = line;
        Problem = problem;
    }

    /// <summary>The markdown file, as it was given.</summary>
    public string File { get; }

    /// <summary>The 1-based line number.</summary>
    public int Line { get; }

    /// <summary>The problem, without the file and line.</summary>
    public string Problem { get; }
}
