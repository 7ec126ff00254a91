using GpuVirt.Core;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>The core side of the vGPU field defects (issue items 7, 10, 11, 12 and 15), on kernel-shaped trees.</summary>
public class FieldVgpuTests
{
    private const string Uuid = "9f579710-6ffc-4201-987a-4ffa0fb1f3a5";

    private static VgpuManager Open(TempRoot root) =>
        new VgpuManager(new VgpuInventory(new HostRoot(root.Path)), new ProcessRunner()) { Timeout = TimeSpan.FromSeconds(10) };

    private static HostTreeBuilder SriovWithType(TempRoot root, string vf, int type)
    {
        var b = SampleHosts.SriovVgpu(root.Path);
        b.Devices.Single(d => d.Address == vf).CurrentVgpuType = type;
        return b;
    }

    [Fact]
    public void Item7_a_vGPU_function_on_nvidia_with_a_type_is_viable_and_one_without_is_told_to_get_a_type()
    {
        using var root = new TempRoot();
        SriovWithType(root, "0000:41:00.4", 1161).Build();
        var pci = new PciInventory(new HostRoot(root.Path));

        var running = IommuGroups.TryRead(pci, 21)!;
        Assert.True(running.IsViable);
        Assert.Empty(running.Blockers);

        var idle = IommuGroups.TryRead(pci, 22)!;
        var blocker = Assert.Single(idle.BlockerList);
        Assert.True(blocker.VgpuFunction);
        Assert.DoesNotContain("vfio-pci or pci-stub", blocker.Reason);

        // The P4 on nvidia is no vGPU function: it blocks as any host driver does.
        Assert.False(Assert.Single(IommuGroups.TryRead(pci, 14)!.BlockerList).VgpuFunction);
    }

    [Fact]
    public void Item10_the_checks_that_apply_follow_the_vGPU_parents()
    {
        using var gvt = new TempRoot();
        var b = new HostTreeBuilder(gvt.Path);
        b.Add("0000:00:00.0", 0x8086, 0x0c00, 0x060000, d => d.IommuGroup = 0);
        SampleHosts.AddIntelGvtG(b).Build();
        Assert.Equal((false, true), VgpuHostChecks.Needs(new VgpuInventory(new HostRoot(gvt.Path))));

        using var amd = new TempRoot();
        var a = new HostTreeBuilder(amd.Path);
        a.Add("0000:03:00.0", 0x1002, 0x73a3, 0x030000, d => { d.IommuGroup = 20; d.Driver = "amdgpu"; });
        a.Build();
        Assert.Equal((false, false), VgpuHostChecks.Needs(new VgpuInventory(new HostRoot(amd.Path))));
        var checks = VgpuHostChecks.Run(new VgpuInventory(new HostRoot(amd.Path)), new ProcessRunner());
        Assert.Equal(new[] { "vGPU parent devices present" }, checks.Select(c => c.Name));

        using var sriov = new TempRoot();
        SampleHosts.SriovVgpu(sriov.Path).Build();
        Assert.Equal((true, false), VgpuHostChecks.Needs(new VgpuInventory(new HostRoot(sriov.Path))));
    }

    [Fact]
    public void Item11_N_devices_that_fit_when_planned_but_not_under_the_lock_are_refused_before_any_write_stand_in_mdev_driver()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        using var driver = new MdevDriverStandIn(root.Path);
        var manager = Open(root);
        var type = manager.Inventory.Types("0000:01:00.0")!.Single(t => t.Id == "nvidia-65"); // available_instances 2
        var planner = manager.Planner();

        var two = planner.PlanCreateMany(type, 2, persistent: false, null);
        Assert.Empty(two.Refusals);
        Assert.Equal(2, two.Steps.Count);
        Assert.Equal(2, two.Mdevs.Count);
        var three = planner.PlanCreateMany(type, 3, persistent: false, null);
        Assert.Equal(ErrorIds.NoVgpuInstanceAvailable, Assert.Single(three.Blocking).Error.ErrorId);

        // Another command takes one instance meanwhile: the whole plan is refused under the lock, nothing written.
        var other = manager.Create(type, null, persistent: false);
        var outcome = new PlanExecutor().Apply((ChangePlan)two);

