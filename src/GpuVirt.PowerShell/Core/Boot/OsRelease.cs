using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary><c>/etc/os-release</c> (or <c>/usr/lib/os-release</c>): what distribution the root holds.</summary>
    internal sealed class OsRelease
    {
        public const string EtcPath = "/etc/os-release";
        public const string UsrPath = "/usr/lib/os-release";

        private OsRelease(string id, IReadOnlyList<string> idLike)
        {
            Id = id;
            IdLike = idLike;
        }

        public string Id { get; }
        public IReadOnlyList<string> IdLike { get; }

        /// <summary>True when ID or one of ID_LIKE is one of <paramref name="ids"/>.</summary>
        public bool Is(params string[] ids) => ids.Contains(Id, StringComparer.Ordinal) || IdLike.Any(l => ids.Contains(l, StringComparer.Ordinal));

        /// <summary>Reads the file the way systemd does (a shell-like KEY=value list); null when the root has none.</summary>
        public static OsRelease? Read(HostRoot root)
        {
            foreach (var path in new[] { EtcPath, UsrPath })
            {
                if (!HostFiles.Exists(root, path)) continue;
                var real = root.ResolveLinks(path);
                var text = Sysfs.TryReadText(root.Resolve(real));
                if (text is null) continue;
                string Value(string name)
                {
                    try
                    {
                        var found = ShellScanner.FindAssignments(text, name);
                        if (found.Count == 0) return string.Empty;
                        return string.Concat(found[found.Count - 1].Atoms.Where(a => a.Kind != AtomKind.Quote && a.Kind != AtomKind.Continuation).Select(a => a.Text));
                    }
                    catch (GpuVirtException)
                    {
                        return string.Empty;
                    }
                }
                var like = Value("ID_LIKE").Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries).ToList();
                return new OsRelease(Value("ID"), like);
            }
            return null;
        }
    }
}
