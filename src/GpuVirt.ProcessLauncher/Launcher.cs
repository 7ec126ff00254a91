using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CliWrap;

namespace GpuVirt.ProcessLauncher
{
    /// <summary>A program started by <see cref="Launcher.Start"/>: its process (null when the start failed inside
    /// CliWrap's task) and a task that ends with its exit code once CliWrap has seen the process and both pipes end.</summary>
    public sealed class LaunchedProgram
    {
        internal LaunchedProgram(Process? process, Task<int> completion)
        {
            Process = process;
            Completion = completion;
        }

        public Process? Process { get; }
        public Task<int> Completion { get; }
    }

    /// <summary>Starts a program through CliWrap with an argument list (never a shell string), its output captured
    /// into the given builders; no CliWrap type crosses this class's surface.</summary>
    public static class Launcher
    {
        /// <summary>Starts <paramref name="program"/>; Win32Exception or InvalidOperationException when it cannot start.</summary>
        /// <param name="environment">Variables to set for the program (a null value removes one), on top of this process's.</param>
        /// <param name="abort">Cancels CliWrap's wait (and kills the process) when the caller gives up on it.</param>
        public static LaunchedProgram Start(string program, IEnumerable<string> arguments, StringBuilder standardOutput, StringBuilder standardError,
            string? standardInput, IReadOnlyDictionary<string, string?>? environment, CancellationToken abort)
        {
            var command = Cli.Wrap(program).WithArguments(arguments.ToList())
                .WithValidation(CommandResultValidation.None)
                .WithStandardOutputPipe(PipeTarget.ToStringBuilder(standardOutput, Encoding.UTF8))
                .WithStandardErrorPipe(PipeTarget.ToStringBuilder(standardError, Encoding.UTF8));
            if (standardInput != null) command = command.WithStandardInputPipe(PipeSource.FromString(standardInput));
            if (environment != null)
            {
                command = command.WithEnvironmentVariables(env =>
                {
                    foreach (var pair in environment) env.Set(pair.Key, pair.Value);
                });
            }
            Process? process = null;
            var task = command.ExecuteAsync(null, p => process = p, abort, CancellationToken.None).Task;
            var completion = task.ContinueWith(t => t.GetAwaiter().GetResult().ExitCode, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return new LaunchedProgram(process, completion);
        }
    }
}
