using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using GpuVirt.HelpBuilder.Model;

namespace GpuVirt.HelpBuilder.Writing;

/// <summary>
/// Writes cmdlet help as MAML, the XML that PowerShell's Get-Help reads for binary modules
/// (<c>&lt;ModuleBase&gt;/&lt;culture&gt;/&lt;Assembly&gt;.dll-Help.xml</c>). The element order and attribute forms follow
/// what PlatyPS writes.
/// </summary>
internal static class MamlWriter
{
    public const string RootNamespace = "http://msh";
    public const string MamlNamespace = "http://schemas.microsoft.com/maml/2004/10";
    public const string CommandNamespace = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    public const string DevNamespace = "http://schemas.microsoft.com/maml/dev/2004/10";
    public const string MSHelpNamespace = "http://msdn.microsoft.com/mshelp";

    public static void WriteFile(string path, IEnumerable<CommandHelp> commands)
    {
        using var stream = File.Create(path);
        Write(stream, commands);
    }

    public static string WriteString(IEnumerable<CommandHelp> commands)
    {
        using var stream = new MemoryStream();
        Write(stream, commands);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static void Write(Stream stream, IEnumerable<CommandHelp> commands)
    {
        var settings = new XmlWriterSettings
        {
            Encoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
            Indent = true,
            IndentChars = "  ",
            NewLineChars = "\n",
            NewLineHandling = NewLineHandling.Replace,
        };
        using var w = XmlWriter.Create(stream, settings);
        w.WriteStartDocument();
        w.WriteStartElement("helpItems", RootNamespace);
        w.WriteAttributeString("schema", "maml");
        foreach (var command in commands.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            WriteCommand(w, command);
        }

        w.WriteEndElement();
        w.WriteEndDocument();
        w.Flush();
        stream.Write("\n"u8);
    }

    private static void WriteCommand(XmlWriter w, CommandHelp help)
    {
        w.WriteStartElement("command", "command", CommandNamespace);
        w.WriteAttributeString("xmlns", "maml", null, MamlNamespace);
        w.WriteAttributeString("xmlns", "command", null, CommandNamespace);
        w.WriteAttributeString("xmlns", "dev", null, DevNamespace);
        w.WriteAttributeString("xmlns", "MSHelp", null, MSHelpNamespace);

        // details: name, verb, noun and the synopsis
        w.WriteStartElement("details", CommandNamespace);
        w.WriteElementString("name", CommandNamespace, help.Name);
        int dash = help.Name.IndexOf('-');
        w.WriteElementString("verb", CommandNamespace, dash > 0 ? help.Name[..dash] : help.Name);
        w.WriteElementString("noun", CommandNamespace, dash > 0 ? help.Name[(dash + 1)..] : string.Empty);
        WriteParas(w, "description", MamlNamespace, help.Synopsis);
        w.WriteEndElement();

        WriteParas(w, "description", MamlNamespace, help.Description);

        w.WriteStartElement("syntax", CommandNamespace);
        foreach (var item in help.Syntax)
        {
            WriteSyntaxItem(w, help, item);
        }

        w.WriteEndElement();

        w.WriteStartElement("parameters", CommandNamespace);
        foreach (var parameter in help.Parameters)
        {
            var first = parameter.ParameterSets[0];
            WriteParameter(
                w,
                parameter,
                required: parameter.ParameterSets.Any(s => s.IsRequired),
                position: first.Position,
                byValue: parameter.ParameterSets.Any(s => s.ValueFromPipeline),
                byPropertyName: parameter.ParameterSets.Any(s => s.ValueFromPipelineByPropertyName));
        }

        w.WriteEndElement();

        WriteTypes(w, "inputTypes", "inputType", help.Inputs);
        WriteTypes(w, "returnValues", "returnValue", help.Outputs);

        w.WriteStartElement("alertSet", MamlNamespace);
        if (help.Notes.Count > 0)
        {
            WriteParas(w, "alert", MamlNamespace, help.Notes);
        }

        w.WriteEndElement();

        w.WriteStartElement("examples", CommandNamespace);
        foreach (var example in help.Examples)
        {
            w.WriteStartElement("example", CommandNamespace);
            w.WriteElementString("title", MamlNamespace, $"--------- {example.Title} ---------");
            if (example.Introduction.Count > 0)
            {
                // Get-Help prints the introduction and the code with nothing between them (the introduction was
                // meant for a prompt such as "PS C:\>"), so prose before the code ends in a blank line of its own.
                WriteParas(w, "introduction", MamlNamespace, [string.Join("\n\n", example.Introduction) + "\n\n"]);
            }

            w.WriteElementString("code", DevNamespace, example.Code);
            WriteParas(w, "remarks", DevNamespace, example.Remarks);
            w.WriteEndElement();
        }

        w.WriteEndElement();

        w.WriteStartElement("relatedLinks", CommandNamespace);
        if (help.HelpUri is { } helpUri)
        {
            WriteLink(w, "Online Version:", helpUri);
        }

        foreach (var link in help.RelatedLinks)
        {
            // A page-relative link (Other-Cmdlet.md) means nothing in a console: keep its text only.
            WriteLink(w, link.Text, Reading.MarkdownText.IsAbsolute(link.Uri) ? link.Uri : string.Empty);
        }

        w.WriteEndElement();

        w.WriteEndElement(); // command:command
    }

    private static void WriteSyntaxItem(XmlWriter w, CommandHelp help, SyntaxItem item)
    {
        w.WriteStartElement("syntaxItem", CommandNamespace);
        w.WriteElementString("name", MamlNamespace, help.Name);
        var members = help.Parameters
            .Select(p => (Parameter: p, Set: SetFor(p, item.ParameterSetName)))
            .Where(x => x.Set is not null)
            .Select(x => (x.Parameter, Set: x.Set!))
            .OrderBy(x => OrderInSyntax(item.Text, x.Parameter.Name))
            .ToList();
        foreach (var (parameter, set) in members)
        {
            WriteParameter(w, parameter, set.IsRequired, set.Position, set.ValueFromPipeline, set.ValueFromPipelineByPropertyName);
        }

        w.WriteEndElement();
    }

    /// <summary>The parameter's entry for a set: the set named so, else (All), else none.</summary>
    internal static ParameterSetInfo? SetFor(Parameter parameter, string setName) =>
        parameter.ParameterSets.FirstOrDefault(s => string.Equals(s.Name, setName, StringComparison.OrdinalIgnoreCase))
        ?? parameter.ParameterSets.FirstOrDefault(s => s.IsAllSets);

    /// <summary>Where "-Name" first appears in the syntax text, so the syntax item keeps the order the page shows.</summary>
    private static int OrderInSyntax(string syntaxText, string name)
    {
        var match = Regex.Match(syntaxText, $@"-{Regex.Escape(name)}(?![A-Za-z0-9_])", RegexOptions.IgnoreCase);
        return match.Success ? match.Index : int.MaxValue;
    }

    private static void WriteParameter(XmlWriter w, Parameter parameter, bool required, string position, bool byValue, bool byPropertyName)
    {
        w.WriteStartElement("parameter", CommandNamespace);
        w.WriteAttributeString("required", Bool(required));
        w.WriteAttributeString("variableLength", "true");
        w.WriteAttributeString("globbing", Bool(parameter.SupportsWildcards));
        w.WriteAttributeString("pipelineInput", PipelineInput(byValue, byPropertyName));
        w.WriteAttributeString("position", MamlPosition(position));
        w.WriteAttributeString("aliases", parameter.Aliases.Count > 0 ? string.Join(", ", parameter.Aliases) : "none");

        w.WriteElementString("name", MamlNamespace, parameter.Name);
        WriteParas(w, "description", MamlNamespace, parameter.Description);
        if (parameter.AcceptedValues.Count > 0)
        {
            w.WriteStartElement("parameterValueGroup", CommandNamespace);
            foreach (string value in parameter.AcceptedValues)
            {
                w.WriteStartElement("parameterValue", CommandNamespace);
                w.WriteAttributeString("required", "false");
                w.WriteAttributeString("command", "variableLength", CommandNamespace, "false");
                w.WriteString(value);
                w.WriteEndElement();
            }

            w.WriteEndElement();
        }

        if (!parameter.IsSwitch)
        {
            w.WriteStartElement("parameterValue", CommandNamespace);
            w.WriteAttributeString("required", "true");
            w.WriteAttributeString("variableLength", "false");
            w.WriteString(parameter.Type);
            w.WriteEndElement();
        }

        w.WriteStartElement("type", DevNamespace);
        w.WriteElementString("name", MamlNamespace, parameter.Type);
        w.WriteElementString("uri", MamlNamespace, string.Empty);
        w.WriteEndElement();
        w.WriteElementString("defaultValue", DevNamespace, DefaultValue(parameter));
        w.WriteEndElement();
    }

    private static void WriteTypes(XmlWriter w, string listName, string itemName, IReadOnlyList<InputOutput> types)
    {
        w.WriteStartElement(listName, CommandNamespace);
        foreach (var type in types)
        {
            w.WriteStartElement(itemName, CommandNamespace);
            w.WriteStartElement("type", DevNamespace);
            w.WriteElementString("name", MamlNamespace, type.TypeName);
            w.WriteEndElement();
            WriteParas(w, "description", MamlNamespace, type.Description);
            w.WriteEndElement();
        }

        w.WriteEndElement();
    }

    private static void WriteLink(XmlWriter w, string text, string uri)
    {
        w.WriteStartElement("navigationLink", MamlNamespace);
        w.WriteElementString("linkText", MamlNamespace, text);
        w.WriteElementString("uri", MamlNamespace, uri);
        w.WriteEndElement();
    }

    private static void WriteParas(XmlWriter w, string element, string ns, IReadOnlyList<string> paras)
    {
        w.WriteStartElement(element, ns);
        foreach (string para in paras)
        {
            w.WriteElementString("para", MamlNamespace, para);
        }

        w.WriteEndElement();
    }

    internal static string PipelineInput(bool byValue, bool byPropertyName) => (byValue, byPropertyName) switch
    {
        (true, true) => "True (ByValue, ByPropertyName)",
        (true, false) => "True (ByValue)",
        (false, true) => "True (ByPropertyName)",
        _ => "False",
    };

    internal static string MamlPosition(string position) =>
        string.Equals(position, "Named", StringComparison.OrdinalIgnoreCase) ? "named" : position;

    internal static string DefaultValue(Parameter parameter) =>
        parameter.DefaultValue.Length > 0 ? parameter.DefaultValue : parameter.IsSwitch ? "False" : "None";

    private static string Bool(bool value) => value ? "true" : "false";
}
