using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>The executor: lock, re-check, steps in order, undo in reverse, recorders; and the host-driver planner on a kernel-shaped tree.</summary>
public class PlanExecutorTests
{
    private sealed class RecordingLock : IHostLockProvider
    {
        public List<string> Events { get; } = new();

        public IDisposable Acquire(ChangeHost host, TimeSpan? timeout, CancellationToken cancellationToken, Action<string>? waiting)
        {
            Events.Add("lock " + host.Root.Directory);
            return new Release(() => Events.Add("unlock"));
        }

        private sealed class Release(Action release) : IDisposable
        {
            public void Dispose() => release();
        }
    }

    private sealed class Recorder(List<string> events) : IPlanRecorder
    {
        public void Starting(ChangePlan plan) => events.Add("starting " + plan.Action);
        public void StepApplied(ChangePlan plan, PlanStep step) => events.Add("applied " + step.Description);
        public void Finished(PlanOutcome outcome) => events.Add("finished " + (outcome.Succeeded ? "ok" : outcome.Error!.ErrorId));
    }

    private sealed class RefuseWhen(Func<bool> refuse) : IPlanCheck
    {
        public void Check(ChangePlan plan)
        {
            if (refuse()) plan.Refusals.Add(new PlanRefusal(new GpuVirtException("CheckRefused", ErrorKind.InvalidOperation, "refused by the check")));
        }
    }

    private static (PlanExecutor Executor, RecordingLock Lock) Executor(List<string> events, IEnumerable<IPlanCheck>? checks = null)
    {
        var locks = new RecordingLock();
        var executor = new PlanExecutor(events.Add) { Lock = locks, Checks = checks ?? Array.Empty<IPlanCheck>() };
        executor.Recorders.Add(new Recorder(events));
        return (executor, locks);
    }

    private static ChangePlan Plan(TempRoot dir) => new(ChangeKind.HostDriverDetach, new ChangeHost(new HostRoot(dir.Path)), "target", "act");

    [Fact]
    public void A_failed_step_undoes_the_applied_ones_in_reverse_and_the_error_says_what_was_left()
    {
        using var dir = new TempRoot();
        var events = new List<string>();
        var (executor, locks) = Executor(events);
        var plan = Plan(dir);
        plan.Steps.Add(new PlanStep("one", _ => events.Add("do one"), _ => events.Add("undo one")));
        plan.Steps.Add(new PlanStep("two", _ => events.Add("do two")));
        plan.Steps.Add(new PlanStep("three", _ => events.Add("do three"), _ => events.Add("undo three")));
        plan.Steps.Add(new PlanStep("four", _ => throw new GpuVirtException("StepFailed", ErrorKind.WriteError, "four failed.")));

        var outcome = executor.Apply(plan);

        Assert.False(outcome.Succeeded);
        Assert.Equal("StepFailed", outcome.Error!.ErrorId);
        Assert.Equal(new[] { "one", "two", "three" }, outcome.Applied.Select(s => s.Description));
        Assert.Equal(new[] { "three", "one" }, outcome.Undone.Select(s => s.Description));
        Assert.Equal(new[] { "two (it has no inverse)" }, outcome.NotUndone);
        Assert.Equal("four failed. Left as made: two (it has no inverse). Undone: three; one.", outcome.Error.Message);
        Assert.Equal(new[] { "lock " + dir.Path }, locks.Events.Take(1));
        Assert.Equal("unlock", locks.Events.Last());
        Assert.Equal(new[] { "starting act", "do one", "applied one", "do two", "applied two", "do three", "applied three", "Undoing: three", "undo three", "Undoing: one", "undo one", "finished StepFailed" }, events);
    }

    [Fact]
    public void A_precondition_that_no_longer_holds_refuses_the_plan_under_the_lock_and_nothing_runs()
    {
        using var dir = new TempRoot();
        var events = new List<string>();
        var (executor, locks) = Executor(events);
        var plan = Plan(dir);
        var driver = "snd_hda_intel";
        plan.Preconditions.Add(new PlanPrecondition("bound to snd_hda_intel", () => driver == "snd_hda_intel" ? null : "now bound to " + driver));
        plan.Steps.Add(new PlanStep("one", _ => events.Add("do one")));
        driver = "vfio-pci";

        var outcome = executor.Apply(plan);

        Assert.Equal(ErrorIds.HostChangedSincePlan, outcome.Error!.ErrorId);
        Assert.Contains("now bound to vfio-pci", outcome.Error.Message);
        Assert.Equal(new[] { "lock " + dir.Path, "unlock" }, locks.Events);
        Assert.Empty(events);
    }

