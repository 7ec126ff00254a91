using GpuVirt.Core;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class VgpuPlannerTests
{
    private const string Uuid = "30820a6f-b1a5-4503-91ca-0c10ba58692a";

    private static (VgpuManager Manager, VgpuPlanner Planner) Open(TempRoot root)
    {
        var manager = new VgpuManager(new VgpuInventory(new HostRoot(root.Path)), new ProcessRunner()) { Timeout = TimeSpan.FromSeconds(10) };
        return (manager, manager.Planner());
    }

    private static string[] Tree(TempRoot root) =>
        // Links are not followed (sysfs links loop back), and names, sizes and times stand for contents: the stand-in
        // drivers' files are FIFOs, which a read would wait on.
        Directory.EnumerateFileSystemEntries(root.Path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
            .Where(p => !p.Contains("/proc/"))
            .Select(p => new FileInfo(p)).Select(f => f.FullName + ":" + (f.Exists ? f.Length + "@" + f.LastWriteTimeUtc.Ticks : "dir"))
            .OrderBy(p => p, StringComparer.Ordinal).ToArray();

    [Fact]
    public void A_persistent_create_is_one_plan_of_readable_writes_that_reads_the_host_and_writes_nothing()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var (manager, planner) = Open(root);
        var type = manager.Inventory.Types("0000:01:00.0")!.Single(t => t.Id == "nvidia-63");
        var before = Tree(root);

        var plan = planner.PlanCreate(type, Uuid.ToUpperInvariant(), persistent: true,
            new MdevOptions { StartMode = MdevDefinitions.StartManual, Attributes = new[] { new KeyValuePair<string, string>("x", "1") } });

        Assert.Equal(ChangeKind.VgpuCreate, plan.Kind);
        Assert.Equal(new[] { Uuid }, plan.Mdevs);
        Assert.Equal(new[]
        {
            $"write {Uuid} to /sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63/create",
            $"write 1 to /sys/bus/mdev/devices/{Uuid}/x",
            $"write the mdevctl definition /etc/mdevctl.d/0000:01:00.0/{Uuid} (type nvidia-63, start manual, attributes x=1)",
        }, plan.Steps.Select(s => s.Description));
        Assert.All(plan.Steps, s => Assert.True(s.CanUndo));
        Assert.Empty(plan.Refusals);
        Assert.Contains(plan.Preconditions, p => p.Description == $"no mediated device {Uuid} exists");
        Assert.Equal(before, Tree(root));
    }

    [Fact]
    public void Applied_it_is_journaled_with_its_inverse_and_the_removal_keeps_the_definition_bytes_stand_in_mdev_driver()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        using var driver = new MdevDriverStandIn(root.Path);
        var (manager, planner) = Open(root);
        var host = new HostRoot(root.Path);
        manager.Recorder = new ChangeRecorder(host, null, "New-VgpuDevice", "New-VgpuDevice 01:00.0 nvidia-63 -Persistent");
        var type = manager.Inventory.Types("0000:01:00.0")!.Single(t => t.Id == "nvidia-63");
        var device = manager.Apply(planner.PlanCreate(type, Uuid, persistent: true, null));
        Assert.True(device.Active);
        var file = Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0", Uuid);
        var bytes = File.ReadAllBytes(file);

        var remove = planner.PlanRemove(manager.Inventory.Devices().Single(), persistent: true, force: false);
        Assert.Equal(ChangeKind.VgpuRemove, remove.Kind);
        Assert.Equal(new[] { $"write 1 to /sys/bus/mdev/devices/{Uuid}/remove", $"remove the mdevctl definition /etc/mdevctl.d/0000:01:00.0/{Uuid}" },
            remove.Steps.Select(s => s.Description));
        var removed = manager.Apply(remove);
        Assert.Equal(Uuid, removed.Uuid);
        Assert.False(File.Exists(file));

        var records = new ChangeJournal(host).Read();
        Assert.Equal(2, records.Count);
        var create = Assert.Single(records[0].Inverse);
        Assert.Equal((InverseKind.RemoveVgpu, Uuid, "nvidia-63", true), (create.Kind, create.Uuid, create.TypeId, create.Persistent));
        var back = Assert.Single(records[1].Inverse);
        Assert.Equal((InverseKind.CreateVgpu, Uuid, "0000:01:00.0", true), (back.Kind, back.Uuid, back.Parent, back.Active));
        Assert.Equal(bytes, Convert.FromBase64String(Assert.Single(back.Files!).Content!));

        // The inverse, planned and applied like any change: the device and its definition, byte for byte.
        var undo = planner.PlanInverse(back, force: false);
        Assert.Null(new PlanExecutor().Apply(undo).Error);
        Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.True(manager.Inventory.FindLive(Uuid)!.Active);
    }

    [Fact]
    public void A_held_mdev_is_refused_VgpuDeviceBusy_naming_pid_command_and_guest_and_Force_does_not_lift_it()
    {
        using var root = new TempRoot();
        SampleHosts.InUse(root.Path).Build();
        var (manager, planner) = Open(root);
        var device = manager.Inventory.FindLive(SampleHosts.InUseMdev)!;
        var before = Tree(root);

        var plan = planner.PlanRemove(device, persistent: false, force: true);

        var refusal = Assert.Single(plan.Blocking);
        Assert.Equal(ErrorIds.VgpuDeviceBusy, refusal.Error.ErrorId);
        Assert.False(refusal.Overridable);
        Assert.Contains("pid 4343 (qemu-system-x86, guest 'vm,two')", refusal.Error.Message);
        var outcome = new PlanExecutor().Apply((ChangePlan)plan);
        Assert.Equal(ErrorIds.VgpuDeviceBusy, outcome.Error!.ErrorId);
        Assert.Empty(outcome.Applied);
        Assert.Equal(before, Tree(root));
    }

    [Fact]
    public void A_UUID_taken_after_the_plan_was_made_is_refused_under_the_lock_with_VgpuDeviceExists_stand_in_mdev_driver()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        using var driver = new MdevDriverStandIn(root.Path);
        var (manager, planner) = Open(root);
        var type = manager.Inventory.Types("0000:01:00.0")!.Single(t => t.Id == "nvidia-63");
        var first = planner.PlanCreate(type, Uuid, persistent: false, null);
        var second = planner.PlanCreate(type, Uuid, persistent: false, null);
        Assert.Empty(second.Refusals);
        manager.Apply(first);

        var outcome = new PlanExecutor().Apply((ChangePlan)second);

        Assert.Equal(ErrorIds.VgpuDeviceExists, outcome.Error!.ErrorId);
        Assert.Empty(outcome.Applied);
        Assert.Equal(new[] { $"create nvidia-63 {Uuid}" }, driver.Log);
        Assert.Equal(ErrorIds.VgpuDeviceExists, Assert.Single(planner.PlanCreate(type, Uuid, persistent: false, null).Refusals).Error.ErrorId);
    }
}
