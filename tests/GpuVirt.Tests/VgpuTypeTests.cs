using GpuVirt.Core;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class VgpuTypeTests
{
    [Fact]
    public void Reads_the_seed_Tesla_P4_types_as_virsh_nodedev_dumpxml_lists_them()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var vgpu = new VgpuInventory(new HostRoot(root.Path));

        Assert.Equal(new[] { "0000:01:00.0" }, vgpu.MdevParents());
        var types = vgpu.Types("01:00.0")!;
        Assert.Equal(Enumerable.Range(63, 9).Select(n => "nvidia-" + n), types.Select(t => t.Id));
        var seed = new Dictionary<string, (string, int)>
        {
            ["nvidia-70"] = ("GRID P4-8A", 1), ["nvidia-69"] = ("GRID P4-4A", 2), ["nvidia-67"] = ("GRID P4-1A", 8),
            ["nvidia-65"] = ("GRID P4-4Q", 2), ["nvidia-63"] = ("GRID P4-1Q", 8), ["nvidia-71"] = ("GRID P4-1B", 8),
            ["nvidia-68"] = ("GRID P4-2A", 4), ["nvidia-66"] = ("GRID P4-8Q", 1), ["nvidia-64"] = ("GRID P4-2Q", 4),
        };
        foreach (var t in types)
        {
            Assert.Equal(seed[t.Id], (t.Name!, t.AvailableInstances));
            Assert.Equal("vfio-pci", t.DeviceApi);
            Assert.Equal("0000:01:00.0", t.Parent);
            Assert.Equal(PciAddress.Parse("0000:01:00.0"), t.ParentPciAddress);
            Assert.Equal(VgpuKind.Mdev, t.Kind);
        }
        var q1 = types[0];
        Assert.Equal("num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880, max_instance=8", q1.Description);
        Assert.Equal("1024M", q1.Framebuffer);
        Assert.Equal(4, q1.NumHeads);
        Assert.Equal(60, q1.FrlConfig);
        Assert.Equal("5120x2880", q1.MaxResolution);
        Assert.Equal(8, q1.MaxInstance);
        Assert.Equal("Q", q1.Series);
        Assert.Equal("A", types.Single(t => t.Id == "nvidia-67").Series);
        Assert.Equal("B", types.Single(t => t.Id == "nvidia-71").Series);
    }

    [Fact]
    public void Reads_Intel_GVT_g_types_with_no_name_and_a_multi_line_description()
    {
        using var root = new TempRoot();
        SampleHosts.AddIntelGvtG(SampleHosts.Seed(root.Path)).Build();
        var vgpu = new VgpuInventory(new HostRoot(root.Path));

        Assert.Equal(new[] { "0000:00:02.0", "0000:01:00.0" }, vgpu.MdevParents());
        var types = vgpu.Types("0000:00:02.0")!;
        Assert.Equal(new[] { "i915-GVTg_V5_4", "i915-GVTg_V5_8" }, types.Select(t => t.Id));
        var v4 = types[0];
        Assert.Null(v4.Name);
        Assert.Null(v4.Series);
        Assert.Equal("i915-GVTg_V5_4", v4.DisplayName);
        Assert.Equal(3, v4.AvailableInstances);
        Assert.Equal("low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4", v4.Description);
        Assert.Equal(new Dictionary<string, string>
        {
            ["low_gm_size"] = "128MB", ["high_gm_size"] = "512MB", ["fence"] = "4", ["resolution"] = "1920x1200", ["weight"] = "4",
        }, v4.Properties);
        Assert.Equal("1920x1200", v4.MaxResolution);
        Assert.Null(v4.NumHeads);
        Assert.Equal("1024x768", types[1].MaxResolution);
    }

    [Theory]
    [InlineData("GRID P4-1Q", "Q")]
    [InlineData("GRID P4-8A", "A")]
    [InlineData("GRID M60-1B4", "B")]
    [InlineData("GRID M60-0B", "B")]
    [InlineData("NVIDIA A40-48Q", "Q")]
    [InlineData("NVIDIA A100-4C", "C")]
    [InlineData("NVIDIA A100-1-5C", "C")]
    [InlineData("i915-GVTg_V5_4", null)]
    [InlineData("mtty-2", null)]
    [InlineData(null, null)]
    public void Takes_the_series_letter_from_NVIDIA_type_names_only(string? name, string? series) =>
        Assert.Equal(series, VgpuType.ParseSeries(name));

    [Fact]
    public void Parses_both_description_styles_and_skips_pieces_that_are_neither()
    {
        var nvidia = VgpuType.ParseDescription("num_heads=1, frl_config=60, framebuffer=8192M, max_resolution=1280x1024, max_instance=1\n");
        Assert.Equal(new[] { "num_heads", "frl_config", "framebuffer", "max_resolution", "max_instance" }, nvidia.Keys);
        Assert.Equal("8192M", nvidia["framebuffer"]);
        var gvt = VgpuType.ParseDescription("low_gm_size: 64MB\nhigh_gm_size: 384MB\n\nfence: 4\n");
        Assert.Equal("384MB", gvt["high_gm_size"]);
        Assert.Equal(3, gvt.Count);
        Assert.Empty(VgpuType.ParseDescription("a mediated device for testing"));
        Assert.Empty(VgpuType.ParseDescription(null));
    }

    [Fact]
    public void Sums_NVIDIA_SR_IOV_types_over_the_free_virtual_functions_of_a_GPU()
    {
        using var root = new TempRoot();
        var b = SampleHosts.TwoSocket(root.Path);
        b.Build();
        var vgpu = new VgpuInventory(new HostRoot(root.Path));

        var types = vgpu.Types("0000:01:00.0")!;
        Assert.Equal(new[] { "557", "558", "563" }, types.Select(t => t.Id));
        Assert.Equal(new[] { "NVIDIA A40-1Q", "NVIDIA A40-2Q", "NVIDIA A40-48Q" }, types.Select(t => t.Name));
        Assert.All(types, t => Assert.Equal(4, t.AvailableInstances));
        Assert.All(types, t => Assert.Equal(VgpuKind.SriovVf, t.Kind));
        Assert.Equal(new[] { "0000:01:00.4", "0000:01:00.5", "0000:01:00.6", "0000:01:00.7" }, types[0].VirtualFunctions.Select(v => v.ToString()));

        // One function with a type set: it no longer counts, and it is a vGPU device of its own.
        File.WriteAllText(Path.Combine(b.DeviceDirectory("0000:01:00.5"), "nvidia", "current_vgpu_type"), "557\n");
        Assert.All(vgpu.Types("01:00.0")!, t => Assert.Equal(3, t.AvailableInstances));
        var own = vgpu.Types("0000:01:00.5")!;
        Assert.All(own, t => Assert.Equal(0, t.AvailableInstances));
        Assert.Equal(1, vgpu.Types("0000:01:00.4")![0].AvailableInstances);
        var device = Assert.Single(vgpu.Devices());
        Assert.Null(device.Uuid);
        Assert.Equal(PciAddress.Parse("0000:01:00.5"), device.PciAddress);
        Assert.Equal("0000:01:00.0", device.Parent);
        Assert.Equal("557", device.TypeId);
        Assert.Equal("NVIDIA A40-1Q", device.TypeName);
        Assert.Equal(65, device.IommuGroup);
        Assert.True(device.Active);
        Assert.Equal(VgpuKind.SriovVf, device.Kind);
        Assert.Equal(new[] { "0000:01:00.0" }, vgpu.SriovParents().Select(p => p.Address.ToString()));
    }

    [Fact]
    public void Skips_the_header_of_creatable_vgpu_types()
    {
        var types = VgpuInventory.ParseCreatableTypes("ID    : vGPU Name\n557   : NVIDIA A40-1Q\n563   : NVIDIA A40-48Q\n");
        Assert.Equal(new[] { ("557", "NVIDIA A40-1Q"), ("563", "NVIDIA A40-48Q") }, types.Select(t => (t.Key, t.Value)));
        Assert.Empty(VgpuInventory.ParseCreatableTypes("ID    : vGPU Name\n"));
    }

    [Fact]
    public void A_device_that_offers_no_vGPU_types_has_none()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var vgpu = new VgpuInventory(new HostRoot(root.Path));
        Assert.Null(vgpu.Types("0000:02:00.0"));
        Assert.Null(vgpu.Types("0000:07:00.0"));
        Assert.Null(vgpu.Types("css-0.0.0123"));
    }

    [Fact]
    public void Orders_type_ids_by_their_number()
    {
        var ids = new List<string> { "nvidia-100", "nvidia-63", "i915-GVTg_V5_8", "nvidia-9", "i915-GVTg_V5_4" };
        ids.Sort(VgpuInventory.CompareIds);
        Assert.Equal(new[] { "i915-GVTg_V5_4", "i915-GVTg_V5_8", "nvidia-9", "nvidia-63", "nvidia-100" }, ids);
    }
}