    [Fact]
    public void The_checks_run_again_under_the_lock_and_a_new_refusal_blocks_unless_force_lifts_an_overridable_one()
    {
        using var dir = new TempRoot();
        var refuse = false;
        var events = new List<string>();
        var (executor, _) = Executor(events, new[] { new RefuseWhen(() => refuse) });
        var plan = Plan(dir);
        plan.Steps.Add(new PlanStep("one", _ => events.Add("do one")));
        PlanChecks.Run(plan, executor.Checks);
        Assert.Empty(plan.Refusals);

        refuse = true;
        var outcome = executor.Apply(plan);
        Assert.Equal("CheckRefused", outcome.Error!.ErrorId);
        Assert.DoesNotContain("do one", events);

        var blocked = Plan(dir);
        blocked.Refusals.Add(new PlanRefusal(new GpuVirtException("InUse", ErrorKind.ResourceBusy, "in use"), "in use; -Force goes on"));
        blocked.Steps.Add(new PlanStep("two", _ => events.Add("do two")));
        Assert.Equal("InUse", executor.Apply(blocked).Error!.ErrorId);
        blocked.Force = true;
        Assert.Single(blocked.Overridden);
        var (forced, _) = Executor(events);
        Assert.True(forced.Apply(blocked).Succeeded);
        Assert.Contains("do two", events);
    }

    [Fact]
    public void Batched_plans_are_applied_in_one_call_and_fail_one_by_one()
    {
        using var dir = new TempRoot();
        var events = new List<string>();
        var (executor, _) = Executor(events);
        var batch = new Batch(events);
        var plans = new[] { "a", "b", "c" }.Select(name =>
        {
            var p = new ChangePlan(ChangeKind.HostdevAttach, new ChangeHost(new HostRoot(dir.Path)), name, "attach " + name);
            p.Steps.Add(new PlanStep(name, batch));
            return p;
        }).ToList();

        var outcomes = executor.ApplyEach(plans);

        Assert.Equal(1, batch.Calls);
        Assert.Equal(new[] { true, false, true }, outcomes.Select(o => o.Succeeded));
        Assert.Equal("b failed", outcomes[1].Error!.Message);
    }

    private sealed class Batch(List<string> events) : IStepBatch
    {
        public int Calls { get; private set; }

        public IReadOnlyList<GpuVirtException?> Apply(IReadOnlyList<PlanStep> steps, PlanContext context)
        {
            Calls++;
            events.Add("batch " + string.Join(",", steps.Select(s => s.Description)));
            return steps.Select(s => s.Description == "b" ? new GpuVirtException("BatchFailed", ErrorKind.InvalidOperation, "b failed") : null).ToList();
        }
    }

    [Fact]
    public void The_host_driver_plan_names_its_writes_and_is_refused_when_the_driver_changed_before_it_was_applied()
    {
        using var dir = new TempRoot();
        var b = SampleHosts.Seed(dir.Path).AddDriver("vfio-pci");
        b.Build();
        var host = new ChangeHost(new HostRoot(dir.Path));
        var planner = new HostDriverPlanner(host, () => throw new InvalidOperationException("no virsh on another root"));
        var address = PciAddress.Parse("0000:02:00.1");

        var plan = planner.PlanDetach(address, HostDriverBinding.VfioPci, HostDriverMethod.Auto);

        Assert.Equal("0000:02:00.1 (driver: snd_hda_intel)", plan.Target);
        Assert.Equal(new[] { address }, plan.Devices);
        var step = Assert.Single(plan.Steps);
        Assert.Equal("write 'vfio-pci' to /sys/bus/pci/devices/0000:02:00.1/driver_override, '0000:02:00.1' to /sys/bus/pci/devices/0000:02:00.1/driver/unbind, '0000:02:00.1' to /sys/bus/pci/drivers_probe", step.Description);
        Assert.True(step.CanUndo);

        // Another command moved the function meanwhile: the plan is not applied to a host it was not made for.
        var device = b.DeviceDirectory("0000:02:00.1");
        File.Delete(Path.Combine(device, "driver"));
        var events = new List<string>();
        var (executor, _) = Executor(events);
        var outcome = executor.Apply((ChangePlan)plan);
        Assert.Equal(ErrorIds.HostChangedSincePlan, outcome.Error!.ErrorId);
        Assert.Equal("(null)\n", File.ReadAllText(Path.Combine(device, "driver_override")));
    }

    [Fact]
    public void The_default_lock_is_a_file_lock_under_the_host_root()
    {
        using var dir = new TempRoot();
        var host = new ChangeHost(new HostRoot(dir.Path));
        using (new HostLockProvider().Acquire(host, null, CancellationToken.None, null))
        {
            Assert.True(File.Exists(Path.Combine(dir.Path, "run/lock/gpuvirt.lock")));
        }
    }

