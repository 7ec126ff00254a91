using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using GpuVirt.ProcessLauncher;

namespace GpuVirt.Core
{
    /// <summary>What an external program did: its command line, exit code and captured output.</summary>
    internal sealed class CommandResult
    {
        public CommandResult(string program, IReadOnlyList<string> arguments, int exitCode, string standardOutput, string standardError)
        {
            Program = program;
            Arguments = arguments;
            ExitCode = exitCode;
            StandardOutput = standardOutput;
            StandardError = standardError;
        }

        public string Program { get; }
        public IReadOnlyList<string> Arguments { get; }
        public int ExitCode { get; }
        public string StandardOutput { get; }
        public string StandardError { get; }
        public string CommandLine => ProcessRunner.Render(Program, Arguments);
    }

    /// <summary>
    /// Runs external programs (virsh, grub2-mkconfig, dracut, systemctl …) through CliWrap: an argument list, never a
    /// shell string; output captured; exit code checked; each command line reported to a log before it runs.
    /// </summary>
    internal sealed class ProcessRunner
    {
        private static readonly Dictionary<string, string> Packages = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["virsh"] = "libvirt-client (RHEL, Fedora) or libvirt-clients (Debian, Ubuntu)",
            ["grub2-mkconfig"] = "grub2-tools",
            ["grubby"] = "grubby",
            ["update-grub"] = "grub2-common",
            ["dracut"] = "dracut",
            ["update-initramfs"] = "initramfs-tools",
            ["mkinitcpio"] = "mkinitcpio",
            ["systemctl"] = "systemd",
            ["mdevctl"] = "mdevctl",
            ["lspci"] = "pciutils",
            ["kernel-install"] = "systemd (kernel-install)",
            ["chroot"] = "coreutils",
        };

        private readonly Action<string>? _log;

        public ProcessRunner(Action<string>? log = null)
        {
            // Before Run is first compiled: compiling it loads GpuVirt.ProcessLauncher, which lives in the module's own load context.
            ModuleLoadContext.EnsureResolver();
            _log = log;
        }

        /// <summary>How long a stopped program's process group gets between SIGTERM and SIGKILL.</summary>
        public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

