using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>One embedded-QEMU libvirt root for the class (its first virsh call probes QEMU once).</summary>
public sealed class EmbeddedLibvirt : IDisposable
{
    private readonly TempRoot _dir = new();

    public EmbeddedLibvirt()
    {
        // The embedded driver logs at info level to stderr otherwise.
        Environment.SetEnvironmentVariable("LIBVIRT_LOG_FILTERS", "4:*");
        Uri = LibvirtFixture.PrepareEmbedRoot(Path.Combine(_dir.Path, "libvirt"));
    }

    public string Uri { get; }
    public string Directory => _dir.Path;

    internal Virsh Virsh(List<string>? log = null) => new(new ProcessRunner(log == null ? null : log.Add), Uri);

    /// <summary>Defines a new shut-off guest with a unique name and returns the name.</summary>
    public string Define(string prefix = "vm", bool graphics = false)
    {
        var name = prefix + "-" + Guid.NewGuid().ToString("N")[..8];
        DefineNamed(name, graphics);
        return name;
    }

    public void DefineNamed(string name, bool graphics = false)
    {
        var file = LibvirtFixture.WriteDomain(Path.Combine(Directory, "defs"), name, graphics);
        Virsh().Run(new VirshCommand("define", "--file", file));
    }

    public void Dispose() => _dir.Dispose();
}

public class LibvirtTests : IClassFixture<EmbeddedLibvirt>
{
    private static readonly PciAddress Gpu = PciAddress.Parse("0000:02:00.0");
    private static readonly PciAddress Audio = PciAddress.Parse("0000:02:00.1");
    private readonly EmbeddedLibvirt _libvirt;

    public LibvirtTests(EmbeddedLibvirt libvirt)
    {
        _libvirt = libvirt;
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("two words")]
    [InlineData("it's")]
    [InlineData("a;b; list --all")]
    [InlineData("\"dq\" \\back\\slash")]
    [InlineData("$(id) `id` | & > <x> # c")]
    [InlineData("--config")]
    [InlineData("'")]
    [InlineData("日本語 ü")]
    public void Quoted_words_reach_virsh_unchanged_through_its_command_string(string word)
    {
        // Two commands force the command-string form; virsh's own echo prints the word as it parsed it.
        var batch = _libvirt.Virsh().RunBatch(new[] { new VirshCommand("echo", "--", word), new VirshCommand("echo", "--", "x") });
        Assert.Equal(word, batch.Outputs[0]);
        Assert.Equal("x", batch.Outputs[1]);
    }

    [Fact]
    public void The_connection_is_the_given_uri_else_LIBVIRT_DEFAULT_URI()
    {
        Assert.Equal("test:///default", Virsh.ResolveUri(" test:///default "));
        Assert.Equal(new[] { "-c", "test:///default", "list", "--all", "--name" },
            new Virsh(new ProcessRunner(), "test:///default").ProgramArguments(new[] { VirshCommand.ListAllNames() }));
        Assert.Equal("virsh -c test:///default dumpxml --domain 'a b' --inactive",
            new Virsh(new ProcessRunner(), "test:///default").CommandLine(VirshCommand.DumpXml("a b", true)));
    }

    [Fact]
    public void Attaching_several_devices_uses_one_virsh_process_and_persists()
    {
        var vm = _libvirt.Define();
        var log = new List<string>();
        var xml = new[] { HostdevXml.Pci(Gpu), HostdevXml.Pci(Audio) };
        var (outcomes, after) = _libvirt.Virsh(log).ChangeDevices(vm, xml, DeviceChangeScope.Persistent, attach: true, readBack: true);

        Assert.All(outcomes, o => Assert.True(o.Succeeded, o.Error?.Message));
        var line = Assert.Single(log);
        Assert.Contains("attach-device --domain " + vm + " --file ", line);
        Assert.Contains("--persistent", line);
        Assert.Contains("dumpxml --domain " + vm + " --inactive", line);
        Assert.NotNull(after);
        Assert.Equal(new PciAddress?[] { Gpu, Audio }, after!.Hostdevs.Select(h => h.PciAddress));

        // Read back in a new process, as libvirt stored it: managed, the vfio driver, and a guest address libvirt chose.
        var stored = _libvirt.Virsh().ReadDefinition(vm, inactive: true);
        Assert.Equal(2, stored.Hostdevs.Count);
        var gpu = stored.Hostdevs[0];
        Assert.Equal(vm, gpu.Domain);
        Assert.Equal(HostdevKind.Pci, gpu.Kind);
        Assert.True(gpu.Managed);
        Assert.Equal("vfio", gpu.Driver);
        Assert.NotNull(gpu.GuestAddress);
        Assert.NotEqual(stored.Hostdevs[0].GuestAddress, stored.Hostdevs[1].GuestAddress);
        Assert.Contains("<address type='pci'", gpu.Xml.Replace('"', '\''));

        // The temporary files are gone.
        var file = line.Split(' ').First(w => w.EndsWith(".xml", StringComparison.Ordinal));
        Assert.False(File.Exists(file));
        Assert.False(System.IO.Directory.Exists(Path.GetDirectoryName(file)));
    }