    [Fact]
    public void The_executor_waits_for_the_lock_no_longer_than_its_LockTimeout()
    {
        using var dir = new TempRoot();
        var host = new ChangeHost(new HostRoot(dir.Path));
        var applied = false;
        var plan = new ChangePlan(ChangeKind.HostDriverDetach, host, "0000:02:00.0", "Bind to vfio-pci");
        plan.Steps.Add(new PlanStep("write", _ => applied = true));
        // Another command (here another thread, which waits as another process would) holds the lock.
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            using (HostLock.Acquire(host.Root, "hold"))
            {
                held.Set();
                release.Wait();
            }
        }) { IsBackground = true };
        holder.Start();
        held.Wait();
        try
        {
            var outcome = new PlanExecutor { LockTimeout = TimeSpan.FromMilliseconds(300) }.Apply(plan);
            Assert.Equal(ErrorIds.HostLockTimedOut, outcome.Error!.ErrorId);
            Assert.Contains("300 ms", outcome.Error.Message);
            Assert.False(applied);
        }
        finally
        {
            release.Set();
            holder.Join();
        }
    }

    private static DomainDefinition GuestWith(int vgpus)
    {
        var hostdevs = string.Concat(Enumerable.Range(1, vgpus).Select(i =>
            $"<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'><source><address uuid='{new Guid(i, 0, 0, new byte[8])}'/></source></hostdev>"));
        return DomainXml.Parse($"<domain type='kvm'><name>g</name><memory unit='KiB'>65536</memory><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>{hostdevs}</devices></domain>");
    }

    [Fact]
    public void The_33rd_device_check_counts_the_command_s_earlier_devices_and_reads_the_guest_again_under_the_host_lock()
    {
        using var dir = new TempRoot();
        var root = new HostRoot(dir.Path);
        var checks = new IPlanCheck[] { new HostdevLimitCheck() };
        var reads = 0;
        // Planned with 31 vGPUs; under the lock another command has given the guest its 32nd meanwhile.
        var definitions = new GuestDefinitions("g", root, new[] { GuestWith(31) }, () =>
        {
            reads++;
            Assert.True(HostLock.IsHeld(root));
            return new[] { GuestWith(32) };
        });
        var gpu = HostdevSource.Pci(PciAddress.Parse("0000:02:00.0"));
        ChangePlan Attach(IReadOnlyList<HostdevSource> before, List<string> applied)
        {
            var plan = new ChangePlan(ChangeKind.HostdevAttach, new ChangeHost(root), "guest 'g'", "Attach PCI hostdev 0000:02:00.0")
            {
                Guest = new PlannedGuest(definitions, gpu, before, Array.Empty<HostdevSource>(), new PciInventory(root)),
            };
            plan.Steps.Add(new PlanStep("attach", _ => applied.Add("attach")));
            PlanChecks.Run(plan, checks);
            return plan;
        }

        // With one more vGPU attached before it in the same command, it is the 33rd already when planned.
        var applied = new List<string>();
        var counted = Attach(new[] { HostdevSource.Mdev(Guid.NewGuid()) }, applied);
        var refusal = Assert.Single(counted.Refusals);
        Assert.Equal(ErrorIds.HostdevLimitExceeded, refusal.Error.ErrorId);
        Assert.Equal("Guest 'g' already has 31 assigned PCI devices and this command attaches 1 more before it; 0000:02:00.0 would be past the limit of 32 per guest. Remove one first (Remove-GpuHostdev), or use -Force.", refusal.Error.Message);
        Assert.True(refusal.Overridable);
        Assert.Equal(0, reads);

        // Alone it fits when planned, and the executor's check under the lock refuses it: nothing is applied.
        var plan = Attach(Array.Empty<HostdevSource>(), applied);
        Assert.Empty(plan.Refusals);
        var outcome = new PlanExecutor { Checks = checks }.Apply(plan);
        Assert.Equal(ErrorIds.HostdevLimitExceeded, outcome.Error!.ErrorId);
        Assert.StartsWith("Guest 'g' already has 32 assigned PCI devices; 0000:02:00.0 would be past the limit", outcome.Error.Message);
        Assert.EndsWith("(found when the change was about to be made; nothing was changed)", outcome.Error.Message);
        Assert.Empty(applied);
        Assert.Equal(1, reads);

        // -Force lifts it; a device the guest has already is not counted again.
        var forced = Attach(Array.Empty<HostdevSource>(), applied);
        forced.Force = true;
        Assert.True(new PlanExecutor { Checks = checks }.Apply(forced).Succeeded);
        Assert.Equal(new[] { "attach" }, applied);
        var again = new ChangePlan(ChangeKind.HostdevAttach, new ChangeHost(root), "guest 'g'", "Attach")
        {
            Guest = new PlannedGuest(definitions, GuestWith(31).Hostdevs[0].SourceDevice, Array.Empty<HostdevSource>(), Array.Empty<HostdevSource>(), new PciInventory(root)),
        };
        PlanChecks.Run(again, checks);
        Assert.Empty(again.Refusals);
    }
}
