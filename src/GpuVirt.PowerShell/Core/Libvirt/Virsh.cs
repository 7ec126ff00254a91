using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>What one virsh process printed for a list of commands: one stdout part per command, and stderr.</summary>
    internal sealed class VirshBatchResult
    {
        public VirshBatchResult(IReadOnlyList<VirshCommand> commands, IReadOnlyList<string> outputs, string standardError, int exitCode)
        {
            Commands = commands;
            Outputs = outputs;
            StandardError = standardError;
            ExitCode = exitCode;
        }

        public IReadOnlyList<VirshCommand> Commands { get; }

        /// <summary>What each command printed to stdout, in order (empty for a command that failed).</summary>
        public IReadOnlyList<string> Outputs { get; }

        /// <summary>Every error virsh printed, for all commands together.</summary>
        public string StandardError { get; }

        /// <summary>virsh's exit code: that of the last command only.</summary>
        public int ExitCode { get; }
    }

    /// <summary>What happened to one device of an attach or detach batch.</summary>
    internal sealed class DeviceChangeOutcome
    {
        public DeviceChangeOutcome(int index, GpuVirtException? error)
        {
            Index = index;
            Error = error;
        }

        /// <summary>The device's position in the list given to <see cref="Virsh.ChangeDevices"/>.</summary>
        public int Index { get; }

        public bool Succeeded => Error is null;

        public GpuVirtException? Error { get; }
    }

    /// <summary>
    /// The virsh client of the module: runs <c>virsh [-c URI] …</c> through the <see cref="ProcessRunner"/> (argument
    /// lists, never a shell), several commands in one process when asked, and turns libvirt's messages into errors
    /// with stable ids. The connection is <c>-Connect</c>, else <c>LIBVIRT_DEFAULT_URI</c>, else virsh's default.
    /// </summary>
    internal sealed class Virsh
    {
        public const string Program = "virsh";
        public const string DefaultUriVariable = "LIBVIRT_DEFAULT_URI";

        /// <summary>virsh's command string is one process argument; the kernel limits one argument to 128 KiB.</summary>
        internal const int MaxScriptLength = 60 * 1024;

        private const string AttachedMessage = "Device attached successfully";
        private const string DetachedMessage = "Device detached successfully";

        /// <summary>libvirt's messages in English whatever the user's locale, so that they can be recognised.</summary>
        private static readonly IReadOnlyDictionary<string, string?> Environment = new Dictionary<string, string?>
        {
            ["LC_ALL"] = "C.UTF-8",
            ["LANGUAGE"] = null,
        };

        private readonly ProcessRunner _runner;
        private readonly CancellationToken _cancellationToken;

        public Virsh(ProcessRunner runner, string? connect = null, CancellationToken cancellationToken = default)
        {
            _runner = runner ?? throw new ArgumentNullException(nameof(runner));
            Uri = ResolveUri(connect);
            _cancellationToken = cancellationToken;
        }

        /// <summary>The connection URI passed with <c>-c</c>, or null for virsh's default.</summary>
        public string? Uri { get; }

        /// <summary>The URI given, else <c>LIBVIRT_DEFAULT_URI</c>, else null (virsh's default connection).</summary>
        public static string? ResolveUri(string? connect)
        {
            if (!string.IsNullOrWhiteSpace(connect)) return connect!.Trim();
            var fromEnvironment = System.Environment.GetEnvironmentVariable(DefaultUriVariable);
            return string.IsNullOrWhiteSpace(fromEnvironment) ? null : fromEnvironment;
        }

        /// <summary>The process arguments for commands: each word apart for one command, virsh's command string for several.</summary>
        public IReadOnlyList<string> ProgramArguments(IReadOnlyList<VirshCommand> commands)
        {
            var args = new List<string>();
            if (Uri != null)
            {
                args.Add("-c");
                args.Add(Uri);
            }
            if (commands.Count == 1) args.AddRange(commands[0].Words);
            else args.Add(VirshCommand.Join(commands));
            return args;
        }

        /// <summary>The command line as -Verbose and -WhatIf show it.</summary>
        public string CommandLine(params VirshCommand[] commands) => ProcessRunner.Render(Program, ProgramArguments(commands));

        /// <summary>Runs one command; its stdout, or an error with a stable id built from libvirt's message.</summary>
        public string Run(VirshCommand command, object? target = null)
        {
            var result = RunProcess(new[] { command });
            if (result.ExitCode != 0) throw Failure(command, result.StandardError, result.StandardOutput, target);
            return result.StandardOutput;
        }

        /// <summary>
        /// Runs commands in as few virsh processes as the argument limit allows (one, normally). virsh goes on after a
        /// failed command and exits with the status of the last one, so each command's stdout is cut out between
        /// <c>echo</c> markers and the caller judges each command by what it printed.
        /// </summary>
        public VirshBatchResult RunBatch(IReadOnlyList<VirshCommand> commands)
        {
            if (commands.Count == 0) return new VirshBatchResult(commands, Array.Empty<string>(), string.Empty, 0);
            var outputs = new List<string>(commands.Count);
            var errors = new StringBuilder();
            var exitCode = 0;
            foreach (var chunk in Chunks(commands))
            {
                var nonce = Guid.NewGuid().ToString("N");
                var script = new List<VirshCommand>(chunk.Count * 2);
                for (var i = 0; i < chunk.Count; i++)
                {
                    script.Add(chunk[i]);
                    script.Add(VirshCommand.Echo(Marker(nonce, i)));
                }
                var result = RunProcess(script);
                var parts = Split(result.StandardOutput, nonce, chunk.Count);
                if (parts is null)
                {
                    // No marker at all: virsh stopped before running anything (no connection, or a command it cannot parse).
                    throw Failure(chunk[0], result.StandardError, result.StandardOutput, Uri);
                }
                outputs.AddRange(parts);
                errors.Append(result.StandardError);
                exitCode = result.ExitCode;
            }
            return new VirshBatchResult(commands, outputs, errors.ToString(), exitCode);
        }

        /// <summary>
        /// No virsh call may hold the shell for ever: one that has not finished in <see cref="Timeout"/> is stopped.
        /// Work that only reads is tried once more when <see cref="RetryStalledReads"/> (the embedded QEMU driver's
        /// first capability probe has been seen to stall once and then answer); a change is never repeated blindly.
        /// </summary>
        private CommandResult RunProcess(IReadOnlyList<VirshCommand> commands)
        {
            var arguments = ProgramArguments(commands);
            try
            {
                return _runner.Run(Program, arguments, _cancellationToken, check: false, environment: Environment, timeout: Timeout);
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.ProgramTimedOut && RetryStalledReads && commands.All(c => c.IsReadOnly))
            {
                return _runner.Run(Program, arguments, _cancellationToken, check: false, environment: Environment, timeout: Timeout);
            }
        }

        /// <summary>How long one virsh process of this instance may take; <see cref="CommandTimeout"/> unless set (a completer sets seconds).</summary>
        public TimeSpan Timeout { get; set; } = CommandTimeout;

        /// <summary>Whether a read that stalled is tried once more; off where an answer is only worth having at once (completion).</summary>
        public bool RetryStalledReads { get; set; } = true;

        /// <summary>How long one virsh process may take (a first call to the embedded driver probes QEMU for seconds).</summary>
        public static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);

        private static string Marker(string nonce, int index) => "@gpuvirt-" + nonce + "-" + index.ToString(CultureInfo.InvariantCulture);

        private static List<string>? Split(string stdout, string nonce, int count)
        {
            var parts = new List<string>(count);
            var current = new StringBuilder();
            var next = 0;
            foreach (var line in stdout.Split('\n'))
            {
                if (next < count && line.TrimEnd('\r') == Marker(nonce, next))
                {
                    parts.Add(current.ToString().Trim('\n'));
                    current.Clear();
                    next++;
                    continue;
                }
                current.Append(line).Append('\n');
            }
            if (next == 0) return null;
            while (parts.Count < count) parts.Add(string.Empty);
            return parts;
        }

        private static IEnumerable<IReadOnlyList<VirshCommand>> Chunks(IReadOnlyList<VirshCommand> commands)
        {
            var chunk = new List<VirshCommand>();
            var length = 0;
            foreach (var c in commands)
            {
                var size = c.ToScript().Length + 64;
                if (chunk.Count > 0 && length + size > MaxScriptLength)
                {
                    yield return chunk;
                    chunk = new List<VirshCommand>();
                    length = 0;
                }
                chunk.Add(c);
                length += size;
            }
            if (chunk.Count > 0) yield return chunk;
        }

        // ---- Guests ----

        /// <summary>The names of the guests, or of the running ones, exactly as defined (leading and trailing spaces kept).</summary>
        public IReadOnlyList<string> ListDomains(bool all = true) =>
            ListGuests().Where(g => all || g.Active).Select(g => g.Name).ToList();

        /// <summary>Every guest and which of them run, in one process.</summary>
        public (IReadOnlyList<string> All, IReadOnlyList<string> Active) ListDomainsWithState()
        {
            var guests = ListGuests();
            return (guests.Select(g => g.Name).ToList(), guests.Where(g => g.Active).Select(g => g.Name).ToList());
        }

        /// <summary>
        /// Every guest with its UUID and whether it runs (<c>list --all --uuid --name</c> and <c>list --uuid --name</c>
        /// in one process). Names are kept exactly, spaces included: <c>list --name</c> prints them so, and a name
        /// trimmed here would be another guest's, or none.
        /// </summary>
        public IReadOnlyList<Guest> ListGuests()
        {
            var batch = RunBatch(new[] { VirshCommand.ListAllGuests(), VirshCommand.ListActiveGuests() });
            if (batch.Outputs[0].Length == 0 && batch.StandardError.Length > 0)
                throw Failure(batch.Commands[0], batch.StandardError, string.Empty, Uri);
            var active = new HashSet<Guid>(ParseGuests(batch.Outputs[1]).Select(g => g.Uuid));
            return ParseGuests(batch.Outputs[0]).Select(g => new Guest(g.Uuid, g.Name, active.Contains(g.Uuid))).ToList();
        }

        private static IEnumerable<(Guid Uuid, string Name)> ParseGuests(string text)
        {
            foreach (var raw in text.Split('\n'))
            {
                var line = raw.TrimEnd('\r');
                if (line.Length < 38 || line[36] != ' ' || !Guid.TryParseExact(line.Substring(0, 36), "D", out var uuid)) continue;
                yield return (uuid, line.Substring(37));
            }
        }

        /// <summary>
        /// The name of a guest given by name, UUID or id; a <see cref="ErrorIds.DomainNotFound"/> error when there is none.
        /// </summary>
        public string ResolveDomain(string domain, IReadOnlyList<string>? names = null)
        {
            CheckDomainName(domain);
            if (names != null && names.Contains(domain, StringComparer.Ordinal)) return domain;
            return ResolveGuest(domain).Name;
        }

        /// <summary>
        /// The one guest a user means, resolved once: a guest of that exact name first (names are what piped objects
        /// carry), else the guest of that UUID, else the running guest of that id. virsh's own <c>--domain</c> tries an
        /// id, then a UUID, then a name, so a guest named like another guest's UUID would get the other guest's change:
        /// every virsh command afterwards names the guest by <see cref="Guest.Key"/>, its UUID.
        /// </summary>
        public Guest ResolveGuest(string domain, IReadOnlyList<Guest>? guests = null)
        {
            CheckDomainName(domain);
            guests ??= ListGuests();
            var byName = guests.FirstOrDefault(g => string.Equals(g.Name, domain, StringComparison.Ordinal));
            if (byName != null) return byName;
            if (Guid.TryParseExact(domain, "D", out var uuid))
            {
                var byUuid = guests.FirstOrDefault(g => g.Uuid == uuid);
                if (byUuid != null) return byUuid;
            }
            if (domain.Length <= 10 && domain.All(c => c >= '0' && c <= '9'))
            {
                // A running guest's id: virsh takes a number as an id first.
                var text = RunProcess(new[] { new VirshCommand("domuuid", "--domain", domain) });
                if (text.ExitCode == 0 && Guid.TryParse(text.StandardOutput.Trim(), out var idUuid))
                {
                    var byId = guests.FirstOrDefault(g => g.Uuid == idUuid && g.Active);
                    if (byId != null) return byId;
                }
            }
            throw DomainNotFound(domain);
        }

        /// <summary>A definition as virsh printed it, its hostdevs marked as read through this connection.</summary>
        private DomainDefinition Parsed(string xml)
        {
            var definition = DomainXml.Parse(xml);
            foreach (var hostdev in definition.Hostdevs) hostdev.Through(Uri);
            return definition;
        }

        /// <summary>A guest's definition: the persistent one with <paramref name="inactive"/>, else the running one (if it runs).</summary>
        public DomainDefinition ReadDefinition(string domain, bool inactive)
        {
            CheckDomainName(domain);
            return Parsed(Run(VirshCommand.DumpXml(domain, inactive), domain));
        }

        /// <summary>Several definitions in one process; a guest that vanished meanwhile is left out.</summary>
        public IReadOnlyList<DomainDefinition> ReadDefinitions(IEnumerable<(string Domain, bool Inactive)> requests)
        {
            var commands = requests.Select(r => VirshCommand.DumpXml(r.Domain, r.Inactive)).ToList();
            var batch = RunBatch(commands);
            var list = new List<DomainDefinition>(commands.Count);
            foreach (var output in batch.Outputs)
            {
                if (output.Length > 0) list.Add(Parsed(output));
            }
            return list;
        }

        /// <summary>The persistent definition as text, with secrets, for a change that is written back with <see cref="Define"/>.</summary>
        public string ReadDefinitionForEdit(string domain)
        {
            CheckDomainName(domain);
            return Run(VirshCommand.DumpXmlForEdit(domain), domain);
        }

        /// <summary>
        /// <c>virsh define --validate</c> of a whole domain document, from a file in a private temporary directory that is
        /// always removed; libvirt replaces the guest's persistent definition (a running guest keeps its live one).
        /// </summary>
        public void Define(string domain, string xml)
        {
            CheckDomainName(domain);
            var directory = PrivateTemporaryDirectory.Create("gpuvirt-define-");
            try
            {
                var file = Path.Combine(directory, "domain.xml");
                using (var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    var bytes = new UTF8Encoding(false).GetBytes(xml);
                    stream.Write(bytes, 0, bytes.Length);
                }
                Run(VirshCommand.Define(file), domain);
            }
            finally
            {
                PrivateTemporaryDirectory.Remove(directory);
            }
        }

        private string? _connectionUri;

        /// <summary>
        /// The connection's URI as libvirt names it: the one given, else what <c>virsh uri</c> says the default
        /// connection is (read once), so that a command with <c>-Connect qemu:///system</c> and one without it name
        /// the same connection.
        /// </summary>
        public string ConnectionUri() => Uri ?? (_connectionUri ??= Run(VirshCommand.Uri(), null).Trim());

        /// <summary><c>virsh version</c>: the library's and the hypervisor's versions, or an error when libvirt cannot be reached.</summary>
        public string Version() => Run(VirshCommand.Version(), Uri);

        /// <summary>A domain name libvirt can hold: not empty, no newline, no '/'.</summary>
        public static void CheckDomainName(string domain)
        {
            if (string.IsNullOrEmpty(domain) || domain.IndexOf('\n') >= 0 || domain.IndexOf('\r') >= 0 || domain.IndexOf('\0') >= 0)
            {
                throw new GpuVirtException(ErrorIds.InvalidDomainName, ErrorKind.InvalidArgument,
                    $"'{domain}' is not a guest name: a name is not empty and has no line breaks.", domain);
            }
        }

        // ---- Devices of a guest ----

        /// <summary>
        /// Attaches or detaches device XML documents to one guest in one virsh process: each document goes to a file in
        /// a private temporary directory that is always removed. With <paramref name="readBack"/>, the same process
        /// then prints the guest's definition (the persistent one when the change reaches it), returned as the second value.
        /// </summary>
        public (IReadOnlyList<DeviceChangeOutcome> Outcomes, DomainDefinition? After) ChangeDevices(
            string domain, IReadOnlyList<string> deviceXml, DeviceChangeScope scope, bool attach, bool readBack, Action<DomainDefinition?>? readBefore = null)
        {
            CheckDomainName(domain);
            if (deviceXml.Count == 0) return (Array.Empty<DeviceChangeOutcome>(), null);
            var directory = PrivateTemporaryDirectory.Create("gpuvirt-hostdev-");
            try
            {
                var files = new List<string>(deviceXml.Count);
                var commands = new List<VirshCommand>(deviceXml.Count + 2);
                // The definition as it is before the change, read by the same process (what the journal's undo puts back).
                var first = readBefore is null ? 0 : 1;
                if (readBefore != null) commands.Add(VirshCommand.DumpXml(domain, inactive: scope.ReachesDefinition()));
                for (var i = 0; i < deviceXml.Count; i++)
                {
                    var file = Path.Combine(directory, "hostdev-" + i.ToString(CultureInfo.InvariantCulture) + ".xml");
                    using (var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                    {
                        var bytes = new UTF8Encoding(false).GetBytes(deviceXml[i]);
                        stream.Write(bytes, 0, bytes.Length);
                    }
                    files.Add(file);
                    commands.Add(attach ? VirshCommand.AttachDevice(domain, file, scope) : VirshCommand.DetachDevice(domain, file, scope));
                }
                if (readBack) commands.Add(VirshCommand.DumpXml(domain, inactive: scope.ReachesDefinition()));

                var batch = RunBatch(commands);
                var success = attach ? AttachedMessage : DetachedMessage;
                readBefore?.Invoke(batch.Outputs[0].Length > 0 ? Parsed(batch.Outputs[0]) : null);
                var failed = Enumerable.Range(0, files.Count).Where(i => batch.Outputs[first + i].IndexOf(success, StringComparison.Ordinal) < 0).ToList();
                var outcomes = new List<DeviceChangeOutcome>(files.Count);
                for (var i = 0; i < files.Count; i++)
                {
                    GpuVirtException? error = null;
                    if (failed.Contains(i))
                    {
                        var message = ErrorFor(batch.StandardError, files[i], failed.Count == 1);
                        error = Failure(commands[first + i], message, string.Empty, domain);
                    }
                    outcomes.Add(new DeviceChangeOutcome(i, error));
                }
                DomainDefinition? after = null;
                if (readBack && batch.Outputs[first + files.Count].Length > 0) after = Parsed(batch.Outputs[first + files.Count]);
                return (outcomes, after);
            }
            finally
            {
                PrivateTemporaryDirectory.Remove(directory);
            }
        }

        /// <summary>
        /// The lines of stderr that belong to the command that used <paramref name="file"/>: virsh prints
        /// <c>error: Failed to attach device from FILE</c> and then libvirt's reason, until the next such line.
        /// </summary>
        private static string ErrorFor(string stderr, string file, bool onlyFailure)
        {
            var lines = stderr.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
            var start = lines.FindIndex(l => l.EndsWith(" device from " + file, StringComparison.Ordinal));
            if (start < 0) return onlyFailure ? stderr : string.Empty;
            // The "Failed to attach device from FILE" line itself names a temporary file the user never sees.
            var block = new List<string>();
            for (var i = start + 1; i < lines.Count && !lines[i].StartsWith("error: Failed to ", StringComparison.Ordinal); i++)
            {
                block.Add(lines[i]);
            }
            return string.Join("\n", block);
        }

        // ---- Host node devices ----

        public string NodeDeviceDumpXml(PciAddress address) => Run(VirshCommand.NodeDeviceDumpXml(address.NodeDeviceName), address);

        /// <summary><c>nodedev-detach</c>: takes a function from its host driver (to vfio with backend <c>vfio</c>).</summary>
        public void NodeDeviceDetach(PciAddress address, string? backend) => Run(VirshCommand.NodeDeviceDetach(address.NodeDeviceName, backend), address);

        /// <summary><c>nodedev-reattach</c>: gives a function back to its host driver.</summary>
        public void NodeDeviceReattach(PciAddress address) => Run(VirshCommand.NodeDeviceReattach(address.NodeDeviceName), address);

        // ---- Errors ----

        public static GpuVirtException DomainNotFound(string domain) =>
            new GpuVirtException(ErrorIds.DomainNotFound, ErrorKind.ObjectNotFound,
                $"There is no guest named '{domain}' (virsh list --all).", domain);

        /// <summary>Turns what virsh printed for a failed command into an error with a stable id and libvirt's own words.</summary>
        public static GpuVirtException Failure(VirshCommand command, string stderr, string stdout, object? target)
        {
            var text = string.IsNullOrWhiteSpace(stderr) ? stdout : stderr;
            var reason = string.Join(" ", text.Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.Length > 0)
                .Select(l => l.StartsWith("error: ", StringComparison.Ordinal) ? l.Substring(7) : l));
            if (reason.Length == 0) reason = "virsh reported no reason";
            var what = "virsh " + command.Name;
            var domain = DomainArgument(command);

            if (reason.IndexOf("failed to connect to the hypervisor", StringComparison.OrdinalIgnoreCase) >= 0)
            {
                return new GpuVirtException(ErrorIds.LibvirtConnectFailed, ErrorKind.ResourceUnavailable,
                    $"virsh cannot connect to libvirt: {reason}. Give the connection with -Connect or LIBVIRT_DEFAULT_URI, and check that libvirtd runs.",
                    target);
            }
            if (domain != null && (reason.IndexOf("failed to get domain", StringComparison.OrdinalIgnoreCase) >= 0
                || reason.IndexOf("Domain not found", StringComparison.OrdinalIgnoreCase) >= 0))
            {
                return new GpuVirtException(ErrorIds.DomainNotFound, ErrorKind.ObjectNotFound,
                    $"There is no guest named '{domain}' (virsh list --all): {reason}", domain);
            }
            if (command.Name == "attach-device" && (reason.IndexOf("already in the domain configuration", StringComparison.OrdinalIgnoreCase) >= 0
                || reason.IndexOf("already exists", StringComparison.OrdinalIgnoreCase) >= 0
                || reason.IndexOf("is in use by", StringComparison.OrdinalIgnoreCase) >= 0))
            {
                return new GpuVirtException(ErrorIds.HostdevAlreadyAttached, ErrorKind.ResourceBusy,
                    $"It is already attached to guest '{domain}' (libvirt: {reason}).", target);
            }
            if (command.Name == "detach-device" && (reason.IndexOf("device not found", StringComparison.OrdinalIgnoreCase) >= 0
                || reason.IndexOf("not present in domain", StringComparison.OrdinalIgnoreCase) >= 0))
            {
                return new GpuVirtException(ErrorIds.HostdevNotAttached, ErrorKind.ObjectNotFound,
                    $"It is not attached to guest '{domain}' (libvirt: {reason}).", target);
            }
            return new GpuVirtException(ErrorIds.VirshCommandFailed, ErrorKind.InvalidOperation,
                $"{what} failed: {reason}", target);
        }

        private static string? DomainArgument(VirshCommand command)
        {
            for (var i = 0; i + 1 < command.Arguments.Count; i++)
            {
                if (command.Arguments[i] == "--domain") return command.Arguments[i + 1];
            }
            return null;
        }
    }
}
