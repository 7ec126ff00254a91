using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Mmio;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Safety;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>The issue-13 plan checks as the planners run them: what they refuse, and what -Force lifts.</summary>
public class SafetyPlanCheckTests
{
    private static PciAddress A(string s) => PciAddress.Parse(s);

    private static HostDriverPlanner Planner(TempRoot root) =>
        new(new ChangeHost(new HostRoot(root.Path)), () => throw new InvalidOperationException("no virsh on another root"));

    [Fact]
    public void The_module_runs_the_vgpu_parent_holder_and_host_critical_checks()
    {
        // Then the guest limits of Add-GpuHostdev (32 assigned PCI devices, the 64-bit MMIO space), then the vGPU
        // removals' holder and guest reference checks.
        Assert.Equal(new[] { typeof(VgpuParentPlanCheck), typeof(DeviceHolderPlanCheck), typeof(HostCriticalPlanCheck), typeof(HostdevLimitCheck), typeof(GuestMmioCheck),
            typeof(VgpuHolderPlanCheck), typeof(VgpuGuestReferencePlanCheck) },
            PlanChecks.All.Select(c => c.GetType()));
    }

    [Fact]
    public void A_function_the_host_needs_is_refused_and_only_force_lifts_it_with_its_warning()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var plan = Planner(root).PlanDetach(A("00:1f.2"), HostDriverBinding.VfioPci, HostDriverMethod.Sysfs);
        var refusal = Assert.Single(plan.Blocking);
        Assert.Equal(ErrorIds.HostCriticalDevice, refusal.Error.ErrorId);
        Assert.True(refusal.Overridable);
        Assert.EndsWith("Detaching it from its host driver would take it from the host. -Force: going ahead anyway.", refusal.OverriddenWarning);

        var forced = Planner(root).PlanDetach(A("00:1f.2"), HostDriverBinding.VfioPci, HostDriverMethod.Sysfs, force: true);
        Assert.Empty(forced.Blocking);
        Assert.Single(forced.Overridden);
    }

    [Fact]
    public void A_vgpu_parent_with_a_live_mdev_and_holders_is_refused_even_with_force()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var plan = Planner(root).PlanDetach(A("01:00.0"), HostDriverBinding.VfioPci, HostDriverMethod.Sysfs, force: true);
        Assert.Equal(new[] { ErrorIds.VgpuParentInUse, ErrorIds.DeviceInUse }, plan.Blocking.Select(r => r.Error.ErrorId));
        Assert.All(plan.Blocking, r => Assert.False(r.Overridable));
        Assert.Contains(SampleHosts.InUseMdev, plan.Blocking[0].Error.Message);
    }

    [Fact]
    public void The_checks_run_again_and_add_nothing_new_when_the_host_is_the_same()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var plan = Planner(root).PlanReattach(A("02:00.0"), HostDriverMethod.Sysfs);
        Assert.Equal(ErrorIds.DeviceInUse, Assert.Single(plan.Refusals).Error.ErrorId);
        var (warnings, refusals) = PlanChecks.Run(plan);
        Assert.Empty(warnings);
        Assert.Empty(refusals);
        Assert.Single(plan.Refusals);
    }

    [Fact]
    public void Bridge_class_functions_are_refused_and_never_companions()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var planner = Planner(root);
        foreach (var bridge in new[] { "00:00.0", "00:03.0", "00:1f.0" })
        {
            var e = Assert.Throws<GpuVirtException>(() => planner.PlanDetach(A(bridge), HostDriverBinding.VfioPci, HostDriverMethod.Sysfs, force: true));
            Assert.Equal(ErrorIds.HostdevNotAssignable, e.ErrorId);
        }
        Assert.Equal(new[] { A("00:1f.2") }, planner.Functions(A("00:1f.2"), includeCompanion: true));
        Assert.Equal(new[] { A("02:00.0"), A("02:00.1") }, planner.Functions(A("02:00.0"), includeCompanion: true));
    }

    [Fact]
    public void One_softdep_line_per_host_driver_stays_while_an_address_needs_it()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var host = new HostRoot(root.Path);
        var overrides = new PersistentDriverOverrides(host);
        Assert.Null(overrides.Driverctl);
        Apply(p => overrides.PlanPersist(p, A("02:00.1"), "vfio-pci", "snd_hda_intel", viaDriverctl: false, new List<FileState>(), new List<HostCommand>()), host);
        Apply(p => overrides.PlanPersist(p, A("03:00.1"), "vfio-pci", "snd-hda-intel", viaDriverctl: false, new List<FileState>(), new List<HostCommand>()), host);
        var file = Path.Combine(root.Path, "etc/modprobe.d/gpuvirt-vfio-pci.conf");
        Assert.Single(File.ReadAllLines(file), l => l.StartsWith("softdep ", StringComparison.Ordinal));
        Assert.Equal(new[] { A("02:00.1"), A("03:00.1") }, overrides.SoftdepEntries().Keys.OrderBy(a => a));

        Apply(p => overrides.PlanUnpersist(p, A("02:00.1"), viaDriverctl: false, new List<FileState>(), new List<HostCommand>()), host);
        Assert.Contains("softdep snd_hda_intel pre: vfio-pci", File.ReadAllLines(file));
        Assert.False(File.Exists(Path.Combine(root.Path, "etc/driverctl.d/pci-0000:02:00.1")));
        Apply(p => overrides.PlanUnpersist(p, A("03:00.1"), viaDriverctl: false, new List<FileState>(), new List<HostCommand>()), host);
        Assert.False(File.Exists(file));
    }

    private static void Apply(Action<ChangePlan> plan, HostRoot host)
    {
        var change = new ChangePlan(ChangeKind.HostDriverDetach, new ChangeHost(host), "t", "a");
        plan(change);
        var context = new PlanContext(change, default, null);
        foreach (var step in change.Steps) step.Apply(context);
    }
}
