using GpuVirt.Core;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>
/// Enable-VgpuSriov's planner on the L40S / H100 sample host (the L40S with four virtual functions enabled, the H100
/// with none), with the stand-in for NVIDIA's host driver answering the writes where a test applies a plan.
/// </summary>
public class SriovPlannerTests
{
    private const string H100 = "0000:c1:00.0";
    private const string L40S = "0000:41:00.0";

    private static SriovPlanner Planner(TempRoot root) =>
        new(new ChangeHost(new HostRoot(root.Path)), new ProcessRunner()) { Timeout = TimeSpan.FromSeconds(10) };

    private static string NumVfs(TempRoot root, string pf) => File.ReadAllText(Path.Combine(root.Path, "sys/bus/pci/devices", pf, "sriov_numvfs")).Trim();

    private static int Enabled(TempRoot root, string pf) => new PciInventory(new HostRoot(root.Path)).Find(PciAddress.Parse(pf))!.VirtualFunctions.Count;

    private static InverseStep Disable(string pf, int expected) =>
        new() { Kind = InverseKind.SetSriovFunctions, Description = "disable", Address = pf, VirtualFunctions = 0, ExpectedVirtualFunctions = expected };

    [Fact]
    public void An_enable_is_one_plan_of_readable_steps_each_with_its_inverse_that_writes_nothing()
    {
        using var root = new TempRoot();
        SampleHosts.SriovVgpu(root.Path).Build();

        var plan = Planner(root).PlanEnable(PciAddress.Parse(H100), 4);

        Assert.Equal(ChangeKind.SriovEnable, plan.Kind);
        Assert.Equal("Enable 4 SR-IOV virtual functions for NVIDIA vGPU", plan.Action);
        Assert.StartsWith(H100 + " (", plan.Target);
        Assert.Equal(new[]
        {
            $"write 4 to /sys/bus/pci/devices/{H100}/sriov_numvfs",
            "wait (up to 10 s) for the virtual functions and their nvidia/creatable_vgpu_types",
        }, plan.Steps.Select(s => s.Description));
        Assert.All(plan.Steps, s => Assert.True(s.CanUndo));
        Assert.Equal($"write 0 to /sys/bus/pci/devices/{H100}/sriov_numvfs", plan.Steps[0].UndoDescription);
        Assert.Empty(plan.Refusals);
        Assert.Contains(plan.Preconditions, p => p.Description == $"{H100} has no virtual function enabled" && p.ErrorId == ErrorIds.VgpuSriovAlreadyEnabled);
        Assert.NotNull(plan.Journal);
        Assert.Equal("0", NumVfs(root, H100));
    }

    [Fact]
    public void With_sriov_manage_installed_and_no_count_the_plan_runs_it_and_its_inverse_is_its_disable()
    {
        using var root = new TempRoot();
        SampleHosts.SriovVgpu(root.Path).Build();
        StandIns.Install(root.Path, "sriov-manage", 0, null, null, "/usr/lib/nvidia");

        var plan = Planner(root).PlanEnable(PciAddress.Parse(H100), null);

        Assert.Equal("Enable 32 SR-IOV virtual functions for NVIDIA vGPU", plan.Action);
        Assert.Equal($"run /usr/lib/nvidia/sriov-manage -e {H100}", plan.Steps[0].Description);
        Assert.Equal($"run /usr/lib/nvidia/sriov-manage -d {H100}", plan.Steps[0].UndoDescription);
        Assert.Empty(StandIns.Calls(root.Path));
    }

    [Fact]
    public void Functions_enabled_already_are_nothing_to_do_and_another_count_or_what_is_no_SR_IOV_PF_is_refused()
    {
        using var root = new TempRoot();
        SampleHosts.SriovVgpu(root.Path).Build();
        var planner = Planner(root);

        var same = planner.PlanEnable(PciAddress.Parse(L40S), null);
        Assert.False(same.HasChanges);
        Assert.Equal($"{L40S}: 4 virtual functions are enabled already.", same.NothingToDo);
        Assert.Equal(ErrorIds.VgpuSriovAlreadyEnabled, Assert.Throws<GpuVirtException>(() => planner.PlanEnable(PciAddress.Parse(L40S), 2)).ErrorId);
        Assert.Contains("virtual function of " + L40S, Assert.Throws<GpuVirtException>(() => planner.PlanEnable(PciAddress.Parse("0000:41:00.5"), null)).Message);
        Assert.Equal(ErrorIds.VgpuSriovNotSupported, Assert.Throws<GpuVirtException>(() => planner.PlanEnable(PciAddress.Parse("0000:00:19.0"), null)).ErrorId);
        Assert.Contains("at most 32", Assert.Throws<GpuVirtException>(() => planner.PlanEnable(PciAddress.Parse(H100), 33)).Message);
    }

