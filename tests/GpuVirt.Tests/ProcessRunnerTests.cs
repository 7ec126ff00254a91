using GpuVirt.Core;

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
}
