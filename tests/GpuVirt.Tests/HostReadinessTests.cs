using GpuVirt.Core;
using GpuVirt.Core.HostReadiness;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class HostReadinessTests
{
    private static string Config(TempRoot root, byte[] bytes)
    {
        var path = Path.Combine(root.Path, "config-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Finds_flr_in_the_pci_express_or_advanced_features_capability_and_cannot_tell_from_the_header_alone()
    {
        using var root = new TempRoot();
        var b = new HostTreeBuilder(root.Path);
        var withFlr = b.Add("0000:01:00.0", 0x10de, 0x20b5, 0x030200, d => d.Flr = true);
        var without = b.Add("0000:02:00.0", 0x10de, 0x20b5, 0x030200, d => d.Flr = false);
        var header = b.Add("0000:03:00.0", 0x10de, 0x20b5, 0x030200);
        Assert.True(GpuReset.HasFlr(Config(root, b.Config(withFlr))));
        Assert.False(GpuReset.HasFlr(Config(root, b.Config(without))));
        Assert.Null(GpuReset.HasFlr(Config(root, b.Config(header))));

        // Advanced Features (id 0x13) with its FLR capability bit, chained after a power management capability.
        var af = new byte[256];
        af[0x06] = 0x10;
        af[0x34] = 0x50;
        af[0x50] = 0x01; af[0x51] = 0x60;
        af[0x60] = 0x13; af[0x61] = 0x00; af[0x62] = 0x06; af[0x63] = 0x03;
        Assert.True(GpuReset.HasFlr(Config(root, af)));
        af[0x63] = 0x01;
        Assert.False(GpuReset.HasFlr(Config(root, af)));

        // A capability list that points at itself ends.
        var loop = new byte[256];
        loop[0x06] = 0x10; loop[0x34] = 0x40; loop[0x40] = 0x01; loop[0x41] = 0x40;
        Assert.False(GpuReset.HasFlr(Config(root, loop)));
        Assert.Null(GpuReset.HasFlr(Path.Combine(root.Path, "missing")));
    }
}
