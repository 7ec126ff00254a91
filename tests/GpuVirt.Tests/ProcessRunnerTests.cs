using GpuVirt.Core;
using GpuVirt.Core.Libvirt;

namespace GpuVirt.Tests;

public class ProcessRunnerTests
{
    [Fact]
    public void Runs_an_argument_list_without_a_shell_and_logs_the_command_line()
    {
        var log = new List<string>();
        var runner = new ProcessRunner(log.Add);
        var result = runner.Run("printf", new[] { "%s|", "a b", "$(id)", "'q'" });
        Assert.Equal("a b|$(id)|'q'|", result.StandardOutput);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(@"printf '%s|' 'a b' '$(id)' ''\''q'\'''", Assert.Single(log));
    }

    [Fact]
    public void A_failing_program_is_an_error_with_its_exit_code_and_stderr()
    {
        var e = Assert.Throws<GpuVirtException>(() => new ProcessRunner().Run("sh", new[] { "-c", "echo boom >&2; exit 3" }));
        Assert.Equal(ErrorIds.ProgramFailed, e.ErrorId);
        Assert.Contains("exit code 3", e.Message);
        Assert.Contains("boom", e.Message);
        var result = new ProcessRunner().Run("sh", new[] { "-c", "exit 3" }, check: false);
        Assert.Equal(3, result.ExitCode);
    }

    [Fact]
    public void An_argument_the_kernel_refuses_is_too_long_not_a_missing_program()
    {
        // 200,000 characters in one argument: execve fails with E2BIG (a guest name that long once read "virsh was not found").
        var e = Assert.Throws<GpuVirtException>(() => new ProcessRunner().Run("true", new[] { new string('x', 200_000) }));
        Assert.Equal(ErrorIds.ProgramArgumentsTooLong, e.ErrorId);
        Assert.Contains("E2BIG", e.Message);
        Assert.DoesNotContain("not found", e.Message);
    }

    [Fact]
    public void The_longest_argument_the_kernel_takes_is_passed_and_one_byte_more_is_refused_before_any_start()
    {
        // MAX_ARG_STRLEN is 131072 bytes with the terminating NUL; counted in UTF-8, as execve sees it.
        var longest = new string('x', 131_071);
        var result = new ProcessRunner().Run("sh", new[] { "-c", "printf %s \"$0\" | wc -c", longest });
        Assert.Equal("131071", result.StandardOutput.Trim());

        var logged = new List<string>();
        var e = Assert.Throws<GpuVirtException>(() => new ProcessRunner(logged.Add).Run("true", new[] { new string('é', 65_536) }));
        Assert.Equal(ErrorIds.ProgramArgumentsTooLong, e.ErrorId);
        Assert.Single(logged);
    }

    [Fact]
    public void A_missing_program_names_the_package_to_install()
    {
        var e = Assert.Throws<GpuVirtException>(() => new ProcessRunner().Run("grub2-mkconfig-not-here", Array.Empty<string>()));
        Assert.Equal(ErrorIds.ProgramNotFound, e.ErrorId);
        Assert.Equal("libvirt-client (RHEL, Fedora) or libvirt-clients (Debian, Ubuntu)", ProcessRunner.PackageFor("virsh"));
    }

