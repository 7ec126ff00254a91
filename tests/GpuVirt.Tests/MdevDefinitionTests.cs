using GpuVirt.Core;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class MdevDefinitionTests
{
    private const string Uuid1 = "30820a6f-b1a5-4503-91ca-0c10ba58692a";
    private const string Uuid2 = "ba26a3e2-8e1e-4f39-9de7-b26bd210268a";

    [Fact]
    public void Writes_the_exact_JSON_mdevctl_writes()
    {
        var definition = new MdevDefinition("0000:01:00.0", Uuid1, "nvidia-63", "auto");
        Assert.Equal(HostTreeBuilder.MdevctlJson("nvidia-63", "auto"), MdevDefinitions.ToJson(definition));
        Assert.Equal("/etc/mdevctl.d/0000:01:00.0/" + Uuid1, definition.Path);
        var withAttrs = new MdevDefinition("0000:01:00.0", Uuid1, "nvidia-64", "manual", new[] { new KeyValuePair<string, string>("foo", "bar") });
        Assert.Equal("{\n  \"mdev_type\": \"nvidia-64\",\n  \"start\": \"manual\",\n  \"attrs\": [\n    {\n      \"foo\": \"bar\"\n    }\n  ]\n}",
            MdevDefinitions.ToJson(withAttrs));
    }

    [Fact]
    public void Reads_definitions_back_by_their_JSON_shape_and_attributes_in_order()
    {
        Assert.True(MdevDefinitions.TryParse("0000:01:00.0", Uuid1,
            "{\"mdev_type\":\"nvidia-64\",\"start\":\"manual\",\"attrs\":[{\"b\":\"2\"},{\"a\":\"1\"}]}", out var d, out var reason), reason);
        Assert.Equal("nvidia-64", d!.TypeId);
        Assert.Equal("manual", d.StartMode);
        Assert.Equal(new[] { ("b", "2"), ("a", "1") }, d.Attributes.Select(a => (a.Key, a.Value)));
        // mdevctl treats a missing start as manual and missing attrs as none.
        Assert.True(MdevDefinitions.TryParse("p", Uuid1, "{\"mdev_type\":\"nvidia-63\"}", out d, out _));
        Assert.Equal("manual", d!.StartMode);
        Assert.Empty(d.Attributes);
    }

    [Theory]
    [InlineData("not json", "not JSON")]
    [InlineData("[]", "not a JSON object")]
    [InlineData("{\"start\":\"auto\"}", "no 'mdev_type'")]
    [InlineData("{\"mdev_type\":\"nvidia-63\",\"start\":\"always\"}", "neither 'auto' nor 'manual'")]
    [InlineData("{\"mdev_type\":\"nvidia-63\",\"attrs\":{}}", "'attrs' is not an array")]
    [InlineData("{\"mdev_type\":\"nvidia-63\",\"attrs\":[{\"a\":\"1\",\"b\":\"2\"}]}", "one-key object")]
    public void Says_what_is_wrong_with_a_malformed_definition(string json, string expected)
    {
        Assert.False(MdevDefinitions.TryParse("p", Uuid1, json, out _, out var reason));
        Assert.Contains(expected, reason);
    }

    [Fact]
    public void A_malformed_file_is_reported_and_skipped_while_the_others_are_read()
    {
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        b.AddMdevDefinition("0000:01:00.0", Uuid1, "nvidia-63");
        b.AddMdevDefinition("0000:01:00.0", Uuid2, "nvidia-64", rawJson: "{\"mdev_type\": ");
        b.AddFile("/etc/mdevctl.d/0000:01:00.0/notes.txt", "x");
        b.AddFile("/etc/mdevctl.d/scripts.d/callouts/.keep", string.Empty);
        b.Build();
        var definitions = new MdevDefinitions(new HostRoot(root.Path));

        var d = Assert.Single(definitions.All);
        Assert.Equal((Uuid1, "nvidia-63", "auto"), (d.Uuid, d.TypeId, d.StartMode));
        Assert.Equal(2, definitions.Problems.Count);
        Assert.All(definitions.Problems, p => Assert.Equal(ErrorIds.MdevDefinitionInvalid, p.ErrorId));
        Assert.Contains(definitions.Problems, p => p.Message.Contains("/etc/mdevctl.d/0000:01:00.0/" + Uuid2, StringComparison.Ordinal) && p.Message.Contains("not JSON", StringComparison.Ordinal));
        Assert.Contains(definitions.Problems, p => p.Message.Contains("notes.txt", StringComparison.Ordinal) && p.Message.Contains("not a UUID", StringComparison.Ordinal));
    }

    [Fact]
    public void Lists_defined_but_stopped_devices_beside_live_ones()
    {
        using var root = new TempRoot();
        var b = SampleHosts.Seed(root.Path);
        b.AddMdev(new FixtureMdevDevice(Uuid1, "0000:01:00.0", "nvidia-63", 30));
        b.AddMdevDefinition("0000:01:00.0", Uuid1, "nvidia-63");
        b.AddMdevDefinition("0000:01:00.0", Uuid2, "nvidia-65", "manual");
        b.Build();
        var devices = new VgpuInventory(new HostRoot(root.Path)).Devices();

        Assert.Equal(new[] { Uuid1, Uuid2 }, devices.Select(d => d.Uuid));
        var live = devices[0];
        Assert.True(live.Active);
        Assert.True(live.Persistent);
        Assert.Equal("auto", live.StartMode);
        Assert.Equal(30, live.IommuGroup);
        Assert.Equal("GRID P4-1Q", live.TypeName);
        Assert.Equal("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/" + Uuid1, live.SysfsPath);
        var stopped = devices[1];
        Assert.False(stopped.Active);
        Assert.False(stopped.Persistent);
        Assert.Equal("manual", stopped.StartMode);
        Assert.Equal("GRID P4-4Q", stopped.TypeName);
        Assert.Null(stopped.IommuGroup);
        Assert.Equal("/etc/mdevctl.d/0000:01:00.0/" + Uuid2, stopped.DefinitionPath);
    }

    [Fact]
    public void Writes_a_definition_whole_and_refuses_to_overwrite_one_unless_asked()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        var definitions = new MdevDefinitions(new HostRoot(root.Path));
        var d = new MdevDefinition("0000:01:00.0", Uuid1, "nvidia-63", "manual");
        definitions.Write(d);
        var path = Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0", Uuid1);
        Assert.Equal(HostTreeBuilder.MdevctlJson("nvidia-63", "manual"), File.ReadAllText(path));
        var e = Assert.Throws<GpuVirtException>(() => definitions.Write(new MdevDefinition("0000:01:00.0", Uuid1, "nvidia-64", "auto")));
        Assert.Equal(ErrorIds.MdevDefinitionWriteFailed, e.ErrorId);
        Assert.Equal(HostTreeBuilder.MdevctlJson("nvidia-63", "manual"), File.ReadAllText(path));
        definitions.Write(new MdevDefinition("0000:01:00.0", Uuid1, "nvidia-63", "auto"), replace: true);
        Assert.Equal(HostTreeBuilder.MdevctlJson("nvidia-63", "auto"), File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
        definitions.Delete(definitions.All.Single());
        Assert.False(Directory.Exists(Path.GetDirectoryName(path)));
    }
}