    [Fact]
    public void Applied_it_is_journaled_with_the_count_back_to_0_and_the_inverse_plan_disables_the_functions_stand_in_driver()
    {
        using var root = new TempRoot();
        var builder = SampleHosts.SriovVgpu(root.Path);
        builder.Build();
        using var driver = SriovVgpuDriverStandIn.ForSample(builder);
        var host = new HostRoot(root.Path);
        var planner = Planner(root);
        var executor = new PlanExecutor();
        executor.Recorders.Add(new JournalPlanRecorder(new ChangeRecorder(host, null, "Enable-VgpuSriov", "Enable-VgpuSriov c1:00.0 -Count 4")));

        var pf = executor.Apply(planner.PlanEnable(PciAddress.Parse(H100), 4));

        Assert.Equal(4, pf.VirtualFunctions.Count);
        var record = Assert.Single(new ChangeJournal(host).Read());
        Assert.Equal(("Enable-VgpuSriov", H100, "Enable 4 SR-IOV virtual functions"), (record.Command, record.Target, record.Action));
        Assert.Equal(("0", "4"), (record.Details[0].Before, record.Details[0].After));
        var inverse = Assert.Single(record.Inverse);
        Assert.Equal((InverseKind.SetSriovFunctions, H100, 0, 4, (string?)null), (inverse.Kind, inverse.Address, inverse.VirtualFunctions, inverse.ExpectedVirtualFunctions, inverse.Program));

        var disable = planner.PlanInverse(inverse, force: false);
        Assert.Equal(ChangeKind.SriovDisable, disable.Kind);
        Assert.Equal(pf.VirtualFunctions, disable.Devices.Select(d => d.ToString()));
        Assert.Equal(new[] { $"write 0 to /sys/bus/pci/devices/{H100}/sriov_numvfs", "wait (up to 10 s) for the virtual functions to go" },
            disable.Steps.Select(s => s.Description));
        Assert.Equal($"write 4 to /sys/bus/pci/devices/{H100}/sriov_numvfs", disable.Steps[0].UndoDescription);
        Assert.Empty(disable.Refusals);
        Assert.Null(new PlanExecutor().Apply((ChangePlan)disable).Error);
        Assert.Equal(0, Enabled(root, H100));
        Assert.Equal("0", NumVfs(root, H100));
        Assert.Equal(new[] { $"enable {H100} 4", $"disable {H100}" }, driver.Log);
        Assert.False(planner.PlanInverse(inverse, force: false).HasChanges);
    }

    [Fact]
    public void The_disable_is_refused_while_a_function_carries_a_vGPU_even_with_force_and_the_executor_changes_nothing()
    {
        using var root = new TempRoot();
        SampleHosts.SriovVgpu(root.Path).Build();
        File.WriteAllText(Path.Combine(root.Path, "sys/bus/pci/devices/0000:41:00.5/nvidia/current_vgpu_type"), "1168\n");

        var plan = Planner(root).PlanInverse(Disable(L40S, 4), force: true);

        var refusal = Assert.Single(plan.Refusals);
        Assert.Equal(ErrorIds.VgpuParentInUse, refusal.Error.ErrorId);
        Assert.False(refusal.Overridable);
        Assert.Contains($"{L40S} has live vGPUs: virtual function 0000:41:00.5 (vGPU type 1168", refusal.Error.Message);
        Assert.Contains("Disabling its virtual functions would destroy them.", refusal.Error.Message);
        Assert.Equal(ErrorIds.VgpuParentInUse, new PlanExecutor().Apply((ChangePlan)plan).Error!.ErrorId);
        Assert.Equal("4", NumVfs(root, L40S));
    }

    [Fact]
    public void The_disable_is_refused_while_a_process_holds_a_function_and_under_the_lock_when_the_count_changed()
    {
        using var root = new TempRoot();
        var builder = SampleHosts.SriovVgpu(root.Path, h100VfsEnabled: true);
        builder.Usage.Process(4242, "qemu-system-x86", new[] { "/usr/bin/qemu-system-x86_64", "-name", "guest=vm1,debug-threads=on" }, "/dev/vfio/42");
        builder.Build();
        var planner = Planner(root);

        var held = planner.PlanInverse(Disable(H100, 4), force: true);
        var refusal = Assert.Single(held.Refusals);
        Assert.Equal(ErrorIds.DeviceInUse, refusal.Error.ErrorId);
        Assert.False(refusal.Overridable);
        Assert.Contains("pid 4242 (qemu-system-x86, guest 'vm1') holds /dev/vfio/42", refusal.Error.Message);

        // The L40S: nothing holds it; its count changes between the plan and the lock.
        var plan = planner.PlanInverse(Disable(L40S, 4), force: false);
        Assert.Empty(plan.Refusals);
        File.WriteAllText(Path.Combine(root.Path, "sys/bus/pci/devices", L40S, "sriov_numvfs"), "3\n");
        File.Delete(Path.Combine(root.Path, "sys/bus/pci/devices", L40S, "virtfn3"));
        var outcome = new PlanExecutor().Apply((ChangePlan)plan);
        Assert.Equal(ErrorIds.HostChangedSincePlan, outcome.Error!.ErrorId);
        Assert.Contains($"{L40S} has 3 virtual functions enabled now, not 4", outcome.Error.Message);
        Assert.Equal("3", NumVfs(root, L40S));
    }

    [Fact]
    public void The_disable_is_refused_without_force_while_a_guest_definition_references_a_function_through_real_virsh()
    {
        using var root = new TempRoot();
        SampleHosts.SriovVgpu(root.Path).Build();
        var uri = LibvirtFixture.TestDriver()
            .AddGuest("vm2", "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x41' slot='0x00' function='0x5'/></source></hostdev>")
            .Write(Path.Combine(root.Path, "node.xml"));
        var runner = new ProcessRunner();
        var planner = new SriovPlanner(new ChangeHost(new HostRoot(root.Path), uri), runner, () => new Virsh(runner, uri));

        var plan = planner.PlanInverse(Disable(L40S, 4), force: false);
        var refusal = Assert.Single(plan.Refusals);
        Assert.Equal(ErrorIds.DeviceReferencedByGuest, refusal.Error.ErrorId);
        Assert.True(refusal.Overridable);
        Assert.Contains("Virtual function 0000:41:00.5 is referenced by the definition of guest 'vm2': Disabling it would leave", refusal.Error.Message);
        Assert.Single(plan.Blocking);

        var forced = planner.PlanInverse(Disable(L40S, 4), force: true);
        Assert.Empty(forced.Blocking);
        Assert.Single(forced.Overridden);
    }
}