        /// <summary>
        /// How long the output of a program that has exited may stay open: a program's own background children
        /// (left in its process group) can hold the pipes; after this they are stopped and the output read so far kept.
        /// </summary>
        public static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);

        /// <summary>setsid(1), which starts each program as the leader of a process group of its own; null when absent.</summary>
        private static readonly Lazy<string?> Setsid = new Lazy<string?>(() =>
            new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(System.IO.File.Exists) ?? ProgramLocator.Find("setsid"));

        /// <summary>Runs a program and waits for it. With <paramref name="check"/>, a non-zero exit is a <see cref="ErrorIds.ProgramFailed"/> error.</summary>
        /// <param name="environment">Variables to set for the program (a null value removes one), on top of this process's.</param>
        /// <remarks>
        /// <para>The program runs as the leader of its own process group (through <c>setsid</c>), so that stopping it
        /// (Ctrl+C, <paramref name="timeout"/>) stops everything it started: SIGTERM to the group, SIGKILL after
        /// <see cref="StopGrace"/>. A program past <paramref name="timeout"/> is <see cref="ErrorIds.ProgramTimedOut"/>.</para>
        /// <para>The end of the program is observed with <see cref="Process.WaitForExit(int)"/> on the process itself, in
        /// short slices on the calling thread, never only through CliWrap's task: that task completes from the
        /// process's Exited event and from the end of both output pipes, and either can fail to come (the event was
        /// seen lost about once in 1,500 runs of <c>true</c>; a background grandchild keeps the pipes open for as
        /// long as it lives). Once the program has exited, the output gets <see cref="OutputGrace"/>; what is left
        /// of its process group is then stopped, and the result is the exit code and the output read.</para>
        /// </remarks>
        public CommandResult Run(string program, IEnumerable<string> arguments, CancellationToken cancellationToken = default,
            bool check = true, string? standardInput = null, IReadOnlyDictionary<string, string?>? environment = null,
            TimeSpan? timeout = null)
        {
            var args = arguments.ToList();
            _log?.Invoke(Render(program, args));
            // The kernel refuses one argument longer than MAX_ARG_STRLEN (with its NUL) whatever starts it: said before
            // any process is started, so that it never depends on which of setsid or the program met the refusal.
            if (args.Any(a => Encoding.UTF8.GetByteCount(a) + 1 > MaxArgumentLength)) throw ArgumentsTooLong(program, null);
            var setsid = Setsid.Value;
            if (setsid != null && Locate(program, environment) is null) throw NotFound(program, null);
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            var file = setsid ?? program;
            var argv = setsid != null ? new[] { "--wait", "--", program }.Concat(args) : args;
            using var abort = new CancellationTokenSource();
            LaunchedProgram launched;
            try
            {
                launched = Launcher.Start(file, argv, stdout, stderr, standardInput, environment, abort.Token);
            }
            catch (Win32Exception e)
            {
                throw NotFound(program, e);
            }
            catch (InvalidOperationException e) when (e.InnerException is Win32Exception w)
            {
                throw NotFound(program, w);
            }
            var process = launched.Process;
            var task = launched.Completion;
            if (process is null)
            {
                // The start failed inside the task (the program could not be started).
                try
                {
                    task.Wait(TimeSpan.FromSeconds(30));
                }
                catch (AggregateException e) when (e.InnerException is Win32Exception || e.InnerException?.InnerException is Win32Exception)
                {
                    throw NotFound(program, e.InnerException);
                }
                throw NotFound(program, task.Exception?.InnerException);
            }

            var pid = SafeId(process);
            var group = setsid != null;
            var watch = Stopwatch.StartNew();
            int? exitCode = null;
            while (exitCode is null)
            {
                exitCode = ExitCodeWithin(process, task, 100);
                if (exitCode != null) break;
                if (cancellationToken.IsCancellationRequested)
                {
                    Stop(process, task, pid, group, abort);
                    throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped,
                        $"Stopped while '{program}' was running; it was ended{(group ? " with every process it had started" : string.Empty)}.", program);
                }
                if (timeout.HasValue && watch.Elapsed >= timeout.Value)
                {
                    Stop(process, task, pid, group, abort);
                    throw new GpuVirtException(ErrorIds.ProgramTimedOut, ErrorKind.OperationStopped,
                        $"'{Render(program, args)}' did not finish within {timeout.Value.TotalSeconds:0} s and was stopped{(group ? " with every process it had started" : string.Empty)}.", program);
                }
            }

            // The program is gone; its output may still be held open by what it left running in its group.
            if (!WaitQuietly(task, OutputGrace))
            {
                if (group && pid > 0 && GroupAlive(pid))
                {
                    _log?.Invoke($"'{program}' exited ({exitCode}) but processes it started still hold its output open: stopping its process group {pid}.");
                    Signal(pid, SIGTERM);
                    if (!WaitQuietly(task, StopGrace)) Signal(pid, SIGKILL);
                }
                if (!WaitQuietly(task, StopGrace))
                {
                    abort.Cancel();
                    WaitQuietly(task, StopGrace);
                }
            }

            string outText, errText;
            lock (stdout) outText = stdout.ToString();
            lock (stderr) errText = stderr.ToString();
            var result = new CommandResult(program, args, exitCode.Value, outText, errText);
            if (group && exitCode == 1 && errText.StartsWith("setsid: failed to execute", StringComparison.Ordinal)) throw NotFound(program, null);
            if (check && result.ExitCode != 0)
            {
                throw new GpuVirtException(ErrorIds.ProgramFailed, ErrorKind.InvalidOperation,
                    $"'{result.CommandLine}' failed with exit code {result.ExitCode}: {FirstLines(result.StandardError, result.StandardOutput)}",
                    result);
            }
            return result;
        }

        private const int SIGTERM = 15;
        private const int SIGKILL = 9;

        /// <summary>The exit code once the process has exited (waiting at most <paramref name="milliseconds"/>), else null.</summary>
        private static int? ExitCodeWithin(Process process, System.Threading.Tasks.Task<int> task, int milliseconds)
        {
            try
            {
                if (process.WaitForExit(milliseconds)) return process.ExitCode;
                return null;
            }
            catch (Exception e) when (e is InvalidOperationException || e is ObjectDisposedException)
            {
                // CliWrap disposed the process object: it saw the end first and its task holds the exit code.
                if (WaitQuietly(task, StopGrace) && task.Status == System.Threading.Tasks.TaskStatus.RanToCompletion) return task.Result;
                throw new GpuVirtException(ErrorIds.ProgramFailed, ErrorKind.InvalidOperation,
                    $"The end of '{process.StartInfo.FileName}' could not be observed: {e.Message}", process.StartInfo.FileName, e);
            }
        }

        /// <summary>Ends the program: SIGTERM to its whole group, SIGKILL after the grace; then lets CliWrap's task go.</summary>
        private static void Stop(Process process, System.Threading.Tasks.Task<int> task, int pid, bool group, CancellationTokenSource abort)
        {
            if (group && pid > 0)
            {
                Signal(pid, SIGTERM);
                var ended = ExitedWithin(process, StopGrace);
                // Once the leader is gone its id is only ours while members of its group remain: check before SIGKILL.
                if (!ended || GroupAlive(pid)) Signal(pid, SIGKILL);
                if (!ended) ExitedWithin(process, StopGrace);
            }
            abort.Cancel();
            WaitQuietly(task, StopGrace);
        }

        private static bool ExitedWithin(Process process, TimeSpan span)
        {
            try
            {
                return process.WaitForExit((int)span.TotalMilliseconds);
            }
            catch (Exception e) when (e is InvalidOperationException || e is ObjectDisposedException)
            {
                return true;
            }
        }

        /// <summary>Signals the process group whose leader is <paramref name="pgid"/> (ESRCH, nothing left, is fine).</summary>
        private static void Signal(int pgid, int signal) => LibC.kill(-pgid, signal);

        /// <summary>Whether any process is still in the process group <paramref name="pgid"/> (field 5 of /proc/PID/stat).</summary>
        internal static bool GroupAlive(int pgid)
        {
            foreach (var dir in System.IO.Directory.EnumerateDirectories("/proc"))
            {
                var name = System.IO.Path.GetFileName(dir);
                if (name.Length == 0 || !char.IsDigit(name[0])) continue;
                string stat;
                try
                {
                    stat = System.IO.File.ReadAllText(dir + "/stat");
                }
                catch (Exception e) when (e is System.IO.IOException || e is UnauthorizedAccessException)
                {
                    continue;
                }
                var fields = stat.Substring(stat.LastIndexOf(')') + 1).Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                // After the name: state, ppid, pgrp.
                if (fields.Length > 2 && fields[2] == pgid.ToString(System.Globalization.CultureInfo.InvariantCulture)) return true;
            }
            return false;
        }

        private static int SafeId(Process process)
        {
            try
            {
                return process.Id;
            }
            catch (InvalidOperationException)
            {
                return -1;
            }
        }

        private static bool WaitQuietly(System.Threading.Tasks.Task task, TimeSpan span)
        {
            try
            {
                return task.Wait(span);
            }
            catch (AggregateException)
            {
                return true;
            }
        }

        /// <summary>Where the program would be found (a path as given, or the first executable on PATH), or null.</summary>
        private static string? Locate(string program, IReadOnlyDictionary<string, string?>? environment)
        {
            if (program.IndexOf('/') >= 0) return System.IO.File.Exists(program) ? program : null;
            if (environment != null && environment.ContainsKey("PATH")) return program;
            return ProgramLocator.Find(program);
        }

        /// <summary>
        /// Runs a program on the host the root stands for: directly when the root is <c>/</c>, otherwise inside it with
        /// <c>chroot ROOT PROGRAM ...</c>, so that a tool such as grub2-mkconfig reads and writes the image's files,
        /// never the running system's.
        /// </summary>
        public CommandResult RunOnHost(HostRoot root, string program, IEnumerable<string> arguments, CancellationToken cancellationToken = default,
            bool check = true, string? standardInput = null, TimeSpan? timeout = null)
        {
            if (root.IsLive) return Run(program, arguments, cancellationToken, check, standardInput, timeout: timeout);
            return Run("chroot", new[] { root.Directory, program }.Concat(arguments), cancellationToken, check, standardInput, timeout: timeout);
        }

        /// <summary>The error for a program that is not installed on the host.</summary>
        public static GpuVirtException ProgramMissing(HostRoot root, string program) =>
            new GpuVirtException(ErrorIds.ProgramNotFound, ErrorKind.NotInstalled,
                $"The program '{program}' was not found{(root.IsLive ? string.Empty : " under '" + root.Directory + "'")}. Install {PackageFor(program)}.", program);

        public static string PackageFor(string program) =>
            Packages.TryGetValue(System.IO.Path.GetFileName(program), out var p) ? p : "the package that provides it";

        private static GpuVirtException NotFound(string program, Exception? e)
        {
            // A start can fail for reasons other than a missing program: the kernel's errno says which.
            var native = e;
            while (native != null && !(native is Win32Exception)) native = native.InnerException;
            if (native is Win32Exception w && w.NativeErrorCode == Errno.E2BIG) return ArgumentsTooLong(program, e);
            return new GpuVirtException(ErrorIds.ProgramNotFound, ErrorKind.NotInstalled,
                $"The program '{program}' was not found. Install {PackageFor(program)}.", program, e);
        }

        private static GpuVirtException ArgumentsTooLong(string program, Exception? e) =>
            new GpuVirtException(ErrorIds.ProgramArgumentsTooLong, ErrorKind.InvalidArgument,
                $"The program '{program}' could not be started: its arguments are longer than the kernel takes (E2BIG: at most {MaxArgumentLength / 1024} KiB in one argument). " +
                "Shorten what was given (a name or a value of that size is no valid input).", program, e);

        /// <summary>MAX_ARG_STRLEN: the longest single argument Linux passes to a new program.</summary>
        private const int MaxArgumentLength = 128 * 1024;

        private static string FirstLines(string stderr, string stdout)
        {
            var text = string.IsNullOrWhiteSpace(stderr) ? stdout : stderr;
            text = text.Trim();
            return text.Length == 0 ? "(no output)" : text;
        }

        /// <summary>A command line for people to read (the program is never run through a shell).</summary>
        public static string Render(string program, IEnumerable<string> arguments) =>
            string.Join(" ", new[] { program }.Concat(arguments).Select(ShellQuote.Word));
    }
}
