using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace GpuVirt.Tests;

/// <summary>
/// The source tree reads like the type tree: a file's namespace is its project's root namespace plus its folders, and a
/// file is named after a type it declares.
/// </summary>
public class SourceLayoutTests
{
    private static readonly Regex NamespaceLine = new(@"^namespace ([\w.]+)", RegexOptions.Multiline);

    private static readonly Regex TypeDeclaration = new(
        @"^\s*(?:\[[^\]]*\]\s*)*(?:(?:public|internal|private|protected|sealed|static|abstract|readonly|partial|file)\s+)*(?:class|record\s+struct|record|struct|enum|interface)\s+(\w+)",
        RegexOptions.Multiline);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "GpuVirt.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("GpuVirt.sln not found above " + AppContext.BaseDirectory);
    }

    public static IEnumerable<object[]> Projects() =>
        Directory.GetFiles(Path.Combine(RepositoryRoot(), "src"), "*.csproj", SearchOption.AllDirectories)
            .Select(p => new object[] { Path.GetFileName(Path.GetDirectoryName(p)!) });

    private static IEnumerable<string> SourceFiles(string projectDir) =>
        Directory.GetFiles(projectDir, "*.cs", SearchOption.AllDirectories)
            .Where(f =>
            {
                var rel = Path.GetRelativePath(projectDir, f).Split(Path.DirectorySeparatorChar);
                return rel[0] != "bin" && rel[0] != "obj";
            });

    [Theory]
    [MemberData(nameof(Projects))]
    public void Namespaces_follow_folders_and_files_are_named_after_a_type(string project)
    {
        var projectDir = Path.Combine(RepositoryRoot(), "src", project);
        var csproj = XDocument.Load(Path.Combine(projectDir, project + ".csproj"));
        var rootNamespace = csproj.Descendants("RootNamespace").Select(e => e.Value).SingleOrDefault() ?? project;
        var wrong = new List<string>();
        var files = SourceFiles(projectDir).ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            var folders = Path.GetDirectoryName(Path.GetRelativePath(projectDir, file))!;
            var expected = folders.Length == 0
                ? rootNamespace
                : rootNamespace + "." + folders.Replace(Path.DirectorySeparatorChar, '.');
            var declared = NamespaceLine.Matches(text).Select(m => m.Groups[1].Value).ToList();
            if (declared.Count != 1 || declared[0] != expected)
            {
                wrong.Add($"{Path.GetRelativePath(projectDir, file)}: namespace {string.Join(", ", declared)}, expected {expected}");
            }

            var types = TypeDeclaration.Matches(text).Select(m => m.Groups[1].Value).ToHashSet();
            var name = Path.GetFileNameWithoutExtension(file);
            if (!types.Contains(name))
            {
                wrong.Add($"{Path.GetRelativePath(projectDir, file)}: declares {string.Join(", ", types.Order())}, none named {name}");
            }
        }

        Assert.True(wrong.Count == 0, string.Join(Environment.NewLine, wrong));
    }
}
