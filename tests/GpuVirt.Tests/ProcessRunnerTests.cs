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
    public void Standard_input_reaches_the_program()
    {
        var result = new ProcessRunner().Run("cat", Array.Empty<string>(), standardInput: "<hostdev/>");
        Assert.Equal("<hostdev/>", result.StandardOutput);
    }
}
