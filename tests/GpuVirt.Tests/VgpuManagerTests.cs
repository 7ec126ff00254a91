using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class VgpuManagerTests
{
    private const string Uuid = "30820a6f-b1a5-4503-91ca-0c10ba58692a";

    private static (TempRoot Root, HostTreeBuilder Builder, VgpuManager Manager, List<string> Log) Seed(Action<HostTreeBuilder>? configure = null)
    {
        var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        configure?.Invoke(b);
        b.Build();
        var log = new List<string>();
        var manager = new VgpuManager(new VgpuInventory(new HostRoot(root.Path)), new ProcessRunner(log.Add), log.Add)
        {
            Timeout = TimeSpan.FromMilliseconds(300),
        };
        return (root, b, manager, log);
    }

    private static VgpuType Type(VgpuManager m, string id) => m.Inventory.Types("0000:01:00.0")!.Single(t => t.Id == id);

    private static string TypeFile(TempRoot root, string id, string file) =>
        Path.Combine(root.Path, "sys/class/mdev_bus/0000:01:00.0/mdev_supported_types", id, file);

    [Fact]
    public void Writes_the_UUID_to_create_and_reports_a_device_that_never_appears_leaving_nothing_defined()
    {
        var (root, _, m, log) = Seed();
        using var _root = root;
        var e = Assert.Throws<GpuVirtException>(() => m.Create(Type(m, "nvidia-63"), Uuid.ToUpperInvariant(), persistent: true));
        Assert.Equal(ErrorIds.VgpuDeviceNotCreated, e.ErrorId);
        Assert.Contains("/sys/bus/mdev/devices/" + Uuid, e.Message);
        Assert.Equal(Uuid + "\n", File.ReadAllText(TypeFile(root, "nvidia-63", "create")));
        Assert.Contains($"Writing {Uuid} to /sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63/create", log);
        Assert.False(Directory.Exists(Path.Combine(root.Path, "etc/mdevctl.d")));
    }

    [Fact]
    public void Creates_a_device_and_its_definition_when_the_driver_answers_stand_in_mdev_driver()
    {
        var (root, _, m, _) = Seed();
        using var _root = root;
        using var driver = new MdevDriverStandIn(root.Path);
        m.Timeout = TimeSpan.FromSeconds(10);
        var device = m.Create(Type(m, "nvidia-63"), Uuid, persistent: true);

        Assert.Equal(Uuid, device.Uuid);
        Assert.Equal("0000:01:00.0", device.Parent);
        Assert.Equal("nvidia-63", device.TypeId);
        Assert.Equal("GRID P4-1Q", device.TypeName);
        Assert.True(device.Active);
        Assert.True(device.Persistent);
        Assert.Equal(100, device.IommuGroup);
        Assert.Equal(new[] { "create nvidia-63 " + Uuid }, driver.Log);
        Assert.Equal("7", File.ReadAllText(TypeFile(root, "nvidia-63", "available_instances")).Trim());
        Assert.Equal(HostTreeBuilder.MdevctlJson("nvidia-63", "auto"), File.ReadAllText(Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0", Uuid)));

        var generated = m.Create(Type(m, "nvidia-63"), null, persistent: false);
        Assert.True(Guid.TryParseExact(generated.Uuid, "D", out _));
        Assert.False(generated.Persistent);
        Assert.Equal(2, m.Inventory.Devices().Count);
    }

    [Fact]
    public void Refuses_when_no_instance_is_free_and_writes_nothing()
    {
        var (root, _, m, _) = Seed(b => b.AddMdev(new FixtureMdevDevice(Uuid, "0000:01:00.0", "nvidia-66", 30)));
        using var _root = root;
        File.WriteAllText(TypeFile(root, "nvidia-66", "available_instances"), "0\n");
        var e = Assert.Throws<GpuVirtException>(() => m.Create(Type(m, "nvidia-66"), null, persistent: true));
        Assert.Equal(ErrorIds.NoVgpuInstanceAvailable, e.ErrorId);
        Assert.Equal(ErrorKind.ResourceUnavailable, e.Kind);
        Assert.Contains("'nvidia-66' (GRID P4-8Q) is available on 0000:01:00.0: available_instances is 0 of 1 (max_instance); 1 device(s) of this type exist: " + Uuid, e.Message);
        Assert.Equal(string.Empty, File.ReadAllText(TypeFile(root, "nvidia-66", "create")));
    }

    [Fact]
    public void Turns_the_kernels_ENOSPC_into_NoVgpuInstanceAvailable()
    {
        var (root, _, m, _) = Seed();
        using var _root = root;
        // /dev/full answers every write with ENOSPC, as a GPU whose shared capacity ran out does.
        var create = TypeFile(root, "nvidia-64", "create");
        File.Delete(create);
        File.CreateSymbolicLink(create, "/dev/full");
        var e = Assert.Throws<GpuVirtException>(() => m.Create(Type(m, "nvidia-64"), Uuid, persistent: true));
        Assert.Equal(ErrorIds.NoVgpuInstanceAvailable, e.ErrorId);
        Assert.Contains("the kernel answered 'No space left on device' (errno 28)", e.Message);
        Assert.False(Directory.Exists(Path.Combine(root.Path, "etc/mdevctl.d")));
    }

    [Theory]
    [InlineData(Errno.ENOSPC, "NoVgpuInstanceAvailable", "No space left on device")]
    [InlineData(Errno.EUSERS, "NoVgpuInstanceAvailable", "Too many users")]
    [InlineData(Errno.EEXIST, "VgpuDeviceExists", "File exists")]
    [InlineData(Errno.EINVAL, "VgpuCreateFailed", "rejected the UUID or the type")]
    [InlineData(Errno.EACCES, "RootRequired", "requires root")]
    [InlineData(Errno.EIO, "VgpuCreateFailed", "Input/output error")]
    public void Maps_each_errno_of_a_create_to_its_error(int errno, string errorId, string text)
    {
        var (root, _, m, _) = Seed();
        using var _root = root;
        var type = Type(m, "nvidia-63");
        var e = m.CreateFailure(type, type.Directory!, Uuid, "/sys/class/mdev_bus/0000:01:00.0/mdev_supported_types/nvidia-63/create", errno);
        if (errorId == ErrorIds.RootRequired && LibC.geteuid() == 0)
        {
            // Refused as root: running as root would not help, and the error says what refuses root instead.
            (errorId, text) = (ErrorIds.PermissionDeniedAsRoot, "though pwsh runs as root");
        }
        Assert.Equal(errorId, e.ErrorId);
        Assert.Contains(text, e.Message);
    }

    [Fact]
    public void Rejects_a_malformed_UUID_a_UUID_in_use_and_a_UUID_defined_otherwise()
    {
        var (root, _, m, _) = Seed(b =>
        {
            b.AddMdev(new FixtureMdevDevice(Uuid, "0000:01:00.0", "nvidia-63", 30));
            b.AddMdevDefinition("0000:01:00.0", "ba26a3e2-8e1e-4f39-9de7-b26bd210268a", "nvidia-65");
        });
        using var _root = root;
        Assert.Equal(ErrorIds.InvalidMdevUuid, Assert.Throws<GpuVirtException>(() => m.Create(Type(m, "nvidia-63"), "30820a6f", false)).ErrorId);
        Assert.Equal(ErrorIds.VgpuDeviceExists, Assert.Throws<GpuVirtException>(() => m.Create(Type(m, "nvidia-64"), Uuid, false)).ErrorId);
        var conflict = Assert.Throws<GpuVirtException>(() => m.Create(Type(m, "nvidia-64"), "ba26a3e2-8e1e-4f39-9de7-b26bd210268a", true));
        Assert.Equal(ErrorIds.VgpuDefinitionConflict, conflict.ErrorId);
        Assert.Contains("type 'nvidia-65'", conflict.Message);
        Assert.All(new[] { "nvidia-63", "nvidia-64" }, id => Assert.Equal(string.Empty, File.ReadAllText(TypeFile(root, id, "create"))));
    }

    [Fact]
    public async Task Two_creators_racing_for_the_last_instance_one_wins_one_is_refused_stand_in_mdev_driver()
    {
        var (root, _, m, _) = Seed();
        using var _root = root;
        using var driver = new MdevDriverStandIn(root.Path);
        var type = Type(m, "nvidia-66");
        var first = new VgpuManager(new VgpuInventory(new HostRoot(root.Path)), new ProcessRunner()) { Timeout = TimeSpan.FromSeconds(10) };
        var second = new VgpuManager(new VgpuInventory(new HostRoot(root.Path)), new ProcessRunner()) { Timeout = TimeSpan.FromSeconds(10) };
        using var held = FixtureLock.Hold(root.Path);
        var tasks = new[] { first, second }.Select(x => Task.Run(() =>
        {
            try
            {
                return (object)x.Create(type, null, persistent: true);
            }
            catch (GpuVirtException e)
            {
                return e;
            }
        })).ToArray();
        Assert.True(held.WaitForWaiters(2, TimeSpan.FromSeconds(30)), "both creators should wait on the lock");
        held.Dispose();
        var results = (await Task.WhenAll(tasks)).ToList();
        Assert.Single(results.OfType<VgpuDevice>());
        var refused = Assert.IsType<GpuVirtException>(Assert.Single(results.OfType<GpuVirtException>()));
        Assert.Equal(ErrorIds.NoVgpuInstanceAvailable, refused.ErrorId);
        Assert.Single(driver.Log);
        Assert.Single(Directory.GetFileSystemEntries(Path.Combine(root.Path, "sys/bus/mdev/devices")));
        Assert.Single(Directory.GetFiles(Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0")));
    }

    [Fact]
    public void Removes_a_live_device_and_with_persistent_its_definition_stand_in_mdev_driver()
    {
        var (root, _, m, log) = Seed(b =>
        {
            b.AddMdev(new FixtureMdevDevice(Uuid, "0000:01:00.0", "nvidia-63", 30));
            b.AddMdevDefinition("0000:01:00.0", Uuid, "nvidia-63");
        });
        using var _root = root;
        using var driver = new MdevDriverStandIn(root.Path);
        m.Timeout = TimeSpan.FromSeconds(10);
        m.Remove(m.Inventory.Devices().Single(), persistent: true, ownerOf: null);
        Assert.Equal(new[] { "remove " + Uuid }, driver.Log);
        Assert.Empty(m.Inventory.Devices());
        Assert.Contains($"Writing 1 to /sys/bus/mdev/devices/{Uuid}/remove", log);
        Assert.Contains($"Removing /etc/mdevctl.d/0000:01:00.0/{Uuid}", log);
    }

    [Fact]
    public void A_device_that_stays_keeps_its_definition_and_a_stopped_one_needs_persistent()
    {
        var (root, _, m, _) = Seed(b =>
        {
            b.AddMdev(new FixtureMdevDevice(Uuid, "0000:01:00.0", "nvidia-63", 30));
            b.AddMdevDefinition("0000:01:00.0", Uuid, "nvidia-63");
            b.AddMdevDefinition("0000:01:00.0", "ba26a3e2-8e1e-4f39-9de7-b26bd210268a", "nvidia-65");
        });
        using var _root = root;
        var devices = m.Inventory.Devices();
        var e = Assert.Throws<GpuVirtException>(() => m.Remove(devices[0], persistent: true, ownerOf: null));
        Assert.Equal(ErrorIds.VgpuDeviceNotRemoved, e.ErrorId);
        Assert.Equal("1\n", File.ReadAllText(Path.Combine(root.Path, "sys/bus/mdev/devices", Uuid, "remove")));
        Assert.True(File.Exists(Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0", Uuid)));

        var stopped = devices[1];
        Assert.Equal(ErrorIds.VgpuDeviceNotActive, Assert.Throws<GpuVirtException>(() => m.Remove(stopped, persistent: false, ownerOf: null)).ErrorId);
        m.Remove(stopped, persistent: true, ownerOf: null);
        Assert.False(File.Exists(Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0/ba26a3e2-8e1e-4f39-9de7-b26bd210268a")));
    }

    [Fact]
    public void A_busy_device_names_the_guest_that_holds_it()
    {
        var device = new VgpuDevice { Uuid = Uuid, Parent = "0000:01:00.0", TypeId = "nvidia-63" };
        var e = VgpuManager.Busy(device, "/sys/bus/mdev/devices/" + Uuid + "/remove", d => d.Uuid == Uuid ? "vm1" : null);
        Assert.Equal(ErrorIds.VgpuDeviceBusy, e.ErrorId);
        Assert.Equal(ErrorKind.ResourceBusy, e.Kind);
        Assert.Contains("Device or resource busy", e.Message);
        Assert.Contains("guest 'vm1' holds it", e.Message);
        Assert.Equal("vm1", e.Target);
        var unknown = VgpuManager.Busy(device, "x", _ => throw new GpuVirtException(ErrorIds.ProgramNotFound, ErrorKind.NotInstalled, "no virsh"));
        Assert.Contains("a running guest", unknown.Message);
    }

    [Fact]
    public void Finds_the_guest_whose_definition_holds_a_vGPU_through_real_virsh()
    {
        using var root = new TempRoot();
        var uri = LibvirtFixture.TestDriver()
            .AddGuest("vm1", $"<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'><source><address uuid='{Uuid}'/></source></hostdev>")
            .AddGuest("vm2", "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x5'/></source></hostdev>")
            .Write(Path.Combine(root.Path, "node.xml"));
        var owners = VgpuManager.GuestOwners(new Virsh(new ProcessRunner(), uri));
        Assert.Equal("vm1", owners(new VgpuDevice { Uuid = Uuid }));
        Assert.Null(owners(new VgpuDevice { Uuid = "ba26a3e2-8e1e-4f39-9de7-b26bd210268a" }));
        Assert.Equal("vm2", owners(new VgpuDevice { PciAddress = PciAddress.Parse("0000:01:00.5"), Kind = VgpuKind.SriovVf }));
        var busy = VgpuManager.Busy(new VgpuDevice { Uuid = Uuid }, "/sys/bus/mdev/devices/" + Uuid + "/remove", owners);
        Assert.Contains("guest 'vm1' holds it (its definition has this UUID)", busy.Message);
    }

    [Fact]
    public void Sets_and_clears_an_SR_IOV_vGPU_type_on_a_free_virtual_function()
    {
        using var root = new TempRoot();
        var b = SampleHosts.TwoSocket(root.Path);
        b.Build();
        var log = new List<string>();
        var m = new VgpuManager(new VgpuInventory(new HostRoot(root.Path)), new ProcessRunner(), log.Add);
        var type = m.Inventory.Types("0000:01:00.0")!.Single(t => t.Name == "NVIDIA A40-2Q");

        Assert.Equal(ErrorIds.VgpuUuidNotApplicable, Assert.Throws<GpuVirtException>(() => m.Create(type, Uuid, false)).ErrorId);
        var device = m.Create(type, null, false);
        Assert.Equal(PciAddress.Parse("0000:01:00.4"), device.PciAddress);
        Assert.Null(device.Uuid);
        Assert.Equal("558", device.TypeId);
        Assert.Equal("558\n", File.ReadAllText(Path.Combine(b.DeviceDirectory("0000:01:00.4"), "nvidia/current_vgpu_type")));
        Assert.Contains("Writing 558 to /sys/bus/pci/devices/0000:01:00.4/nvidia/current_vgpu_type", log);
        Assert.Equal(PciAddress.Parse("0000:01:00.5"), m.Create(type, null, false).PciAddress);

        m.Remove(device, persistent: false, ownerOf: null);
        Assert.Equal("0\n", File.ReadAllText(Path.Combine(b.DeviceDirectory("0000:01:00.4"), "nvidia/current_vgpu_type")));
        Assert.Equal(ErrorIds.VgpuDeviceNotActive, Assert.Throws<GpuVirtException>(() => m.Remove(device, false, null)).ErrorId);

        // -Persistent records the VF for the boot unit; removing it persistently takes the record and the unit out again.
        var kept = m.Create(type, null, true);
        Assert.Equal(PciAddress.Parse("0000:01:00.4"), kept.PciAddress);
        Assert.True(kept.Persistent);
        Assert.Equal("0000:01:00.0 0000:01:00.4 558 NVIDIA A40-2Q", Assert.Single(File.ReadAllLines(Path.Combine(root.Path, "etc/gpuvirt/vgpu-profiles.conf")), l => !l.StartsWith('#')));
        Assert.Equal(SriovVgpuProfiles.UnitText, File.ReadAllText(Path.Combine(root.Path, "etc/systemd/system/gpuvirt-vgpu.service")));
        m.Remove(kept, persistent: true, ownerOf: null);
        Assert.False(File.Exists(Path.Combine(root.Path, "etc/gpuvirt/vgpu-profiles.conf")));
        Assert.False(File.Exists(Path.Combine(root.Path, "etc/systemd/system/gpuvirt-vgpu.service")));
    }

    [Fact]
    public void Sysfs_writes_return_the_kernels_errno()
    {
        using var root = new TempRoot();
        Assert.Equal(Errno.ENOSPC, SysfsWriter.Write("/dev/full", "1"));
        var ex = Assert.Throws<GpuVirtException>(() => Sysfs.WriteAttribute("/dev/full", "vfio-pci"));
        Assert.Equal(ErrorIds.SysfsWriteFailed, ex.ErrorId);
        Assert.Contains("No space left on device", ex.Message);
        Assert.Equal(Errno.ENOENT, SysfsWriter.Write(Path.Combine(root.Path, "missing"), "1"));
        Assert.Equal(Errno.EISDIR, SysfsWriter.Write(root.Path, "1"));
        var file = Path.Combine(root.Path, "attr");
        File.WriteAllText(file, "a much longer previous value\n");
        Assert.Equal(0, SysfsWriter.Write(file, "1\n"));
        Assert.Equal("1\n", File.ReadAllText(file));
        Assert.Equal("Device or resource busy", Errno.Describe(Errno.EBUSY));
        var failure = SysfsWriter.Failure("/sys/x", Errno.ENOSPC, ErrorIds.VgpuRemoveFailed, "Removing");
        Assert.Equal("Removing: writing '/sys/x' failed: No space left on device (errno 28).", failure.Message);
        Assert.Equal(LibC.geteuid() == 0 ? ErrorIds.PermissionDeniedAsRoot : ErrorIds.RootRequired, SysfsWriter.Failure("/sys/x", Errno.EACCES, ErrorIds.VgpuRemoveFailed, "Removing").ErrorId);
        Assert.Equal(ErrorIds.RootRequired, Sysfs.PermissionDenied("/sys/x", "write", asRoot: false).ErrorId);
        Assert.Contains("run pwsh as root", Sysfs.PermissionDenied("/sys/x", "write", asRoot: false).Message);
        Assert.Contains("immutable", Sysfs.PermissionDenied("/sys/x", "write", asRoot: true).Message);
    }

    [Fact]
    public void Knows_loaded_and_blacklisted_modules()
    {
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        b.LoadedModules.Add("nvidia_vgpu_vfio");
        b.AddFile("/etc/modprobe.d/nvidia-installer-disable-nouveau.conf", "# generated by nvidia-installer\nblacklist nouveau\noptions nouveau modeset=0\n");
        b.Build();
        var host = new HostRoot(root.Path);
        Assert.True(KernelModules.IsLoaded(host, "nvidia-vgpu-vfio"));
        Assert.False(KernelModules.IsLoaded(host, "nouveau"));
        Assert.Equal(new[] { "/etc/modprobe.d/nvidia-installer-disable-nouveau.conf" }, KernelModules.BlacklistedBy(host, "nouveau"));
        File.WriteAllText(Path.Combine(root.Path, "proc/cmdline"), "root=/dev/sda1 modprobe.blacklist=foo,nouveau\n");
        Assert.Equal(2, KernelModules.BlacklistedBy(host, "nouveau").Count);
        Assert.Empty(KernelModules.BlacklistedBy(host, "nvidia"));
    }
}
