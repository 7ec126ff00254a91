using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using GpuVirt.Core.Boot;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>A persistent mediated device as mdevctl keeps it: <c>/etc/mdevctl.d/&lt;parent&gt;/&lt;uuid&gt;</c>.</summary>
    internal sealed class MdevDefinition
    {
        public MdevDefinition(string parent, string uuid, string typeId, string startMode, IReadOnlyList<KeyValuePair<string, string>>? attributes = null)
        {
            Parent = parent;
            Uuid = uuid;
            TypeId = typeId;
            StartMode = startMode;
            Attributes = attributes ?? Array.Empty<KeyValuePair<string, string>>();
        }

        public string Parent { get; }
        public string Uuid { get; }
        public string TypeId { get; }

        /// <summary><c>auto</c> (started when the parent appears, at boot) or <c>manual</c>.</summary>
        public string StartMode { get; }

        /// <summary>mdevctl's <c>attrs</c>: sysfs attributes written in order after the device starts.</summary>
        public IReadOnlyList<KeyValuePair<string, string>> Attributes { get; }

        /// <summary>The file as a host path.</summary>
        public string Path => MdevDefinitions.HostPathOf(Parent, Uuid);
    }

    /// <summary>
    /// Reads and writes mdevctl's definitions directly, in mdevctl's own JSON shape
    /// (<c>{"mdev_type": "nvidia-63", "start": "auto", "attrs": []}</c>), so that mdevctl and this module see the same
    /// devices. A malformed file is reported in <see cref="Problems"/> and skipped, never fatal.
    /// </summary>
    internal sealed class MdevDefinitions
    {
        public const string Directory = "/etc/mdevctl.d";
        public const string StartAuto = "auto";
        public const string StartManual = "manual";

        private readonly HostRoot _root;
        private List<MdevDefinition>? _all;
        private readonly List<GpuVirtException> _problems = new List<GpuVirtException>();

        public MdevDefinitions(HostRoot root)
        {
            _root = root ?? throw new ArgumentNullException(nameof(root));
        }

        public static string HostPathOf(string parent, string uuid) => Directory + "/" + parent + "/" + uuid;

        /// <summary>Files that could not be read as definitions, each as an <see cref="ErrorIds.MdevDefinitionInvalid"/> error.</summary>
        public IReadOnlyList<GpuVirtException> Problems
        {
            get
            {
                _ = All;
                return _problems;
            }
        }

        public IReadOnlyList<MdevDefinition> All => _all ??= ReadAll();

        /// <summary>Forgets what was read, so that the next look sees files another program (mdevctl) wrote.</summary>
        public void Refresh()
        {
            _all = null;
            _problems.Clear();
        }

        public IReadOnlyList<MdevDefinition> Find(string uuid) =>
            All.Where(d => string.Equals(d.Uuid, uuid, StringComparison.OrdinalIgnoreCase)).ToList();

        private List<MdevDefinition> ReadAll()
        {
            _problems.Clear();
            var list = new List<MdevDefinition>();
            var dir = _root.Resolve(Directory);
            if (!System.IO.Directory.Exists(dir)) return list;
            foreach (var parentDir in System.IO.Directory.EnumerateDirectories(dir).OrderBy(d => d, StringComparer.Ordinal))
            {
                var parent = System.IO.Path.GetFileName(parentDir);
                if (parent == "scripts.d") continue;
                foreach (var file in System.IO.Directory.EnumerateFiles(parentDir).OrderBy(f => f, StringComparer.Ordinal))
                {
                    var name = System.IO.Path.GetFileName(file);
                    if (!Guid.TryParseExact(name, "D", out _))
                    {
                        Problem(file, "its name is not a UUID");
                        continue;
                    }
                    string text;
                    try
                    {
                        text = FileReads.ReadUtf8(file, file, 1024 * 1024);
                    }
                    catch (GpuVirtException e)
                    {
                        Problem(file, e.Message);
                        continue;
                    }
                    if (TryParse(parent, name.ToLowerInvariant(), text, out var definition, out var reason))
                        list.Add(definition!);
                    else
                        Problem(file, reason!);
                }
            }
            return list;
        }

        private void Problem(string file, string reason)
        {
            var hostPath = _root.ToHostPath(file);
            _problems.Add(new GpuVirtException(ErrorIds.MdevDefinitionInvalid, ErrorKind.InvalidData,
                $"The mediated device definition '{hostPath}' is not valid and was skipped: {reason}.", hostPath));
        }

        /// <summary>Parses one definition file's JSON.</summary>
        public static bool TryParse(string parent, string uuid, string json, out MdevDefinition? definition, out string? reason)
        {
            definition = null;
            reason = null;
            try
            {
                using var doc = JsonDocument.Parse(json);
                var rootElement = doc.RootElement;
                if (rootElement.ValueKind != JsonValueKind.Object)
                {
                    reason = "it is not a JSON object";
                    return false;
                }
                if (!rootElement.TryGetProperty("mdev_type", out var type) || type.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(type.GetString()))
                {
                    reason = "it has no 'mdev_type' string";
                    return false;
                }
                var start = StartManual;
                if (rootElement.TryGetProperty("start", out var startElement))
                {
                    start = startElement.ValueKind == JsonValueKind.String ? startElement.GetString()! : string.Empty;
                    if (start != StartAuto && start != StartManual)
                    {
                        reason = "its 'start' is neither 'auto' nor 'manual'";
                        return false;
                    }
                }
                var attributes = new List<KeyValuePair<string, string>>();
                if (rootElement.TryGetProperty("attrs", out var attrs))
                {
                    if (attrs.ValueKind != JsonValueKind.Array)
                    {
                        reason = "its 'attrs' is not an array";
                        return false;
                    }
                    foreach (var item in attrs.EnumerateArray())
                    {
                        var props = item.ValueKind == JsonValueKind.Object ? item.EnumerateObject().ToList() : null;
                        if (props is null || props.Count != 1 || props[0].Value.ValueKind != JsonValueKind.String)
                        {
                            reason = "an 'attrs' entry is not a one-key object of a string";
                            return false;
                        }
                        attributes.Add(new KeyValuePair<string, string>(props[0].Name, props[0].Value.GetString()!));
                    }
                }
                definition = new MdevDefinition(parent, uuid, type.GetString()!, start, attributes);
                return true;
            }
            catch (JsonException e)
            {
                reason = "it is not JSON (" + e.Message + ")";
                return false;
            }
        }

        /// <summary>
        /// The JSON mdevctl writes for a definition (and prints for one device, <c>list -d -u UUID --dumpjson</c>): serde_json's
        /// pretty form, two-space indentation, no final newline, strings as they are but for <c>"</c>, <c>\</c> and control
        /// characters (see <see cref="Quote"/>).
        /// </summary>
        public static string ToJson(MdevDefinition definition)
        {
            var sb = new StringBuilder();
            WriteBody(sb, definition, 0);
            return sb.ToString();
        }

        private static void Indent(StringBuilder sb, int level) => sb.Append(' ', level * 2);

        /// <summary>One definition's object, its first brace where the writer is, its members one level below <paramref name="level"/>.</summary>
        private static void WriteBody(StringBuilder sb, MdevDefinition definition, int level)
        {
            sb.Append("{\n");
            Indent(sb, level + 1);
            sb.Append(Quote("mdev_type")).Append(": ").Append(Quote(definition.TypeId)).Append(",\n");
            Indent(sb, level + 1);
            sb.Append(Quote("start")).Append(": ").Append(Quote(definition.StartMode)).Append(",\n");
            Indent(sb, level + 1);
            sb.Append(Quote("attrs")).Append(": ");
            if (definition.Attributes.Count == 0)
            {
                sb.Append("[]");
            }
            else
            {
                sb.Append("[\n");
                for (var i = 0; i < definition.Attributes.Count; i++)
                {
                    var a = definition.Attributes[i];
                    Indent(sb, level + 2);
                    sb.Append("{\n");
                    Indent(sb, level + 3);
                    sb.Append(Quote(a.Key)).Append(": ").Append(Quote(a.Value)).Append('\n');
                    Indent(sb, level + 2);
                    sb.Append('}').Append(i + 1 < definition.Attributes.Count ? ",\n" : "\n");
                }
                Indent(sb, level + 1);
                sb.Append(']');
            }
            sb.Append('\n');
            Indent(sb, level);
            sb.Append('}');
        }

        /// <summary>
        /// A JSON string as serde_json writes it (mdevctl's writer): <c>"</c> and <c>\</c> escaped, control characters as
        /// <c>\b \f \n \r \t</c> or <c>\u00xx</c> (lower-case hex), everything else as it is (no <c>\u</c> escapes for
        /// <c>+</c>, <c>&lt;</c>, <c>&amp;</c> or non-ASCII text, which .NET's JSON writer would make).
        /// </summary>
        internal static string Quote(string text)
        {
            var sb = new StringBuilder(text.Length + 2);
            sb.Append('"');
            foreach (var c in text)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u00").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            return sb.Append('"').ToString();
        }

        /// <summary>
        /// The document <c>mdevctl list --defined --dumpjson</c> prints for these definitions: one array holding one object
        /// that maps each parent (sorted) to its devices (sorted by UUID), each <c>{"UUID": {mdev_type, start, attrs}}</c>;
        /// <c>[]</c> when there are none. serde_json's pretty form, as <see cref="ToJson"/>.
        /// </summary>
        public static string ToDumpJson(IEnumerable<MdevDefinition> definitions)
        {
            var byParent = definitions.GroupBy(d => d.Parent).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
            if (byParent.Count == 0) return "[]";
            var sb = new StringBuilder("[\n");
            Indent(sb, 1);
            sb.Append("{\n");
            for (var p = 0; p < byParent.Count; p++)
            {
                Indent(sb, 2);
                sb.Append(Quote(byParent[p].Key)).Append(": [\n");
                var devices = byParent[p].OrderBy(d => d.Uuid, StringComparer.Ordinal).ToList();
                for (var i = 0; i < devices.Count; i++)
                {
                    Indent(sb, 3);
                    sb.Append("{\n");
                    Indent(sb, 4);
                    sb.Append(Quote(devices[i].Uuid)).Append(": ");
                    WriteBody(sb, devices[i], 4);
                    sb.Append('\n');
                    Indent(sb, 3);
                    sb.Append('}').Append(i + 1 < devices.Count ? ",\n" : "\n");
                }
                Indent(sb, 2);
                sb.Append(']').Append(p + 1 < byParent.Count ? ",\n" : "\n");
            }
            Indent(sb, 1);
            sb.Append("}\n]");
            return sb.ToString();
        }

        /// <summary>
        /// Reads a <c>--dumpjson</c> document (as <see cref="ToDumpJson"/> writes it, or mdevctl prints it): every parent's
        /// devices, in order. A malformed document is an <see cref="ErrorIds.MdevDefinitionInvalid"/> error naming <paramref name="source"/>.
        /// </summary>
        public static IReadOnlyList<MdevDefinition> ParseDumpJson(string json, string source)
        {
            GpuVirtException Bad(string why) => new GpuVirtException(ErrorIds.MdevDefinitionInvalid, ErrorKind.InvalidData,
                $"'{source}' is not an mdevctl --dumpjson document: {why}.", source);
            var list = new List<MdevDefinition>();
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(json);
            }
            catch (JsonException e)
            {
                throw Bad("it is not JSON (" + e.Message + ")");
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Array) throw Bad("it is not a JSON array");
                foreach (var group in doc.RootElement.EnumerateArray())
                {
                    if (group.ValueKind != JsonValueKind.Object) throw Bad("an array entry is not an object of parents");
                    foreach (var parent in group.EnumerateObject())
                    {
                        if (parent.Value.ValueKind != JsonValueKind.Array) throw Bad($"the devices of '{parent.Name}' are not an array");
                        foreach (var entry in parent.Value.EnumerateArray())
                        {
                            var props = entry.ValueKind == JsonValueKind.Object ? entry.EnumerateObject().ToList() : null;
                            if (props is null || props.Count != 1 || !Guid.TryParseExact(props[0].Name, "D", out _))
                                throw Bad($"a device of '{parent.Name}' is not a one-key object named by its UUID");
                            if (!TryParse(parent.Name, props[0].Name.ToLowerInvariant(), props[0].Value.GetRawText(), out var definition, out var reason))
                                throw Bad($"device {props[0].Name} of '{parent.Name}': {reason}");
                            list.Add(definition!);
                        }
                    }
                }
            }
            return list;
        }

        /// <summary>
        /// Writes a definition file with the one atomic writer (<see cref="HostFiles.WriteAtomically"/>): the whole file
        /// or nothing, on disk before this returns; an existing definition is refused unless <paramref name="replace"/>,
        /// as mdevctl refuses to overwrite one.
        /// </summary>
        public void Write(MdevDefinition definition, bool replace = false) =>
            // mdevctl's files are UTF-8; the writer takes a file's bytes as one char each (HostFiles.Bytes).
            WriteText(definition.Path, HostFiles.Bytes.GetString(Encoding.UTF8.GetBytes(ToJson(definition))), replace);

        /// <summary>A definition file's bytes as they are (for the journal: put back byte for byte); null when there is none.</summary>
        public string? ReadText(string hostPath)
        {
            var path = _root.Resolve(hostPath);
            return File.Exists(path) ? HostFiles.ReadText(path, hostPath) : null;
        }

        /// <summary>Writes a definition file's bytes (a definition put back as it was) with the one atomic writer.</summary>
        public void WriteText(string hostPath, string text, bool replace = false)
        {
            var path = _root.Resolve(hostPath);
            try
            {
                System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(hostPath, "write", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(ErrorIds.MdevDefinitionWriteFailed, ErrorKind.WriteError,
                    $"Cannot write the definition '{hostPath}': {e.Message}", hostPath, e);
            }
            try
            {
                HostFiles.WriteAtomically(path, hostPath, text, replace: replace, failedId: ErrorIds.MdevDefinitionWriteFailed);
            }
            finally
            {
                _all = null;
            }
        }

        /// <summary>Removes a definition file, and its parent directory when that is left empty.</summary>
        public void Delete(MdevDefinition definition)
        {
            var path = _root.Resolve(definition.Path);
            try
            {
                File.Delete(path);
                var dir = System.IO.Path.GetDirectoryName(path)!;
                if (!System.IO.Directory.EnumerateFileSystemEntries(dir).Any()) System.IO.Directory.Delete(dir);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(definition.Path, "remove", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(ErrorIds.MdevDefinitionWriteFailed, ErrorKind.WriteError,
                    $"Cannot remove the definition '{definition.Path}': {e.Message}", definition.Path, e);
            }
            _all = null;
        }
    }
}
