using GpuVirt.Core;
using GpuVirt.Core.Safety;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class SysfsReaderTests
{
    [Fact]
    public void Lists_names_of_links_files_and_directories_without_dot_entries()
    {
        using var root = new TempRoot();
        var dir = Path.Combine(root.Path, "d");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        File.WriteAllText(Path.Combine(dir, "file"), "x");
        File.CreateSymbolicLink(Path.Combine(dir, "link"), "sub");
        File.CreateSymbolicLink(Path.Combine(dir, "dangling"), "nowhere");
        File.WriteAllText(Path.Combine(dir, "näme"), "x");

        Assert.Equal(new[] { "dangling", "file", "link", "näme", "sub" }, Sysfs.TryListNames(dir)!.OrderBy(n => n, StringComparer.Ordinal));
        Assert.Null(Sysfs.TryListNames(Path.Combine(root.Path, "missing")));
        Assert.Null(Sysfs.TryListNames(Path.Combine(dir, "file")));
    }

    [Fact]
    public void Reads_attributes_relative_to_an_open_directory_as_the_path_readers_do()
    {
        using var root = new TempRoot();
        var dir = Path.Combine(root.Path, "dev");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "vendor"), "0x10de\n");
        File.WriteAllText(Path.Combine(dir, "class"), "  0x030000 \n");
        File.WriteAllText(Path.Combine(dir, "bad"), "0xzz\n");
        File.WriteAllText(Path.Combine(dir, "toolong"), "0x123456789\n");
        File.WriteAllText(Path.Combine(dir, "numa_node"), "-1\n");
        File.WriteAllText(Path.Combine(dir, "large"), new string('a', 20000) + "\n");
        File.CreateSymbolicLink(Path.Combine(dir, "driver"), "../../bus/pci/drivers/vfio-pci/");

        using var open = SysfsDirectory.TryOpen(dir)!;
        Assert.Equal(0x10deu, open.Hex(SysfsDirectory.Name("vendor")));
        Assert.Equal(0x030000u, open.Hex(SysfsDirectory.Name("class")));
        Assert.Null(open.Hex(SysfsDirectory.Name("bad")));
        Assert.Null(open.Hex(SysfsDirectory.Name("toolong")));
        Assert.Null(open.Hex(SysfsDirectory.Name("absent")));
        Assert.Equal(-1, open.Int(SysfsDirectory.Name("numa_node")));
        Assert.Equal(20000, open.Text(SysfsDirectory.Name("large"))!.Length);
        Assert.Equal("vfio-pci", open.LinkName(SysfsDirectory.Name("driver")));
        Assert.Null(open.LinkName(SysfsDirectory.Name("vendor")));
        Assert.True(open.Has(SysfsDirectory.Name("driver")));
        Assert.False(open.Has(SysfsDirectory.Name("drive")));
        Assert.False(open.Has(SysfsDirectory.Name("driver_override")));

        Assert.Null(SysfsDirectory.TryOpen(Path.Combine(dir, "vendor")));
        Assert.Null(SysfsDirectory.TryOpen(Path.Combine(dir, "missing")));
    }

    [Fact]
    public void A_directory_too_large_to_list_in_one_call_still_reads_every_attribute()
    {
        using var root = new TempRoot();
        var dir = Path.Combine(root.Path, "big");
        Directory.CreateDirectory(dir);
        for (var i = 0; i < 3000; i++) File.WriteAllText(Path.Combine(dir, "attribute_with_a_long_name_" + i), i.ToString());

        using var open = SysfsDirectory.TryOpen(dir)!;
        Assert.Equal(2999, open.Int(SysfsDirectory.Name("attribute_with_a_long_name_2999")));
        Assert.Equal(0, open.Int(SysfsDirectory.Name("attribute_with_a_long_name_0")));
    }

    [Fact]
    public void Two_directories_open_on_one_thread_do_not_answer_from_each_others_listing()
    {
        using var root = new TempRoot();
        var a = Path.Combine(root.Path, "a");
        var b = Path.Combine(root.Path, "b");
        Directory.CreateDirectory(a);
        Directory.CreateDirectory(b);
        File.WriteAllText(Path.Combine(a, "only_a"), "1");
        File.WriteAllText(Path.Combine(b, "only_b"), "2");

        using var first = SysfsDirectory.TryOpen(a)!;
        using var second = SysfsDirectory.TryOpen(b)!;
        Assert.Equal(1, first.Int(SysfsDirectory.Name("only_a")));
        Assert.Equal(2, second.Int(SysfsDirectory.Name("only_b")));
        Assert.Equal(1, first.Int(SysfsDirectory.Name("only_a")));
        Assert.Null(first.Int(SysfsDirectory.Name("only_b")));
    }

    [Fact]
    public void Find_reads_one_function_and_the_whole_bus_keeps_the_same_object()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var inventory = new PciInventory(new HostRoot(root.Path), displayAsGpu: true);

        var quadro = inventory.Find(PciAddress.Parse("02:00.0"))!;
        Assert.IsType<GpuDevice>(quadro);
        Assert.Equal("pci-stub", quadro.Driver);
        Assert.Null(inventory.Find(PciAddress.Parse("05:00.0")));
        Assert.Same(quadro, inventory.Devices.Single(d => d.Address == quadro.Address));
        Assert.Same(quadro, inventory.Find(quadro.PciAddress));
    }

    [Fact]
    public void Gpus_read_before_the_bus_match_gpus_read_after_it_on_a_large_host()
    {
        using var root = new TempRoot();
        SampleHosts.Synthetic(root.Path, 300, 6, 2).Build();
        var lazy = new PciInventory(new HostRoot(root.Path), displayAsGpu: true).Gpus();
        var full = new PciInventory(new HostRoot(root.Path), displayAsGpu: true);
        Assert.True(full.Devices.Count >= 300);
        var eager = full.Gpus();

        Assert.Equal(6, lazy.Count);
        Assert.Equal(eager.Select(g => g.Address), lazy.Select(g => g.Address));
        Assert.Equal(eager.Select(g => string.Join(",", g.CompanionDevices.Select(c => c.Address))), lazy.Select(g => string.Join(",", g.CompanionDevices.Select(c => c.Address))));
        Assert.Equal(eager.Select(g => g.SupportsMdev), lazy.Select(g => g.SupportsMdev));
        Assert.Equal(eager.Select(g => g.Description + g.Driver + g.IommuGroup), lazy.Select(g => g.Description + g.Driver + g.IommuGroup));
    }

    [Fact]
    public void The_console_gpu_is_host_critical_whether_the_inventory_read_all_functions_gpus_or_one()
    {
        using var root = new TempRoot();
        var b = SampleHosts.TwoSocket(root.Path);
        b.Usage.Framebuffer("fb0", "0000:04:00.0");
        b.Build();
        var host = new HostRoot(root.Path);
        var console = PciAddress.Parse("0b:00.0");
        var expected = HostCriticalDevices.Read(host).Describe(console);
        Assert.Equal("console GPU (boot_vga)", expected);

        Assert.Equal(expected, new PciInventory(host).Devices.Single(d => d.PciAddress == console).HostCritical);
        Assert.Equal(expected, new PciInventory(host, displayAsGpu: true).Gpus().Single(d => d.PciAddress == console).HostCritical);
        Assert.Equal(expected, new PciInventory(host).Find(console)!.HostCritical);
        Assert.Equal("framebuffer fb0 (console display)", new PciInventory(host, displayAsGpu: true).Gpus().Single(d => d.PciAddress == PciAddress.Parse("04:00.0")).HostCritical);
    }
}
