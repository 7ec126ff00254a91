using GpuVirt.Core;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Planning;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>Field defects of the driver binding: a driver move killed between unbind and drivers_probe.</summary>
[Collection(nameof(FieldBootTests))]
public sealed class FieldBootTests
{
    /// <summary>What a kill at a sysfs write leaves: the binding does not catch it, so nothing after it runs.</summary>
    private sealed class Killed : Exception
    {
        public Killed(string path) : base("killed before writing " + path)
        {
        }
    }

    private static readonly PciAddress Audio = PciAddress.Parse("0000:02:00.1");

    /// <summary>Applies the plan with the change journal recording it, as Dismount-/Mount-GpuHostDriver do.</summary>
    private static PlanOutcome Apply(ChangeHost host, ChangePlan plan, string command)
    {
        var executor = new PlanExecutor();
        executor.Recorders.Add(new JournalPlanRecorder(new ChangeRecorder(host.Root, null, command, command + " 0000:02:00.1 -Persistent")));
        return executor.Apply(plan);
    }

    /// <summary>Runs <paramref name="body"/> with a kill right before the first write to drivers_probe.</summary>
    private static void KilledAtDriversProbe(Action body)
    {
        HostDriverBinding.BeforeWrite = path =>
        {
            if (path.EndsWith("/drivers_probe", StringComparison.Ordinal)) throw new Killed(path);
        };
        try
        {
            Assert.Throws<Killed>(body);
        }
        finally
        {
            HostDriverBinding.BeforeWrite = null;
        }
    }

    private static string? WaitForDriver(HostDriverBinding binding, Func<string?, bool> done)
    {
        for (var i = 0; i < 400 && !done(binding.CurrentDriver(Audio)); i++) Thread.Sleep(10);
        return binding.CurrentDriver(Audio);
    }

    [Fact]
    public void Item25_a_killed_persistent_dismount_and_a_killed_undo_are_settled_by_the_next_command_and_the_journal_keeps_the_true_driver()
    {
        using var temp = new TempRoot();
        SampleHosts.Seed(temp.Path).AddDriver("vfio-pci").Build();
        var host = new ChangeHost(new HostRoot(temp.Path));
        using var core = new PciDriverCoreStandIn(temp.Path);
        var binding = new HostDriverBinding(host.Root);
        Planner NewPlanner() => new(host);

        // Dismount-GpuHostDriver -Persistent killed between unbind and drivers_probe: no driver, nothing journaled.
        var first = NewPlanner().Value.PlanDetach(Audio, HostDriverBinding.VfioPci, HostDriverMethod.Sysfs, persistent: true);
        KilledAtDriversProbe(() => Apply(host, first, "Dismount-GpuHostDriver"));
        Assert.Null(WaitForDriver(binding, d => d is null));
        Assert.Empty(new ChangeJournal(host.Root).Read());

        // Run again: the plan knows the driver it had, binds to vfio-pci, and writes the full boot setup (softdep).
        var again = NewPlanner().Value.PlanDetach(Audio, HostDriverBinding.VfioPci, HostDriverMethod.Sysfs, persistent: true);
        Assert.Equal("0000:02:00.1 (driver: snd_hda_intel)", again.Target);
        Assert.Contains(again.Steps, s => s.Description.Contains("softdep snd_hda_intel pre: vfio-pci"));
        Assert.Contains(again.Warnings, w => w.Contains("its driver was snd_hda_intel"));
        var outcome = Apply(host, again, "Dismount-GpuHostDriver");
        Assert.Null(outcome.Error);
        Assert.Equal("vfio-pci", binding.CurrentDriver(Audio));
        Assert.Null(binding.Pending(Audio));
        var record = Assert.Single(new ChangeJournal(host.Root).Read());
        var driver = Assert.Single(record.Details, d => d.What == "0000:02:00.1 driver");
        Assert.Equal("snd_hda_intel", driver.Before);
        Assert.Contains(record.Inverse, i => i.Kind == InverseKind.ReattachDriver && i.Driver == "snd_hda_intel");

        // Its undo killed between unbind and drivers_probe: no driver; the undo run again gives the host driver back.
        var undo = new ChangeUndo(host.Root, new ProcessRunner());
        var journal = new ChangeJournal(host.Root);
        KilledAtDriversProbe(() =>
        {
            using var session = journal.Open();
            undo.Apply(undo.Plan(session.Find(record.Id)!), session, "Undo-GpuVirtChange -Id 1", force: false);
        });
        Assert.Null(WaitForDriver(binding, d => d is null));
        Assert.NotNull(binding.Pending(Audio));
        // The next command, before it plans (every changing cmdlet does), resumes the interrupted undo under the lock:
        // the driver's own intent is settled first, the host driver is back, and the undo is journaled once.
        var recovered = ChangeRecovery.Recover(host.Root, new ProcessRunner(), default, null, null);
        Assert.NotNull(recovered.Undo);
        Assert.Equal("snd_hda_intel", WaitForDriver(binding, d => d == "snd_hda_intel"));
        Assert.Null(binding.Pending(Audio));
        Assert.Equal(recovered.Undo!.Id, Assert.Single(new ChangeJournal(host.Root).Read(), r => r.Id == record.Id).UndoneBy);
        Assert.False(File.Exists(Path.Combine(temp.Path, "etc/modprobe.d/gpuvirt-vfio-pci.conf")));
        Assert.False(Directory.Exists(Path.Combine(temp.Path, "var/lib/gpuvirt/driver-pending")));
    }

    [Fact]
    public void Item25_a_killed_dismount_is_taken_back_by_Mount_GpuHostDriver()
    {
        using var temp = new TempRoot();
        SampleHosts.Seed(temp.Path).AddDriver("vfio-pci").Build();
        var host = new ChangeHost(new HostRoot(temp.Path));
        using var core = new PciDriverCoreStandIn(temp.Path);
        var binding = new HostDriverBinding(host.Root);

        var plan = new Planner(host).Value.PlanDetach(Audio, HostDriverBinding.VfioPci, HostDriverMethod.Sysfs);
        KilledAtDriversProbe(() => Apply(host, plan, "Dismount-GpuHostDriver"));
        Assert.Null(WaitForDriver(binding, d => d is null));
        Assert.Equal("snd_hda_intel", binding.OriginalDriver(Audio));

        var mount = new Planner(host).Value.PlanReattach(Audio, HostDriverMethod.Sysfs);
        Assert.Null(Apply(host, mount, "Mount-GpuHostDriver").Error);
        Assert.Equal("snd_hda_intel", WaitForDriver(binding, d => d == "snd_hda_intel"));
        Assert.Null(binding.Override(Audio));
        Assert.Null(binding.Pending(Audio));
    }

    /// <summary>A planner for the fixture root (virsh is not asked: the method is sysfs).</summary>
    private sealed class Planner
    {
        public Planner(ChangeHost host)
        {
            Value = new HostDriverPlanner(host, () => throw new InvalidOperationException("no virsh on a fixture root"));
        }

        public HostDriverPlanner Value { get; }
    }
}
