using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>The sysfs rebinding on kernel-shaped trees, where no kernel binds: the re-read link decides.</summary>
public class HostdevHostDriverTests
{
    private static readonly PciAddress Audio = PciAddress.Parse("0000:02:00.1");

    [Fact]
    public void Detach_writes_override_unbind_and_probe_then_refuses_when_the_link_did_not_move_and_puts_the_override_back()
    {
        using var dir = new TempRoot();
        var b = SampleHosts.Seed(dir.Path).AddDriver("vfio-pci");
        b.Build();
        var log = new List<string>();
        var binding = new HostDriverBinding(new HostRoot(dir.Path), log.Add);

        var e = Assert.Throws<GpuVirtException>(() => binding.Detach(Audio, HostDriverBinding.VfioPci));
        Assert.Equal(ErrorIds.HostDriverNotBound, e.ErrorId);
        var device = b.DeviceDirectory("0000:02:00.1");
        Assert.Equal(new[]
        {
            $"Writing 'vfio-pci' to '{dir.Path}/sys/bus/pci/devices/0000:02:00.1/driver_override'",
            $"Writing '0000:02:00.1' to '{dir.Path}/sys/bus/pci/devices/0000:02:00.1/driver/unbind'",
            $"Writing '0000:02:00.1' to '{dir.Path}/sys/bus/pci/drivers_probe'",
            $"Writing '' to '{dir.Path}/sys/bus/pci/devices/0000:02:00.1/driver_override'",
        }, log);
        Assert.Equal("0000:02:00.1", File.ReadAllText(Path.Combine(dir.Path, "sys/bus/pci/drivers/snd_hda_intel/unbind")));
        Assert.Equal("\n", File.ReadAllText(Path.Combine(device, "driver_override")));
        Assert.Equal("snd_hda_intel", binding.CurrentDriver(Audio));
    }

    [Fact]
    public void Detach_of_a_function_already_on_the_driver_writes_nothing()
    {
        using var dir = new TempRoot();
        var b = SampleHosts.Seed(dir.Path);
        b.Devices.Single(d => d.Address == "0000:02:00.1").Driver = "vfio-pci";
        b.Build();
        var log = new List<string>();
        var change = new HostDriverBinding(new HostRoot(dir.Path), log.Add).Detach(Audio, HostDriverBinding.VfioPci);
        Assert.False(change.Changed);
        Assert.Empty(log);
    }

    [Fact]
    public void Detach_to_a_driver_that_is_not_loaded_is_HostDriverNotLoaded_and_absent_devices_PciDeviceNotFound()
    {
        using var dir = new TempRoot();
        SampleHosts.Seed(dir.Path).Build();
        var binding = new HostDriverBinding(new HostRoot(dir.Path));
        Assert.Equal(ErrorIds.HostDriverNotLoaded, Assert.Throws<GpuVirtException>(() => binding.Detach(Audio, "vfio-pci")).ErrorId);
        Assert.Equal(ErrorIds.PciDeviceNotFound, Assert.Throws<GpuVirtException>(() => binding.Detach(PciAddress.Parse("05:00.0"), "vfio-pci")).ErrorId);
    }

    [Fact]
    public void Sysfs_attributes_are_written_in_place_and_never_created()
    {
        using var dir = new TempRoot();
        var path = Path.Combine(dir.Path, "driver_override");
        File.WriteAllText(path, "(null)\n");
        Sysfs.WriteAttribute(path, "vfio-pci");
        Assert.Equal("vfio-pci", File.ReadAllText(path));
        var e = Assert.Throws<GpuVirtException>(() => Sysfs.WriteAttribute(Path.Combine(dir.Path, "absent"), "1"));
        Assert.Equal(ErrorIds.SysfsWriteFailed, e.ErrorId);
        Assert.False(File.Exists(Path.Combine(dir.Path, "absent")));
    }

    [Theory]
    [InlineData("00:09.0", "PCI:0:9:0")]
    [InlineData("00:0a.0", "PCI:0:10:0")]
    [InlineData("0001:1f:1f.7", "PCI:31@1:31:7")]
    public void Xorg_bus_ids_are_decimal(string address, string busId) =>
        Assert.Equal(busId, XorgConfig.BusId(PciAddress.Parse(address)));

    [Fact]
    public void Xorg_values_with_quotes_or_line_breaks_are_refused()
    {
        Assert.Equal(ErrorIds.InvalidXorgValue,
            Assert.Throws<GpuVirtException>(() => XorgConfig.DeviceSection(PciAddress.Parse("00:09.0"), "a\"b")).ErrorId);
        Assert.Equal(ErrorIds.InvalidXorgValue,
            Assert.Throws<GpuVirtException>(() => XorgConfig.DeviceSection(PciAddress.Parse("00:09.0"), driver: "x\nEndSection")).ErrorId);
    }

    [Fact]
    public void Device_change_scopes_are_virshs_flags()
    {
        Assert.Equal(new[] { "--persistent" }, DeviceChangeScopeExtensions.From(false, false, false).ToFlags());
        Assert.Equal(new[] { "--config", "--live" }, DeviceChangeScopeExtensions.From(false, true, true).ToFlags());
        Assert.True(DeviceChangeScopeExtensions.From(false, true, false).ReachesDefinition());
        Assert.False(DeviceChangeScopeExtensions.From(false, false, true).ReachesDefinition());
    }
}
