using System.Diagnostics;
using GpuVirt.Core;
using GpuVirt.Core.Safety;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class KernelWaitTests
{
    /// <summary>A FIFO blocks open(O_WRONLY) until a reader comes, as vfio-pci's unbind blocks until the holder lets go.</summary>
    private static void MakeFifo(string path)
    {
        File.Delete(path);
        using var p = Process.Start(new ProcessStartInfo("mkfifo") { ArgumentList = { path } })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void A_blocked_unbind_says_who_the_kernel_waits_for_then_finishes_when_released()
    {
        using var root = new TempRoot();
        var tree = SampleHosts.InUse(root.Path).AddDriver("vfio-pci");
        tree.Build();
        var unbind = Path.Combine(root.Path, "sys", "bus", "pci", "drivers", "pci-stub", "unbind");
        MakeFifo(unbind);
        var notices = new List<string>();
        string? released = null;
        Thread? holder = null;
        var binding = new HostDriverBinding(new HostRoot(root.Path))
        {
            // The notice comes on the caller's thread; the "holder" lets go once it is told.
            Notice = n =>
            {
                notices.Add(n);
                if (notices.Count != 1) return;
                holder = new Thread(() => released = File.ReadAllText(unbind));
                holder.Start();
            },
        };
        var change = Assert.Throws<GpuVirtException>(() => binding.Reattach(PciAddress.Parse("02:00.0")));
        // On a tree nothing binds: the unbind went through once released, then the driver link did not move.
        Assert.Equal(ErrorIds.HostDriverNotBound, change.ErrorId);
        holder!.Join();
        Assert.Equal("0000:02:00.0", released);
        var notice = Assert.Single(notices);
        Assert.StartsWith("The kernel is waiting for pid 4242 (qemu-system-x86, guest 'vm1') holding /dev/vfio/13 to release 0000:02:00.0 before the write of '0000:02:00.0' to '/sys/bus/pci/devices/0000:02:00.0/driver/unbind' can finish", notice);
    }

    [Fact]
    public void Stopping_leaves_the_write_pending_and_says_so()
    {
        using var root = new TempRoot();
        var fifo = Path.Combine(root.Path, "remove");
        MakeFifo(fifo);
        using var stop = new CancellationTokenSource();
        var wait = new KernelWait { FirstNotice = TimeSpan.FromMilliseconds(1), Notice = _ => stop.Cancel() };
        var e = Assert.Throws<GpuVirtException>(() => wait.Write(fifo, "/sys/bus/mdev/devices/x/remove", "1\n", "mediated device x",
            () => Array.Empty<DeviceHolder>(), stop.Token));
        Assert.Equal(ErrorIds.OperationStopped, e.ErrorId);
        Assert.Equal("Stopped waiting for the kernel; the write of '1' to '/sys/bus/mdev/devices/x/remove' is still pending and takes effect once the process that holds it (none found in /proc) releases mediated device x.", e.Message);
        // Let the pending open finish so no thread stays behind.
        Assert.Equal("1\n", File.ReadAllText(fifo));
    }
}
