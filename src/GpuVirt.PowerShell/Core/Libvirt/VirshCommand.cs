using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// One virsh command (<c>attach-device</c>, <c>dumpxml</c> …) with its arguments. Values always follow a named
    /// option (<c>--domain NAME</c>, <c>--file PATH</c>): virsh then takes the next word as the value even when it starts
    /// with <c>--</c>, so a domain called <c>--config</c> stays a name. Several commands run in one virsh process as
    /// virsh's own command string (<c>'a; b; c'</c>), where every word is single-quoted for virsh's parser, never a shell.
    /// </summary>
    internal sealed class VirshCommand
    {
        public VirshCommand(string name, params string[] arguments)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("A virsh command name is required.", nameof(name));
            Name = name;
            Arguments = arguments ?? Array.Empty<string>();
        }

        public string Name { get; }
        public IReadOnlyList<string> Arguments { get; }

        /// <summary>A command that only reads (lists, dumps, echoes): running it again is harmless.</summary>
        public bool IsReadOnly => ReadOnlyNames.Contains(Name);

        private static readonly HashSet<string> ReadOnlyNames = new HashSet<string>(StringComparer.Ordinal)
        {
            "list", "uri", "dumpxml", "nodedev-dumpxml", "nodedev-list", "echo", "domstate", "dominfo", "domname", "capabilities",
            "version",
        };

        /// <summary>The words as separate process arguments (one command per process).</summary>
        public IEnumerable<string> Words => new[] { Name }.Concat(Arguments);

        /// <summary>The command in virsh's command-string syntax: each word quoted for virsh's parser.</summary>
        public string ToScript() => string.Join(" ", Words.Select(ShellQuote.Word));

        /// <summary>Joins commands into one virsh command string: <c>cmd1; cmd2</c>.</summary>
        public static string Join(IEnumerable<VirshCommand> commands) => string.Join("; ", commands.Select(c => c.ToScript()));

        public override string ToString() => ToScript();

        // The commands the module uses, with values behind named options.

        public static VirshCommand ListAllNames() => new VirshCommand("list", "--all", "--name");
        public static VirshCommand ListActiveNames() => new VirshCommand("list", "--name");

        /// <summary><c>list --all --uuid --name</c>: one line per guest, its UUID, a space, and its name exactly as defined.</summary>
        public static VirshCommand ListAllGuests() => new VirshCommand("list", "--all", "--uuid", "--name");

        /// <summary><c>list --uuid --name</c>: the running guests.</summary>
        public static VirshCommand ListActiveGuests() => new VirshCommand("list", "--uuid", "--name");

        public static VirshCommand DumpXml(string domain, bool inactive) =>
            inactive ? new VirshCommand("dumpxml", "--domain", domain, "--inactive") : new VirshCommand("dumpxml", "--domain", domain);

        public static VirshCommand AttachDevice(string domain, string file, DeviceChangeScope scope) =>
            new VirshCommand("attach-device", new[] { "--domain", domain, "--file", file }.Concat(scope.ToFlags()).ToArray());

        public static VirshCommand DetachDevice(string domain, string file, DeviceChangeScope scope) =>
            new VirshCommand("detach-device", new[] { "--domain", domain, "--file", file }.Concat(scope.ToFlags()).ToArray());

        public static VirshCommand NodeDeviceDumpXml(string device) => new VirshCommand("nodedev-dumpxml", "--device", device);

        public static VirshCommand NodeDeviceDetach(string device, string? backend) =>
            backend is null
                ? new VirshCommand("nodedev-detach", "--device", device)
                : new VirshCommand("nodedev-detach", "--device", device, "--driver", backend);

        public static VirshCommand NodeDeviceReattach(string device) => new VirshCommand("nodedev-reattach", "--device", device);

        public static VirshCommand Echo(string text) => new VirshCommand("echo", text);

        /// <summary>
        /// The persistent definition as <c>virsh edit</c> reads it for writing back: <c>--security-info</c> keeps
        /// secrets (a VNC password) that a plain dump leaves out and a define would then lose.
        /// </summary>
        public static VirshCommand DumpXmlForEdit(string domain) => new VirshCommand("dumpxml", "--domain", domain, "--inactive", "--security-info");

        /// <summary><c>define --file FILE --validate</c>: libvirt checks the document against its schema before taking it.</summary>
        public static VirshCommand Define(string file) => new VirshCommand("define", "--file", file, "--validate");

        /// <summary><c>version</c>: the library's and the hypervisor's versions; needs a working connection.</summary>
        public static VirshCommand Version() => new VirshCommand("version");

        /// <summary><c>virsh uri</c>: the canonical URI of the connection virsh opened.</summary>
        public static VirshCommand Uri() => new VirshCommand("uri");
    }

    /// <summary>
    /// Where a device change applies, as virsh's flags: <c>--persistent</c> (the definition, and the running guest when
    /// it runs; the procedure's choice and the default), <c>--config</c> (the definition only), <c>--live</c> (the
    /// running guest only). Flags combine as virsh combines them.
    /// </summary>
    [Flags]
    internal enum DeviceChangeScope
    {
        Persistent = 1,
        Config = 2,
        Live = 4,
    }

    internal static class DeviceChangeScopeExtensions
    {
        /// <summary>The scope the switches ask for; none of them means <see cref="DeviceChangeScope.Persistent"/>.</summary>
        public static DeviceChangeScope From(bool persistent, bool config, bool live)
        {
            var scope = (persistent ? DeviceChangeScope.Persistent : 0) | (config ? DeviceChangeScope.Config : 0) | (live ? DeviceChangeScope.Live : 0);
            return scope == 0 ? DeviceChangeScope.Persistent : scope;
        }

        public static IEnumerable<string> ToFlags(this DeviceChangeScope scope)
        {
            var flags = new List<string>();
            if ((scope & DeviceChangeScope.Persistent) != 0) flags.Add("--persistent");
            if ((scope & DeviceChangeScope.Config) != 0) flags.Add("--config");
            if ((scope & DeviceChangeScope.Live) != 0) flags.Add("--live");
            if (flags.Count == 0) flags.Add("--persistent");
            return flags;
        }

        /// <summary>True when the change reaches the persistent definition (what <c>dumpxml --inactive</c> shows).</summary>
        public static bool ReachesDefinition(this DeviceChangeScope scope) =>
            (scope & (DeviceChangeScope.Persistent | DeviceChangeScope.Config)) != 0;
    }
}