    [Fact]
    public void Attaching_twice_fails_per_device_with_libvirts_reason_and_the_rest_still_attach()
    {
        var vm = _libvirt.Define();
        var virsh = _libvirt.Virsh();
        virsh.ChangeDevices(vm, new[] { HostdevXml.Pci(Gpu) }, DeviceChangeScope.Config, attach: true, readBack: false);

        var (outcomes, _) = virsh.ChangeDevices(vm, new[] { HostdevXml.Pci(Audio), HostdevXml.Pci(Gpu) }, DeviceChangeScope.Config, attach: true, readBack: false);
        Assert.True(outcomes[0].Succeeded);
        var error = outcomes[1].Error!;
        Assert.Equal(ErrorIds.HostdevAlreadyAttached, error.ErrorId);
        Assert.Contains("already in the domain configuration", error.Message);
        Assert.Contains(vm, error.Message);
        Assert.Equal(2, virsh.ReadDefinition(vm, true).Hostdevs.Count);
    }

    [Fact]
    public void Detaching_restores_the_original_definition()
    {
        var vm = _libvirt.Define("restore", graphics: true);
        var virsh = _libvirt.Virsh();
        var original = virsh.Run(VirshCommand.DumpXml(vm, true));
        var xml = new[] { HostdevXml.Pci(Gpu), HostdevXml.Mdev(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a"), display: true) };
        var (attached, after) = virsh.ChangeDevices(vm, xml, DeviceChangeScope.Persistent, attach: true, readBack: true);
        Assert.All(attached, o => Assert.True(o.Succeeded, o.Error?.Message));
        Assert.Equal(2, after!.Hostdevs.Count);
        Assert.True(after.Hostdevs[1].Display);

        var (detached, restored) = virsh.ChangeDevices(vm, xml, DeviceChangeScope.Persistent, attach: false, readBack: true);
        Assert.All(detached, o => Assert.True(o.Succeeded, o.Error?.Message));
        Assert.Empty(restored!.Hostdevs);
        Assert.Equal(original, virsh.Run(VirshCommand.DumpXml(vm, true)));

        var (again, _) = virsh.ChangeDevices(vm, new[] { HostdevXml.Pci(Gpu) }, DeviceChangeScope.Persistent, attach: false, readBack: false);
        Assert.Equal(ErrorIds.HostdevNotAttached, again[0].Error!.ErrorId);
    }

    [Fact]
    public void An_unknown_guest_is_DomainNotFound()
    {
        var virsh = _libvirt.Virsh();
        Assert.Equal(ErrorIds.DomainNotFound, Assert.Throws<GpuVirtException>(() => virsh.ReadDefinition("no-such-guest", true)).ErrorId);
        Assert.Equal(ErrorIds.DomainNotFound, Assert.Throws<GpuVirtException>(() => virsh.ResolveDomain("no-such-guest")).ErrorId);
        var (outcomes, _) = virsh.ChangeDevices("no-such-guest", new[] { HostdevXml.Pci(Gpu) }, DeviceChangeScope.Config, true, false);
        Assert.Equal(ErrorIds.DomainNotFound, outcomes[0].Error!.ErrorId);
        Assert.Equal(ErrorIds.InvalidDomainName, Assert.Throws<GpuVirtException>(() => virsh.ReadDefinition("a\nb", true)).ErrorId);
    }

    [Fact]
    public void A_guest_named_with_quotes_brackets_and_shell_characters_is_found_by_name()
    {
        const string name = "we'ird \"vm\" <x> ;$(id)|`a` --config";
        _libvirt.DefineNamed(name);
        var virsh = _libvirt.Virsh();
        Assert.Contains(name, virsh.ListDomains());
        Assert.Equal(name, virsh.ResolveDomain(name));
        var (outcomes, after) = virsh.ChangeDevices(name, new[] { HostdevXml.Pci(PciAddress.Parse("0000:05:00.0")) }, DeviceChangeScope.Config, true, true);
        Assert.True(outcomes[0].Succeeded, outcomes[0].Error?.Message);
        Assert.Equal(name, after!.Name);
        Assert.Equal(name, Assert.Single(after.Hostdevs).Domain);
    }

    [Fact]
    public void Ownership_names_the_guest_that_holds_a_device_or_uuid()
    {
        var holder = _libvirt.Define("holder");
        var uuid = Guid.NewGuid();
        var device = PciAddress.Parse("0000:0a:00.0");
        _libvirt.Virsh().ChangeDevices(holder, new[] { HostdevXml.Pci(device), HostdevXml.Mdev(uuid) }, DeviceChangeScope.Config, true, false);

        var log = new List<string>();
        var ownership = HostdevOwnership.Read(_libvirt.Virsh(log));
        Assert.Equal(2, log.Count);
        Assert.True(ownership.HasDomain(holder));
        Assert.Equal(new[] { holder }, ownership.OwnersOf(device));
        Assert.Equal(new[] { holder }, ownership.OwnersOf(uuid));
        Assert.Empty(ownership.OwnersOf(device, except: holder));
        Assert.Empty(ownership.OwnersOf(PciAddress.Parse("0000:0b:00.0")));

        var refusal = ownership.InUse(HostdevSource.Mdev(uuid), "other-guest")!;
        Assert.Equal(ErrorIds.HostdevInUse, refusal.Error.ErrorId);
        Assert.Contains("'" + holder + "'", refusal.Error.Message);
        Assert.Contains("each vGPU UUID is assigned to one guest at a time", refusal.Error.Message);
        Assert.True(refusal.Overridable);
        Assert.EndsWith("(each vGPU UUID is assigned to one guest at a time). -Force attaches it anyway.", refusal.OverriddenWarning);
        Assert.Null(ownership.InUse(HostdevSource.Pci(device), holder));
    }

    [Fact]
    public void A_long_batch_is_cut_into_processes_under_the_argument_limit_and_keeps_order()
    {
        var log = new List<string>();
        var words = Enumerable.Range(0, 400).Select(i => i.ToString("D4") + new string('x', 300)).ToList();
        var batch = _libvirt.Virsh(log).RunBatch(words.Select(w => new VirshCommand("echo", w)).ToList());
        Assert.Equal(words, batch.Outputs);
        Assert.True(log.Count > 1);
        Assert.All(log, l => Assert.True(l.Length < 128 * 1024));
    }

    [Fact]
    public void No_connection_is_LibvirtConnectFailed()
    {
        var virsh = new Virsh(new ProcessRunner(), "test:///" + Path.Combine(_libvirt.Directory, "missing-node.xml"));
        Assert.Equal(ErrorIds.LibvirtConnectFailed, Assert.Throws<GpuVirtException>(() => virsh.ListDomains()).ErrorId);
        Assert.Equal(ErrorIds.LibvirtConnectFailed, Assert.Throws<GpuVirtException>(() => virsh.RunBatch(new[] { VirshCommand.ListAllNames(), VirshCommand.ListActiveNames() })).ErrorId);
    }

    [Fact]
    public void The_test_driver_reads_node_devices_and_guests_hostdevs()
    {
        var uri = LibvirtFixture.TestDriver()
            .AddGuest("g1", HostdevXml.Pci(Gpu))
            .AddGuest("g2", HostdevXml.Mdev(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a")))
            .Write(Path.Combine(_libvirt.Directory, "node.xml"));
        var virsh = new Virsh(new ProcessRunner(), uri);
        Assert.Contains("<iommuGroup number='13'>", virsh.NodeDeviceDumpXml(Audio));
        var ownership = HostdevOwnership.Read(virsh);
        Assert.Equal(new[] { "g1" }, ownership.OwnersOf(Gpu));
        Assert.Equal(new[] { "g2" }, ownership.OwnersOf(Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a")));
        // The test driver has no node-device detach: libvirt's own words come back.
        var e = Assert.Throws<GpuVirtException>(() => virsh.NodeDeviceDetach(Audio, "vfio"));
        Assert.Equal(ErrorIds.VirshCommandFailed, e.ErrorId);
        Assert.Contains("not supported", e.Message);
    }
}
