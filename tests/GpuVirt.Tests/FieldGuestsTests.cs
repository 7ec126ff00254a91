using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>
/// Issue 29's guest items in the core: <c>&lt;interface type='hostdev'&gt;</c> read as a held function (item 3), and the
/// lock of a libvirt guest keyed by its connection and UUID, not by the root (items 4 and 23).
/// </summary>
public class FieldGuestsTests
{
    private const string Definition = """
        <domain type='kvm'>
          <name>pa</name>
          <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
          <devices>
            <interface type='network'><source network='default'/></interface>
            <interface type='hostdev' managed='yes'>
              <mac address='52:54:00:6d:90:02'/>
              <driver name='vfio'/>
              <source><address type='pci' domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source>
              <address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/>
            </interface>
            <interface type='hostdev'>
              <source><address type='usb' bus='1' device='2'/></source>
            </interface>
            <hostdev mode='subsystem' type='pci' managed='yes'>
              <source><address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></source>
            </hostdev>
          </devices>
        </domain>
        """;

    [Fact]
    public void Item3_a_function_held_through_interface_type_hostdev_is_one_of_the_guests_hostdevs_in_document_order()
    {
        var definition = DomainXml.Parse(Definition);

        Assert.Equal(new[] { "0000:06:12.5", "0000:02:00.0" }, definition.Hostdevs.Select(h => h.Source));
        var nic = definition.Hostdevs[0];
        Assert.True(nic.Interface);
        Assert.Equal(HostdevKind.Pci, nic.Kind);
        Assert.True(nic.Managed);
        Assert.Equal("vfio", nic.Driver);
        Assert.Equal("0000:00:09.0", nic.GuestAddress);
        Assert.StartsWith("<interface type=\"hostdev\"", nic.Xml);
        Assert.False(definition.Hostdevs[1].Interface);
        // The element itself reads back (the journal keeps it to attach it again).
        Assert.Equal(PciAddress.Parse("0000:06:12.5"), DomainXml.ParseHostdev("pa", nic.Xml).PciAddress);
    }

    [Theory]
    [InlineData("qemu:///embed?root=/var/tmp/emb", "/var/tmp/emb/run/gpuvirt")]
    [InlineData("qemu:///embed?root=%2Fsrv%2Fvm%20store", "/srv/vm store/run/gpuvirt")]
    public void Item4_the_guest_locks_of_an_embedded_driver_lie_under_its_own_root(string uri, string directory)
    {
        Assert.Equal(directory, GuestLock.DirectoryFor(uri));
    }

    [Fact]
    public void Item4_the_guest_locks_depend_on_the_connection_only_and_the_test_driver_needs_none()
    {
        var system = GuestLock.DirectoryFor("qemu:///system")!;
        Assert.StartsWith(GuestLock.SystemDirectory + "/", system);
        Assert.Equal(system, GuestLock.DirectoryFor("qemu:///system"));
        Assert.NotEqual(system, GuestLock.DirectoryFor("qemu+ssh://root@other/system"));
        Assert.Null(GuestLock.DirectoryFor("test:///default"));
        Assert.Null(GuestLock.DirectoryFor("test:///tmp/node.xml"));
    }

    [Fact]
    public void Item4_a_plan_with_a_guest_lock_that_another_process_holds_times_out_under_any_root_and_runs_nothing()
    {
        using var embed = new TempRoot();
        using var rootA = new TempRoot();
        var virsh = new Virsh(new ProcessRunner(), LibvirtFixture.EmbedUri(embed.Path));
        var guest = new Guest(Guid.Parse("4dea22b3-1d52-d8f3-2516-782e98ab3fa0"), "pa", active: false);
        var file = Path.Combine(embed.Path, "run", "gpuvirt", "guest-4dea22b3-1d52-d8f3-2516-782e98ab3fa0.lock");
        using var held = FixtureLock.HoldFile(file);

        var ran = false;
        var plan = new ChangePlan(ChangeKind.VgpuConsole, new ChangeHost(new HostRoot(rootA.Path), virsh.Uri), "guest 'pa'", "Redefine");
        plan.Steps.Add(new PlanStep("define", _ => ran = true));
        plan.GuestLocks.Add(GuestLockKey.Definition(virsh, guest));
        var executor = new PlanExecutor { LockTimeout = TimeSpan.FromMilliseconds(200), Checks = Array.Empty<IPlanCheck>() };

        var outcome = executor.Apply(plan);

        Assert.False(ran);
        Assert.Equal(ErrorIds.HostLockTimedOut, outcome.Error!.ErrorId);
        Assert.Contains(file, outcome.Error.Message);
        Assert.Contains("change the definition of guest 'pa'", outcome.Error.Message);
        // The root's own host lock was taken and let go: another root's lock is no part of it.
        Assert.True(File.Exists(Path.Combine(rootA.Path, "run", "lock", "gpuvirt.lock")));
    }

    [Fact]
    public void Item23_the_assignment_lock_is_one_per_connection_whatever_the_guest_and_is_taken_once_per_command()
    {
        using var embed = new TempRoot();
        var uri = LibvirtFixture.EmbedUri(embed.Path);
        var pa = GuestLockKey.Definition(new Virsh(new ProcessRunner(), uri), new Guest(Guid.NewGuid(), "pa", false));
        var pb = GuestLockKey.Definition(new Virsh(new ProcessRunner(), uri), new Guest(Guid.NewGuid(), "pb", false));
        var assignA = GuestLockKey.Assignments(new Virsh(new ProcessRunner(), uri));
        var assignB = GuestLockKey.Assignments(new Virsh(new ProcessRunner(), uri));
        Assert.Equal(GuestLock.PathFor(assignA), GuestLock.PathFor(assignB));
        Assert.NotEqual(GuestLock.PathFor(pa), GuestLock.PathFor(pb));

        // Two attaches of one command (one guest each, the same assignment lock): taken once, re-entered, let go together.
        using (GuestLock.Acquire(new[] { pa, assignA, pb, assignB }, TimeSpan.FromSeconds(1), default, null))
        {
            Assert.True(GuestLock.IsHeld(assignB));
            Assert.True(GuestLock.IsHeld(pb));
            // Another thread (another runspace, or another process) waits, and gives up at its bound.
            GpuVirtException? refused = null;
            var other = new Thread(() =>
            {
                try { GuestLock.Acquire(new[] { assignB }, TimeSpan.FromMilliseconds(100), default, null).Dispose(); }
                catch (GpuVirtException e) { refused = e; }
            });
            other.Start();
            other.Join();
            Assert.Equal(ErrorIds.HostLockTimedOut, refused?.ErrorId);
        }
        Assert.False(GuestLock.IsHeld(assignA));
        using (GuestLock.Acquire(new[] { assignB }, TimeSpan.FromMilliseconds(100), default, null)) Assert.True(GuestLock.IsHeld(assignA));
    }
}
