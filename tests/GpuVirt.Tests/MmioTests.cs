using System.Text.RegularExpressions;
using System.Xml.Linq;
using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Mmio;
using GpuVirt.Core.Planning;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class MmioTests : IClassFixture<EmbeddedLibvirt>
{
    private const ulong MiB = 1UL << 20, GiB = 1UL << 30;
    private readonly EmbeddedLibvirt _libvirt;

    public MmioTests(EmbeddedLibvirt libvirt)
    {
        _libvirt = libvirt;
    }

    // A Tesla V100 as a 6.1 kernel prints it: BAR0 16 MiB registers, BAR1 16 GiB and BAR3 32 MiB 64-bit prefetchable,
    // then the ROM (line 6) and six empty SR-IOV lines.
    private const string V100Resource =
        "0x00000000fa000000 0x00000000faffffff 0x0000000000040200\n" +
        "0x0000038000000000 0x00000383ffffffff 0x000000000014220c\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x0000038400000000 0x0000038401ffffff 0x000000000014220c\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x000000000000e000 0x000000000000e07f 0x0000000000040101\n" +
        "0x00000000fb000000 0x00000000fb07ffff 0x0000000000046200\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" +
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";

    [Fact]
    public void Reads_the_standard_bars_of_a_resource_file_with_their_kinds_and_skips_the_rom_and_empty_lines()
    {
        var bars = PciBars.Parse(PciAddress.Parse("0000:3b:00.0"), V100Resource);
        Assert.Equal(new[] { 0, 1, 3, 5 }, bars.Select(b => b.Index));
        Assert.Equal(new[] { "mem32", "mem64 pref", "mem64 pref", "io" }, bars.Select(b => b.Kind));
        Assert.Equal(new[] { 16 * MiB, 16 * GiB, 32 * MiB, 128UL }, bars.Select(b => b.Size));
        Assert.Equal(2, bars.Count(b => b.Is64Bit));
        Assert.Equal("0000:3b:00.0 BAR 1 mem64 pref 16 GiB", bars[1].ToString());
    }

    [Fact]
    public void A_window_holds_the_bars_naturally_aligned_rounded_up_to_the_largest_and_windows_pack_without_gaps()
    {
        var v100 = PciBars.Parse(PciAddress.Parse("0000:3b:00.0"), V100Resource);
        var window = new MmioWindow(v100[0].Device, v100.Where(b => b.Is64Bit).ToList());
        Assert.Equal(16 * GiB + 32 * MiB, window.BarBytes);
        Assert.Equal(16 * GiB, window.Alignment);
        Assert.Equal(32 * GiB, window.Size);

        var second = PciBars.Parse(PciAddress.Parse("0000:5e:00.0"), V100Resource);
        var audio = PciBars.Parse(PciAddress.Parse("0000:5e:00.1"), "0x00000000fc000000 0x00000000fc003fff 0x0000000000040200\n");
        var requirement = MmioRequirement.For(new[]
        {
            new KeyValuePair<PciAddress, IReadOnlyList<PciBar>>(PciAddress.Parse("0000:3b:00.0"), v100),
            new KeyValuePair<PciAddress, IReadOnlyList<PciBar>>(PciAddress.Parse("0000:5e:00.0"), second),
            new KeyValuePair<PciAddress, IReadOnlyList<PciBar>>(PciAddress.Parse("0000:5e:00.1"), audio),
        });
        Assert.Equal(2, requirement.Windows.Count);          // the audio function has no 64-bit BAR
        Assert.Equal(2 * (16 * GiB + 32 * MiB), requirement.BarBytes);
        Assert.Equal(64 * GiB, requirement.RequiredBytes);
        Assert.Equal(16 * GiB, requirement.LargestAlignment);
        Assert.Equal(79 * GiB, requirement.MinimumBytes);      // what aligning the first window may lose: 16 GiB less 1 GiB
        Assert.Equal(80 * GiB, requirement.RecommendedBytes);  // one largest alignment of headroom
        Assert.Equal(0UL, MmioRequirement.For(Array.Empty<KeyValuePair<PciAddress, IReadOnlyList<PciBar>>>()).RecommendedBytes);
    }

    [Theory]
    [InlineData(1UL << 40, 40)]
    [InlineData((1UL << 40) + 1, 41)]
    [InlineData(86UL << 30, 37)]
    public void Address_bits_reach_the_last_byte_below_an_end(ulong end, int bits) => Assert.Equal(bits, MmioSize.BitsFor(end));

    private static string Guest(string name, string? cpu = null, string? hole = null, int memoryMiB = 4096, params string[] hostdevs)
    {
        var domain = XElement.Parse(LibvirtFixture.Domain(name, spareRootPorts: 4));
        domain.Element("memory")!.Value = memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (cpu != null) domain.Element("os")!.AddAfterSelf(XElement.Parse(cpu));
        var devices = domain.Element("devices")!;
        if (hole != null) devices.Elements("controller").First().Add(XElement.Parse(hole));
        foreach (var address in hostdevs)
        {
            var a = PciAddress.Parse(address);
            devices.Add(XElement.Parse(HostdevXml.For(HostdevSource.Pci(a), managed: true, display: false)));
        }
        return domain.ToString();
    }

    /// <summary>A host with four GPUs of <paramref name="barGiB"/> GiB BAR1 (and a 32 MiB BAR3) behind their own root ports.</summary>
    private static HostTreeBuilder FourGpuHost(TempRoot root, ulong barGiB, int physBits = 46)
    {
        var b = new HostTreeBuilder(root.Path) { CpuVendor = "GenuineIntel", PhysicalAddressBits = physBits };
        for (var i = 0; i < 4; i++)
        {
            var port = $"0000:00:0{i + 1}.0";
            b.Add(port, 0x8086, 0x347a, 0x060400, d => { d.IommuGroup = 10 + i; d.Driver = "pcieport"; });
            b.Add($"0000:0{i + 1}:00.0", 0x10de, 0x20b5, 0x030200, d =>
            {
                d.Parent = port; d.IommuGroup = 20 + i; d.Driver = "vfio-pci";
                d.Bars.Add(FixtureBar.Mem32(0, 16 * MiB));
                d.Bars.Add(FixtureBar.Mem64Pref(1, barGiB * GiB));
                d.Bars.Add(FixtureBar.Mem64Pref(3, 32 * MiB));
            });
        }
        b.Build();
        return b;
    }

    [Fact]
    public void Reads_the_space_a_guest_has_and_needs_from_its_definition_and_the_hosts_sysfs()
    {
        using var root = new TempRoot();
        FourGpuHost(root, 16);
        var inventory = new PciInventory(new HostRoot(root.Path));
        var xml = Guest("g", hole: "<pcihole64 unit='GiB'>48</pcihole64>", hostdevs: new[] { "0000:01:00.0", "0000:02:00.0" });
        var space = GuestMmio.Evaluate(xml, inventory);
        Assert.Equal(new[] { "0000:01:00.0", "0000:02:00.0" }, space.Hostdevs.Select(a => a.ToString()));
        Assert.Equal(64 * GiB, space.RequiredBytes);
        Assert.Equal(80 * GiB, space.RecommendedBytes);
        Assert.Equal(48 * GiB, space.PciHole64Bytes);
        Assert.Equal(6 * GiB, space.Hole64Start);        // 4 GiB of RAM: 2 GiB stay below 4 GiB, 2 GiB go above
        Assert.Equal(40, space.EffectivePhysBits);        // QEMU's default for a custom CPU model
        Assert.Equal(46, space.HostPhysBits);
        Assert.False(space.HoleFits);
        Assert.True(space.PhysBitsFit);
        Assert.Single(space.Missing);

        // With one more about to be attached, and a function this host does not have.
        var more = GuestMmio.Evaluate(Guest("g", hostdevs: new[] { "0000:01:00.0", "0000:09:00.0" }), inventory, new[] { PciAddress.Parse("0000:03:00.0") });
        Assert.Equal(64 * GiB, more.RequiredBytes);
        Assert.Equal(32 * GiB, more.EffectivePciHole64Bytes);    // q35's default
        Assert.Contains(more.NotSized, n => n.StartsWith("0000:09:00.0 (not on this host", StringComparison.Ordinal));
    }

    [Fact]
    public void Plans_nothing_for_a_guest_that_fits_and_refuses_more_address_bits_than_the_host_has()
    {
        using var root = new TempRoot();
        FourGpuHost(root, 128, physBits: 39);
        var inventory = new PciInventory(new HostRoot(root.Path));
        var empty = GuestMmioPlanner.Propose("g", Guest("g"), active: false, inventory);
        Assert.False(empty.HasChanges);
        Assert.Equal(string.Empty, empty.Diff);

        var four = Guest("g", hostdevs: new[] { "0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0" });
        var e = Assert.Throws<GpuVirtException>(() => GuestMmioPlanner.Propose("g", four, active: false, inventory));
        Assert.Equal(ErrorIds.GuestMmioPhysBitsUnavailable, e.ErrorId);
        Assert.Contains("needs 41 vCPU physical address bits", e.Message);
        Assert.Contains("this host's CPU has 39", e.Message);

        var arm = XElement.Parse(Guest("a"));
        arm.Element("os")!.Element("type")!.SetAttributeValue("arch", "aarch64");
        arm.Element("os")!.Element("type")!.SetAttributeValue("machine", "virt");
        Assert.Equal(ErrorIds.GuestMmioNotSupported, Assert.Throws<GpuVirtException>(() => GuestMmioPlanner.Propose("a", arm.ToString(), false, inventory)).ErrorId);
    }

    private string DefineGuest(string xml)
    {
        var file = Path.Combine(_libvirt.Directory, "g-" + Guid.NewGuid().ToString("N") + ".xml");
        File.WriteAllText(file, xml);
        _libvirt.Virsh().Run(new VirshCommand("define", "--file", file));
        return XElement.Parse(xml).Element("name")!.Value;
    }

    private static string Validate(string xml)
    {
        var file = Path.Combine(Path.GetTempPath(), "gpuvirt-validate-" + Guid.NewGuid().ToString("N") + ".xml");
        try
        {
            File.WriteAllText(file, xml);
            var result = new ProcessRunner().Run("virt-xml-validate", new[] { file, "domain" }, default, check: false);
            Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
            return (result.StandardOutput + result.StandardError).Trim();
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(null, "emulate", "-cpu qemu64,phys-bits=41")]
    // A host CPU model (maximum; host-passthrough needs KVM) told to emulate too few bits gets the host's 46 instead.
    [InlineData("<cpu mode='maximum'><maxphysaddr mode='emulate' bits='40'/></cpu>", "passthrough", "-cpu max,host-phys-bits=on")]
    public void Writes_pcihole64_and_maxphysaddr_that_libvirt_validates_accepts_and_turns_into_qemu_arguments(string? cpu, string mode, string cpuArgument)
    {
        using var root = new TempRoot();
        FourGpuHost(root, 128);
        var inventory = new PciInventory(new HostRoot(root.Path));
        var name = DefineGuest(Guest("mmio-" + Guid.NewGuid().ToString("N")[..8], cpu: cpu,
            hostdevs: new[] { "0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0" }));
        var virsh = _libvirt.Virsh();

        var change = GuestMmioPlanner.Propose(name, virsh.ReadDefinitionForEdit(name), active: false, inventory);
        Assert.True(change.HasChanges);
        // Four 128 GiB + 32 MiB windows of 256 GiB each, plus 128 GiB of headroom.
        Assert.Equal(1152 * GiB, change.NewPciHole64Bytes);
        Assert.Matches(@"(?m)^\+ +<pcihole64 unit=""KiB"">1207959552</pcihole64>$", change.Diff);
        Assert.Matches(mode == "emulate" ? @"(?m)^\+ +<maxphysaddr mode=""emulate"" bits=""41"" />$" : @"(?m)^\+ +<maxphysaddr mode=""passthrough"" />$", change.Diff);
        Assert.DoesNotMatch(@"(?m)^[-+] +<(hostdev|memory|os|name|uuid)", change.Diff);
        Assert.Contains(change.Changes, s => s.StartsWith("Set <pcihole64 unit='KiB'>1207959552</pcihole64> (1.13 TiB)", StringComparison.Ordinal));
        Assert.Equal("validates", Regex.Replace(Validate(change.NewXml), "^.* ", string.Empty));

        // The plan: one define step with the old definition as its inverse, built on the definition as it was read.
        var planner = new GuestMmioPlanner(new ChangeHost(inventory.Root, virsh.Uri), virsh, inventory);
        var plan = planner.Plan(name);
        Assert.Equal(ChangeKind.GuestMmio, plan.Kind);
        Assert.Equal($"guest '{name}'", plan.Target);
        var step = Assert.Single(plan.Steps);
        Assert.True(step.CanUndo);
        Assert.Contains("define --file '<temporary file with the new definition>' --validate", step.Description);
        Assert.Contains(change.Diff.TrimEnd(), plan.Describe());
        Assert.Single(plan.Preconditions);
        Assert.NotNull(plan.Journal);

        var after = new PlanExecutor().Apply(plan);
        Assert.True(after.Fits);
        Assert.Equal(1152 * GiB, after.PciHole64Bytes);
        Assert.Equal(mode, after.MaxPhysAddrMode);
        var record = plan.Journal!();
        Assert.Equal(InverseKind.DefineDomain, Assert.Single(record.Inverse).Kind);
        Assert.Equal(change.BaseXml, record.Inverse[0].Xml);
        Assert.Equal(virsh.ReadDefinitionForEdit(name), record.Inverse[0].ExpectedXml);

        // What QEMU gets, as libvirt builds its command line.
        var argv = virsh.Run(new VirshCommand("domxml-to-native", "--format", "qemu-argv", "--domain", name));
        Assert.Contains("pci-hole64-size=1207959552K", argv);
        Assert.Contains(cpuArgument, argv);

        // Planned again, nothing is left to do.
        Assert.False(planner.Plan(name).HasChanges);
    }

    [Fact]
    public void Refuses_to_write_over_a_definition_that_changed_after_planning()
    {
        using var root = new TempRoot();
        FourGpuHost(root, 16);
        var inventory = new PciInventory(new HostRoot(root.Path));
        var name = DefineGuest(Guest("race-" + Guid.NewGuid().ToString("N")[..8], hostdevs: new[] { "0000:01:00.0", "0000:02:00.0" }));
        var virsh = _libvirt.Virsh();
        var plan = new GuestMmioPlanner(new ChangeHost(inventory.Root, virsh.Uri), virsh, inventory).Plan(name);
        Assert.True(plan.HasChanges);
        var changed = XElement.Parse(virsh.ReadDefinitionForEdit(name));
        changed.Add(new XElement("description", "edited meanwhile"));
        virsh.Define(name, changed.ToString());

        var e = Assert.Throws<GpuVirtException>(() => new PlanExecutor().Apply(plan));
        Assert.Equal(ErrorIds.GuestDefinitionChanged, e.ErrorId);
        Assert.Contains($"the definition of guest '{name}' changed after the change was planned", e.Message);
        Assert.Contains("Nothing was changed", e.Message);
        Assert.Null(GuestMmio.Evaluate(virsh.ReadDefinitionForEdit(name), inventory).PciHole64Bytes);
    }
}