        Assert.Equal(ErrorIds.NoVgpuInstanceAvailable, outcome.Error!.ErrorId);
        Assert.Empty(outcome.Applied);
        Assert.Equal(new[] { $"create nvidia-65 {other.Uuid}" }, driver.Log);
    }

    [Fact]
    public void Item12_an_NVIDIA_mdev_GPU_running_another_type_offers_none_and_names_it()
    {
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        b.AddMdev(new FixtureMdevDevice("6f0e3a4c-2b1d-4e5f-8a9b-0c1d2e3f4a5b", "0000:01:00.0", "nvidia-63", 100));
        b.Build();
        var inventory = new VgpuInventory(new HostRoot(root.Path));

        var other = Assert.Single(VgpuPlacementPlanner.Candidates(inventory, "nvidia-64"));
        Assert.Equal(0, other.Available);
        Assert.StartsWith("it runs nvidia-63 (GRID P4-1Q): ", other.Reason);
        Assert.True(Assert.Single(VgpuPlacementPlanner.Candidates(inventory, "nvidia-63")).Available > 0);
    }

    [Fact]
    public void Item12_an_SR_IOV_GPU_running_another_type_offers_none_though_its_free_functions_list_the_type()
    {
        using var root = new TempRoot();
        SriovWithType(root, "0000:41:00.4", 1161).Build();
        var inventory = new VgpuInventory(new HostRoot(root.Path));

        var l40s = VgpuPlacementPlanner.Candidates(inventory, "NVIDIA L40S-4Q").Single(c => c.Parent == "0000:41:00.0");
        Assert.Equal(0, l40s.Available);
        Assert.Empty(l40s.VirtualFunctions);
        Assert.StartsWith("it runs 1161 (NVIDIA L40S-2Q) on 1 of its virtual functions: ", l40s.Reason);
    }

    [Fact]
    public void Item15_one_UUID_is_defined_under_two_parents_and_only_a_different_definition_under_the_same_parent_conflicts()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var manager = Open(root);
        var attrs = new[] { KeyValuePair.Create("assign_adapter", "5"), KeyValuePair.Create("assign_adapter", "6") };

        manager.Apply(manager.Planner().PlanDefine(new MdevDefinition("0000:00:02.0", Uuid, "vfio_ap-passthrough", "manual", attrs)));
        var second = manager.Planner().PlanDefine(new MdevDefinition("0000:00:03.0", Uuid, "vfio_ap-passthrough", "manual", attrs));
        Assert.Empty(second.Refusals);
        manager.Apply(second);
        manager.Inventory.Definitions.Refresh();
        Assert.Equal(new[] { "0000:00:02.0", "0000:00:03.0" }, manager.Inventory.Definitions.Find(Uuid).Select(d => d.Parent));
        var device = manager.Inventory.Devices().First(d => d.Uuid == Uuid);
        Assert.Equal(new[] { "assign_adapter=5", "assign_adapter=6" }, device.Attributes);

        var differs = manager.Planner().PlanDefine(new MdevDefinition("0000:00:03.0", Uuid, "vfio_ap-passthrough", "auto", attrs));
        var refusal = Assert.Single(differs.Blocking);
        Assert.Equal(ErrorIds.VgpuDefinitionConflict, refusal.Error.ErrorId);
        Assert.Contains("already defined on 0000:00:03.0 with start manual (the document has auto)", refusal.Error.Message);
    }

    [Fact]
    public void Item15_the_single_device_form_is_the_definition_body()
    {
        var definition = new MdevDefinition("0000:00:02.0", Uuid, "vfio_ap-passthrough", "manual",
            new[] { KeyValuePair.Create("assign_adapter", "5"), KeyValuePair.Create("assign_adapter", "6") });
        Assert.Equal("{\n  \"mdev_type\": \"vfio_ap-passthrough\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \"assign_adapter\": \"5\"\n    },\n    {\n      \"assign_adapter\": \"6\"\n    }\n  ]\n}",
            MdevDefinitions.ToJson(definition));
    }
}
