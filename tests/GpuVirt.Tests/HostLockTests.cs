using GpuVirt.Core;

namespace GpuVirt.Tests;

public class HostLockTests
{
    [Fact]
    public void Is_reentrant_on_one_thread_and_dropped_by_the_last_release()
    {
        using var temp = new TempRoot();
        var root = new HostRoot(temp.Path);
        var outer = HostLock.Acquire(root, "test");
        using (HostLock.Acquire(root, "test inner", timeout: TimeSpan.FromSeconds(1)))
        {
            Assert.True(HostLock.IsHeld(root));
        }
        Assert.True(HostLock.IsHeld(root));
        Assert.False(FlockFree(HostLock.PathFor(root)));
        outer.Dispose();
        Assert.False(HostLock.IsHeld(root));
        Assert.True(FlockFree(HostLock.PathFor(root)));
    }

    [Fact]
    public void Another_thread_of_the_process_waits_like_another_process_and_times_out_with_a_clear_error()
    {
        using var temp = new TempRoot();
        var root = new HostRoot(temp.Path);
        using (HostLock.Acquire(root, "test"))
        {
            var e = OnAnotherThread(() => Assert.Throws<GpuVirtException>(() =>
                HostLock.Acquire(root, "change the kernel command line", timeout: TimeSpan.FromMilliseconds(300))));
            Assert.Equal(ErrorIds.HostLockTimedOut, e.ErrorId);
            Assert.Equal(ErrorKind.ResourceBusy, e.Kind);
            Assert.Contains("/run/lock/gpuvirt.lock", e.Message);
            Assert.Contains("could not change the kernel command line", e.Message);
        }
        // The waiter that gave up left nothing behind: the lock is free once the holder is done.
        Assert.True(FlockFree(HostLock.PathFor(root)));
        using (HostLock.Acquire(root, "test", timeout: TimeSpan.FromSeconds(5)))
        {
        }
    }

    [Fact]
    public void A_waiter_gets_the_lock_when_the_holder_lets_go_and_stopping_the_wait_is_OperationStopped()
    {
        using var temp = new TempRoot();
        var root = new HostRoot(temp.Path);
        var held = HostLock.Acquire(root, "test");
        var waiting = new ManualResetEventSlim();
        var gotIt = false;
        var waiter = new Thread(() =>
        {
            using var l = HostLock.Acquire(root, "test", timeout: TimeSpan.FromMinutes(1), waiting: _ => waiting.Set());
            gotIt = HostLock.IsHeld(root);
        });
        waiter.Start();
        Assert.True(waiting.Wait(TimeSpan.FromMinutes(1)));
        held.Dispose();
        Assert.True(waiter.Join(TimeSpan.FromMinutes(1)));
        Assert.True(gotIt);

        using (HostLock.Acquire(root, "test"))
        using (var cts = new CancellationTokenSource())
        {
            var stopped = OnAnotherThread(() => Assert.Throws<GpuVirtException>(() => HostLock.Acquire(root, "test", cts.Token, waiting: _ => cts.Cancel())));
            Assert.Equal(ErrorIds.OperationStopped, stopped.ErrorId);
        }
        Assert.True(FlockFree(HostLock.PathFor(root)));
    }

    [Fact]
    public void The_lock_file_is_resolved_inside_the_root_through_absolute_links()
    {
        using var temp = new TempRoot();
        Directory.CreateDirectory(Path.Combine(temp.Path, "var", "run"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "run"), "/var/run");
        var root = new HostRoot(temp.Path);
        Assert.Equal(Path.Combine(temp.Path, "var/run/lock/gpuvirt.lock"), HostLock.PathFor(root));
        using (HostLock.Acquire(root, "test"))
        {
            Assert.True(File.Exists(Path.Combine(temp.Path, "var/run/lock/gpuvirt.lock")));
        }
    }

    private static T OnAnotherThread<T>(Func<T> work)
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
        Assert.True(t.Join(TimeSpan.FromMinutes(2)));
        if (failure != null) throw failure;
        return result;
    }

    /// <summary>Whether another open file description can take the lock now (the real flock(1), non-blocking).</summary>
    private static bool FlockFree(string path)
    {
        var r = new ProcessRunner().Run("flock", new[] { "-n", path, "true" }, check: false);
        return r.ExitCode == 0;
    }
}
