using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Linq;
using System.Text;
using System.Threading;
using CliWrap;
using CliWrap.Buffered;

namespace GpuVirt.Core
{
    /// <summary>What an external program did: its command line, exit code and captured output.</summary>
    public sealed class CommandResult
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
    public sealed class ProcessRunner
    {
        private static readonly Dictionary<string, string> Packages = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["virsh"] = "libvirt-client (RHEL, Fedora) or libvirt-clients (Debian, Ubuntu)",
            ["grub2-mkconfig"] = "grub2-tools",
            ["grubby"] = "grubby",
            ["update-grub"] = "grub2-common",
            ["dracut"] = "dracut",
            ["update-initramfs"] = "initramfs-tools",
            ["systemctl"] = "systemd",
            ["mdevctl"] = "mdevctl",
            ["lspci"] = "pciutils",
            ["kernel-install"] = "systemd (kernel-install)",
            ["chroot"] = "coreutils",
        };

        private readonly Action<string>? _log;

        public ProcessRunner(Action<string>? log = null)
        {
            _log = log;
        }

        /// <summary>Runs a program and waits for it. With <paramref name="check"/>, a non-zero exit is a <see cref="ErrorIds.ProgramFailed"/> error.</summary>
        /// <param name="environment">Variables to set for the program (a null value removes one), on top of this process's.</param>
        /// <remarks>
        /// With <paramref name="timeout"/>, a program that has not finished by then is stopped and reported as
        /// <see cref="ErrorIds.ProgramTimedOut"/>. The wait itself is bounded, not only the program: the caller gets
        /// control back even if the end of the program is never observed.
        /// </remarks>
        public CommandResult Run(string program, IEnumerable<string> arguments, CancellationToken cancellationToken = default,
            bool check = true, string? standardInput = null, IReadOnlyDictionary<string, string?>? environment = null,
            TimeSpan? timeout = null)
        {
            var args = arguments.ToList();
            _log?.Invoke(Render(program, args));
            var command = Cli.Wrap(program)
                .WithArguments(args)
                .WithValidation(CommandResultValidation.None);
            if (standardInput != null) command = command.WithStandardInputPipe(PipeSource.FromString(standardInput));
            if (environment != null)
            {
                command = command.WithEnvironmentVariables(env =>
                {
                    foreach (var pair in environment) env.Set(pair.Key, pair.Value);
                });
            }

            BufferedCommandResult buffered;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            try
            {
                var task = command.ExecuteBufferedAsync(Encoding.UTF8, stop.Token).Task;
                bool finished;
                try
                {
                    finished = task.Wait(timeout.HasValue ? (int)Math.Min(int.MaxValue, timeout.Value.TotalMilliseconds) : Timeout.Infinite, cancellationToken);
                }
                catch (AggregateException e) when (e.InnerExceptions.Count == 1)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                    throw;
                }
                if (!finished)
                {
                    stop.Cancel();
                    throw new GpuVirtException(ErrorIds.ProgramTimedOut, ErrorKind.OperationStopped,
                        $"'{Render(program, args)}' did not finish within {timeout!.Value.TotalSeconds:0} s and was stopped.", program);
                }
                buffered = task.Result;
            }
            catch (OperationCanceledException e)
            {
                throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped,
                    $"Stopped while '{program}' was running.", program, e);
            }
            catch (Win32Exception e)
            {
                throw NotFound(program, e);
            }
            catch (InvalidOperationException e) when (e.InnerException is Win32Exception w)
            {
                throw NotFound(program, w);
            }

            var result = new CommandResult(program, args, buffered.ExitCode, buffered.StandardOutput, buffered.StandardError);
            if (check && result.ExitCode != 0)
            {
                throw new GpuVirtException(ErrorIds.ProgramFailed, ErrorKind.InvalidOperation,
                    $"'{result.CommandLine}' failed with exit code {result.ExitCode}: {FirstLines(result.StandardError, result.StandardOutput)}",
                    result);
            }
            return result;
        }

        /// <summary>
        /// Runs a program on the host the root stands for: directly when the root is <c>/</c>, otherwise inside it with
        /// <c>chroot ROOT PROGRAM ...</c>, so that a tool such as grub2-mkconfig reads and writes the image's files,
        /// never the running system's.
        /// </summary>
        public CommandResult RunOnHost(HostRoot root, string program, IEnumerable<string> arguments, CancellationToken cancellationToken = default,
            bool check = true, string? standardInput = null)
        {
            if (root.IsLive) return Run(program, arguments, cancellationToken, check, standardInput);
            return Run("chroot", new[] { root.Directory, program }.Concat(arguments), cancellationToken, check, standardInput);
        }

        /// <summary>
        /// Whether a program can be run on the host: on <c>PATH</c> for <c>/</c>, in the usual bin directories of
        /// another root (where <see cref="RunOnHost"/> runs it with chroot).
        /// </summary>
        public static bool ExistsOnHost(HostRoot root, string program)
        {
            IEnumerable<string> dirs = root.IsLive
                ? (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Where(d => d.Length > 0)
                : new[] { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin" };
            foreach (var dir in dirs)
            {
                var full = root.IsLive ? System.IO.Path.Combine(dir, program) : root.Resolve(dir + "/" + program);
                if (System.IO.File.Exists(full) || Sysfs.TryReadLink(full) != null) return true;
            }
            return false;
        }

        /// <summary>The error for a program that is not installed on the host.</summary>
        public static GpuVirtException ProgramMissing(HostRoot root, string program) =>
            new GpuVirtException(ErrorIds.ProgramNotFound, ErrorKind.NotInstalled,
                $"The program '{program}' was not found{(root.IsLive ? string.Empty : " under '" + root.Directory + "'")}. Install {PackageFor(program)}.", program);

        public static string PackageFor(string program) =>
            Packages.TryGetValue(System.IO.Path.GetFileName(program), out var p) ? p : "the package that provides it";

        private static GpuVirtException NotFound(string program, Exception e) =>
            new GpuVirtException(ErrorIds.ProgramNotFound, ErrorKind.NotInstalled,
                $"The program '{program}' was not found. Install {PackageFor(program)}.", program, e);

        private static string FirstLines(string stderr, string stdout)
        {
            var text = string.IsNullOrWhiteSpace(stderr) ? stdout : stderr;
            text = text.Trim();
            return text.Length == 0 ? "(no output)" : text;
        }

        /// <summary>A command line for people to read (the program is never run through a shell).</summary>
        public static string Render(string program, IEnumerable<string> arguments) =>
            string.Join(" ", new[] { program }.Concat(arguments).Select(Quote));

        private static string Quote(string s)
        {
            if (s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "-_./:=,@%+".IndexOf(c) >= 0)) return s;
            return "'" + s.Replace("'", "'\\''") + "'";
        }
    }
}
