using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>A planned (or made) change of a guest's console for vGPU output: what changes and the definition before and after.</summary>
    public sealed class VgpuConsoleChange : HostObject
    {
        internal VgpuConsoleChange(string domain, string before, string after, IReadOnlyList<string> changes)
        {
            Domain = domain;
            Before = before;
            After = after;
            Changes = changes;
            Diff = VgpuConsole.LineDiff(before, after);
        }

        public string Domain { get; }

        /// <summary>Each change in words: <c>hostdev 30820a6f-…: display='on'</c>.</summary>
        public IReadOnlyList<string> Changes { get; }

        public bool Changed => Changes.Count > 0;

        /// <summary>The definition's lines that go (<c>-</c>) and come (<c>+</c>), with a line of context around each.</summary>
        public string Diff { get; }

        /// <summary>The inactive definition before, as read.</summary>
        public string Before { get; }

        /// <summary>The definition to define.</summary>
        public string After { get; }

        /// <summary>True once the new definition has been defined.</summary>
        public bool Applied { get; internal set; }
    }

    /// <summary>
    /// Sets a guest up to show its vGPU on a VNC or SPICE console (procedure 16.7.2.2 and 16.7.2.6): <c>display='on'</c>
    /// on its mdev hostdevs, optionally <c>&lt;video&gt;&lt;model type='none'/&gt;&lt;/video&gt;</c> (no emulated display
    /// besides the vGPU), and a <c>&lt;graphics&gt;</c> of the chosen type (beside any other). It reads the persistent definition, changes only
    /// those elements and defines the result; everything else in the definition is kept as it was.
    /// </summary>
    internal static class VgpuConsole
    {
        public static readonly IReadOnlyList<string> GraphicsTypes = new[] { "vnc", "spice" };

        /// <summary>The persistent definition with secrets kept (a VNC password must survive the redefinition).</summary>
        public static VirshCommand DumpInactive(string domain) =>
            new VirshCommand("dumpxml", "--domain", domain, "--inactive", "--security-info");

        public static VgpuConsoleChange Plan(string domain, string inactiveXml, string? graphics, bool noEmulatedVideo, IReadOnlyCollection<Guid>? uuids)
        {
            if (graphics != null && !GraphicsTypes.Contains(graphics))
                throw new ArgumentException("Graphics is vnc or spice.", nameof(graphics));
            var before = DomainXml.Load(inactiveXml, "guest '" + domain + "'");
            // Indentation between elements goes (both documents are written out indented the same way, so the
            // difference shows only what changed); text inside an element without child elements stays.
            foreach (var indent in before.DescendantNodes().OfType<XText>()
                .Where(t => string.IsNullOrWhiteSpace(t.Value) && t.Parent != null && t.Parent.HasElements).ToList())
            {
                indent.Remove();
            }
            var doc = new XDocument(before);
            var devices = doc.Root?.Element("devices") ?? throw new GpuVirtException(ErrorIds.InvalidDomainXml, ErrorKind.InvalidData,
                $"The definition of guest '{domain}' has no <devices> element.", domain);
            var changes = new List<string>();

            var mdevs = devices.Elements("hostdev")
                .Where(h => (string?)h.Attribute("mode") == "subsystem" && (string?)h.Attribute("type") == "mdev")
                .Select(h => (Element: h, Uuid: MdevUuid.TryParse((string?)h.Element("source")?.Element("address")?.Attribute("uuid"), out var u) ? u : (Guid?)null))
                .ToList();
            if (mdevs.Count == 0)
            {
                throw new GpuVirtException(ErrorIds.VgpuConsoleNoMdevHostdev, ErrorKind.ObjectNotFound,
                    $"Guest '{domain}' has no mediated device (<hostdev type='mdev'>) in its definition: assign a vGPU first " +
                    "(New-VgpuDevice | Add-GpuHostdev -Domain " + domain + ").", domain);
            }
            if (uuids != null && uuids.Count > 0)
            {
                var missing = uuids.Where(u => !mdevs.Any(m => m.Uuid == u)).ToList();
                if (missing.Count > 0)
                {
                    throw new GpuVirtException(ErrorIds.VgpuConsoleNoMdevHostdev, ErrorKind.ObjectNotFound,
                        $"Guest '{domain}' has no mediated device {string.Join(", ", missing.Select(MdevUuid.Format))}; its mediated devices: " +
                        string.Join(", ", mdevs.Select(m => m.Uuid is Guid g ? MdevUuid.Format(g) : "?")) + ".", domain);
                }
                mdevs = mdevs.Where(m => m.Uuid is Guid g && uuids.Contains(g)).ToList();
            }
            foreach (var (element, uuid) in mdevs)
            {
                if ((string?)element.Attribute("display") == "on") continue;
                element.SetAttributeValue("display", "on");
                changes.Add($"hostdev {(uuid is Guid g ? MdevUuid.Format(g) : "mdev")}: display='on'");
            }

            if (noEmulatedVideo)
            {
                var videos = devices.Elements("video").ToList();
                var already = videos.Count == 1 && (string?)videos[0].Element("model")?.Attribute("type") == "none";
                if (!already)
                {
                    var none = new XElement("video", new XElement("model", new XAttribute("type", "none")));
                    if (videos.Count > 0)
                    {
                        videos[0].ReplaceWith(none);
                        foreach (var v in videos.Skip(1)) v.Remove();
                        changes.Add($"video: model type='none' (was {string.Join(", ", videos.Select(v => "'" + ((string?)v.Element("model")?.Attribute("type") ?? "?") + "'"))})");
                    }
                    else
                    {
                        AddDevice(devices, none);
                        changes.Add("video: model type='none' added");
                    }
                }
            }

            if (graphics != null)
            {
                var all = devices.Elements("graphics").ToList();
                if (!all.Any(g => (string?)g.Attribute("type") == graphics))
                {
                    var element = graphics == "vnc"
                        ? new XElement("graphics", new XAttribute("type", "vnc"), new XAttribute("port", "-1"), new XAttribute("autoport", "yes"),
                            new XElement("listen", new XAttribute("type", "address")))
                        : new XElement("graphics", new XAttribute("type", "spice"), new XAttribute("autoport", "yes"),
                            new XElement("listen", new XAttribute("type", "address")),
                            new XElement("image", new XAttribute("compression", "off")));
                    // Added beside any other graphics device, never in its place: a SPICE display may carry the guest's
                    // audio (<audio type='spice'>), which libvirt refuses to keep without it.
                    AddDevice(devices, element);
                    changes.Add($"graphics: type='{graphics}' added");
                }
            }
            return new VgpuConsoleChange(domain, before.ToString(), doc.ToString(), changes);
        }

        /// <summary>Adds a device after the last device of the same kind, else at the end of <c>&lt;devices&gt;</c>.</summary>
        private static void AddDevice(XElement devices, XElement element)
        {
            var last = devices.Elements(element.Name).LastOrDefault();
            if (last != null) last.AddAfterSelf(element);
            else devices.Add(element);
        }

        /// <summary>Defines a whole guest definition (<c>virsh define</c> from a private temporary file that is always removed).</summary>
        public static void Define(Virsh virsh, string domain, string xml)
        {
            var directory = PrivateTemporaryDirectory.Create("gpuvirt-console-");
            try
            {
                var file = Path.Combine(directory, "domain.xml");
                File.WriteAllText(file, xml, new UTF8Encoding(false));
                virsh.Run(new VirshCommand("define", "--file", file), domain);
            }
            finally
            {
                PrivateTemporaryDirectory.Remove(directory);
            }
        }

        /// <summary>A plain line diff (longest common subsequence) with one line of context around each change.</summary>
        public static string LineDiff(string before, string after)
        {
            var a = before.Replace("\r\n", "\n").Split('\n');
            var b = after.Replace("\r\n", "\n").Split('\n');
            var lcs = new int[a.Length + 1, b.Length + 1];
            for (var i = a.Length - 1; i >= 0; i--)
                for (var j = b.Length - 1; j >= 0; j--)
                    lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            var lines = new List<(char Op, string Text)>();
            int x = 0, y = 0;
            while (x < a.Length || y < b.Length)
            {
                if (x < a.Length && y < b.Length && a[x] == b[y]) { lines.Add((' ', a[x])); x++; y++; }
                else if (y < b.Length && (x == a.Length || lcs[x, y + 1] >= lcs[x + 1, y])) { lines.Add(('+', b[y])); y++; }
                else { lines.Add(('-', a[x])); x++; }
            }
            var keep = new bool[lines.Count];
            for (var i = 0; i < lines.Count; i++)
            {
                if (lines[i].Op == ' ') continue;
                for (var k = Math.Max(0, i - 1); k <= Math.Min(lines.Count - 1, i + 1); k++) keep[k] = true;
            }
            var sb = new StringBuilder();
            for (var i = 0; i < lines.Count; i++)
            {
                if (!keep[i])
                {
                    if (i > 0 && keep[i - 1]) sb.Append("  ...\n");
                    continue;
                }
                sb.Append(lines[i].Op).Append(' ').Append(lines[i].Text).Append('\n');
            }
            return sb.ToString().TrimEnd('\n');
        }
    }
}