    [Fact]
    public void Cancellation_stops_the_program()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var e = Assert.Throws<GpuVirtException>(() => new ProcessRunner().Run("sleep", new[] { "30" }, cts.Token));
        Assert.Equal(ErrorIds.OperationStopped, e.ErrorId);
    }

    [Fact]
    public void A_program_past_its_timeout_is_stopped_and_reported()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<GpuVirtException>(() =>
            new ProcessRunner().Run("sleep", new[] { "30" }, timeout: TimeSpan.FromMilliseconds(300)));
        Assert.Equal(ErrorIds.ProgramTimedOut, e.ErrorId);
        Assert.Contains("'sleep 30' did not finish within 0 s", e.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), "the wait must end at the timeout, not when sleep ends");
        Assert.Equal("ok", new ProcessRunner().Run("echo", new[] { "ok" }, timeout: TimeSpan.FromSeconds(30)).StandardOutput.Trim());
    }

    [Fact]
    public void Only_reading_virsh_commands_count_as_read_only()
    {
        Assert.True(VirshCommand.ListAllNames().IsReadOnly);
        Assert.True(VirshCommand.DumpXml("vm1", inactive: true).IsReadOnly);
        Assert.False(VirshCommand.AttachDevice("vm1", "f.xml", DeviceChangeScope.Persistent).IsReadOnly);
        Assert.False(VirshCommand.NodeDeviceDetach("pci_0000_02_00_0", "vfio").IsReadOnly);
    }

    [Fact]
    public void Standard_input_reaches_the_program()
    {
        var result = new ProcessRunner().Run("cat", Array.Empty<string>(), standardInput: "<hostdev/>");
        Assert.Equal("<hostdev/>", result.StandardOutput);
    }

    [Fact]
    public void Thousands_of_short_runs_all_end_none_waits_for_an_exit_it_missed()
    {
        // The old runner waited only for CliWrap's task and hung on about 1 run in 1,500 of 'true' (2 in 3,000
        // measured): the end is now observed on the process itself. Each run is bounded, so a miss is counted, not hung.
        const int runs = 2000;
        var runner = new ProcessRunner();
        var missed = 0;
        var failures = new List<string>();
        for (var i = 0; i < runs; i++)
        {
            try
            {
                var r = runner.Run("true", Array.Empty<string>(), timeout: TimeSpan.FromSeconds(60));
                if (r.ExitCode != 0) failures.Add($"run {i}: exit {r.ExitCode}");
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.ProgramTimedOut)
            {
                missed++;
            }
        }
        Assert.Equal(0, missed);
        Assert.Empty(failures);
    }

    [Fact]
    public void A_background_grandchild_that_keeps_the_output_open_does_not_keep_the_runner_waiting()
    {
        // sh exits at once; its background sleep holds stdout and stderr open for ten minutes.
        var result = OnThread(() => new ProcessRunner().Run("sh", new[] { "-c", "sleep 600 & echo started; exit 4" }, check: false), TimeSpan.FromMinutes(2));
        Assert.Equal(4, result.ExitCode);
        Assert.Equal("started", result.StandardOutput.Trim());
        Assert.Empty(Sleepers("600"));
    }

    [Fact]
    public void A_program_stopped_at_its_time_bound_takes_its_whole_process_group_with_it()
    {
        var marker = "37" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var e = Assert.Throws<GpuVirtException>(() => OnThread(() =>
            new ProcessRunner().Run("sh", new[] { "-c", $"sleep {marker} & sleep {marker}; wait" }, timeout: TimeSpan.FromMilliseconds(500)), TimeSpan.FromMinutes(2)));
        Assert.Equal(ErrorIds.ProgramTimedOut, e.ErrorId);
        Assert.Contains("with every process it had started", e.Message);
        Assert.Empty(Sleepers(marker));
    }

    [Fact]
    public void Stopping_ends_the_grandchildren_too()
    {
        var marker = "38" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var e = Assert.Throws<GpuVirtException>(() => OnThread(() =>
            new ProcessRunner().Run("sh", new[] { "-c", $"sh -c 'sleep {marker}' & sleep {marker}" }, cts.Token), TimeSpan.FromMinutes(2)));
        Assert.Equal(ErrorIds.OperationStopped, e.ErrorId);
        Assert.Empty(Sleepers(marker));
    }

    /// <summary>The processes whose command line is exactly <c>sleep SECONDS</c>.</summary>
    private static List<string> Sleepers(string seconds) =>
        Directory.EnumerateDirectories("/proc")
            .Where(d => Path.GetFileName(d).All(char.IsDigit))
            .Select(d =>
            {
                try
                {
                    return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ').Trim();
                }
                catch (IOException)
                {
                    return string.Empty;
                }
            })
            .Where(c => c == "sleep " + seconds)
            .ToList();

    private static T OnThread<T>(Func<T> work, TimeSpan bound)
    {
        T result = default!;
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        t.Start();
        Assert.True(t.Join(bound), "the runner returned within the bound");
        if (failure != null) throw failure;
        return result;
    }
}
