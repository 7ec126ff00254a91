using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>The kernel argument list inside /etc/default/grub and /etc/kernel/cmdline: parsing and exact, reversible edits.</summary>
public class BootArgumentTests
{
    private const string File = "/etc/default/grub";

    /// <summary>The seed's GRUB_CMDLINE_LINUX (RHEL 7 guide, step 16.13), without and with the IOMMU and stub arguments.</summary>
    private const string SeedValue = "\"rd.lvm.lv=vg_VolGroup00/LogVol01\nvconsole.font=latarcyrheb-sun16 rd.lvm.lv=vg_VolGroup_1/root\nvconsole.keymap=us $([ -x /usr/sbin/rhcrashkernel-param ]  &&\n/usr/sbin/rhcrashkernel-param || :) rhgb quiet";

    private static CmdlineDocument Shell(string text) => CmdlineDocument.ParseShell(text, "GRUB_CMDLINE_LINUX");

    private static EditResult Enable(string text, CpuVendor vendor = CpuVendor.Intel, string[]? ids = null, StubDriver driver = StubDriver.PciStub, bool nouveau = false, bool noPt = false)
    {
        var request = new IommuBootRequest { StubDriver = driver, BlacklistNouveau = nouveau, NoIommuPt = noPt };
        var requirements = IommuBoot.Requirements(vendor, request, IommuBoot.NormalizeIds(ids ?? Array.Empty<string>()));
        return ArgumentEditor.Apply(text, Shell, File, requirements);
    }

    private static string Undo(string text, IReadOnlyList<BootEdit> edits) =>
        ArgumentEditor.Undo(text, Shell, File, BootEditLog.Parse(BootEditLog.Format(edits))).Text;

    [Fact]
    public void The_seed_file_splits_into_its_arguments_with_the_crashkernel_expansion_as_one_opaque_word()
    {
        var doc = Shell(BootFixture.Data("grub/rhel7-sysconfig-grub"));
        Assert.Equal(new[]
        {
            "rd.lvm.lv=vg_VolGroup00/LogVol01", "vconsole.font=latarcyrheb-sun16", "rd.lvm.lv=vg_VolGroup_1/root", "vconsole.keymap=us",
            "$([ -x /usr/sbin/rhcrashkernel-param ]  &&\n/usr/sbin/rhcrashkernel-param || :)", "rhgb", "quiet",
        }, doc.Words.Select(w => w.Text));
        Assert.True(doc.Words[4].IsOpaque);
        Assert.All(doc.Words.Where(w => w.Index != 4), w => Assert.True(w.IsSimple));
    }

    [Fact]
    public void Enabling_on_the_seed_file_gives_the_guides_step_16_13_and_16_14_lines_byte_for_byte()
    {
        var original = BootFixture.Data("grub/rhel7-sysconfig-grub");
        var iommu = Enable(original);
        Assert.Equal(original.Replace(SeedValue + "\"", SeedValue + " intel_iommu=on iommu=pt\""), iommu.Text);
        Assert.Contains("/usr/sbin/rhcrashkernel-param || :) rhgb quiet intel_iommu=on iommu=pt\"\nGRUB_DISABLE_RECOVERY=\"true\"\n", iommu.Text);

        var stub = Enable(original, ids: new[] { "10de:11fa" });
        Assert.Equal(original.Replace(SeedValue + "\"", SeedValue + " intel_iommu=on iommu=pt pci-stub.ids=10de:11fa\""), stub.Text);
        Assert.Equal(new[] { "+intel_iommu=on", "+iommu=pt", "+pci-stub.ids=10de:11fa" }, stub.Edits.Select(e => e.ToString()));
    }

    [Fact]
    public void Amd_gets_only_iommu_pt_and_no_pt_leaves_it_out()
    {
        var original = BootFixture.Data("grub/rhel7-sysconfig-grub");
        Assert.Contains("rhgb quiet iommu=pt\"\nGRUB_DISABLE_RECOVERY", Enable(original, CpuVendor.Amd).Text);
        var intelNoPt = Enable(original, noPt: true).Text;
        Assert.Contains("rhgb quiet intel_iommu=on\"", intelNoPt);
        Assert.Empty(Enable(original, CpuVendor.Amd, noPt: true).Edits);
    }

    [Fact]
    public void A_second_run_changes_nothing()
    {
        var once = Enable(BootFixture.Data("grub/rhel7-sysconfig-grub"), ids: new[] { "10de:11fa", "10de:0e0b" }, nouveau: true);
        var twice = Enable(once.Text, ids: new[] { "10DE:11FA", "10de:0e0b" }, nouveau: true);
        Assert.Empty(twice.Edits);
        Assert.Equal(once.Text, twice.Text);
        Assert.Contains("pci-stub.ids=10de:11fa,10de:0e0b modprobe.blacklist=nouveau\"", once.Text);
    }

    [Fact]
    public void Conflicting_values_are_replaced_in_place_never_duplicated_and_come_back_on_undo()
    {
        var original = BootFixture.Data("grub/iommu-off-grub");
        var result = Enable(original);
        Assert.Contains("GRUB_CMDLINE_LINUX=\"crashkernel=auto rhgb iommu=pt quiet intel_iommu=on\"\n", result.Text);
        Assert.Equal(new[] { "intel_iommu=off -> intel_iommu=on", "iommu=off -> iommu=pt" }, result.Edits.Select(e => e.ToString()));
        Assert.Equal(original, Undo(result.Text, result.Edits));

        // With -NoIommuPt, iommu=off (which turns the IOMMU off) simply goes.
        var noPt = Enable(original, noPt: true);
        Assert.Contains("GRUB_CMDLINE_LINUX=\"crashkernel=auto rhgb quiet intel_iommu=on\"\n", noPt.Text);
        Assert.Equal(original, Undo(noPt.Text, noPt.Edits));

        // AMD: amd_iommu=off goes, an option list keeps its other options.
        var amd = "GRUB_CMDLINE_LINUX=\"quiet amd_iommu=off iommu=nopt,off\"\n";
        var amdResult = Enable(amd, CpuVendor.Amd);
        Assert.Equal("GRUB_CMDLINE_LINUX=\"quiet iommu=pt\"\n", amdResult.Text);
        Assert.Equal(amd, Undo(amdResult.Text, amdResult.Edits));
    }

    [Fact]
    public void Stub_ids_merge_into_an_existing_list_and_undo_leaves_the_users_ids()
    {
        var original = BootFixture.Data("grub/pci-stub-grub");
        var result = Enable(original, ids: new[] { "10de:11fa", "8086:1572" });
        Assert.Contains("\"crashkernel=auto rhgb quiet pci-stub.ids=8086:1572,10de:11fa intel_iommu=on iommu=pt\"", result.Text);
        Assert.Equal(new[] { "+iommu=pt", "+pci-stub.ids=10de:11fa" }, result.Edits.Select(e => e.ToString()));
        Assert.Equal(original, Undo(result.Text, result.Edits));
    }

    [Fact]
    public void Choosing_vfio_pci_moves_an_id_off_the_pci_stub_list()
    {
        var original = "GRUB_CMDLINE_LINUX=\"quiet pci-stub.ids=10de:11fa,8086:1572\"\n";
        var result = Enable(original, ids: new[] { "10de:11fa" }, driver: StubDriver.VfioPci);
        Assert.Equal("GRUB_CMDLINE_LINUX=\"quiet pci-stub.ids=8086:1572 intel_iommu=on iommu=pt vfio-pci.ids=10de:11fa\"\n", result.Text);
        Assert.Equal(original, Undo(result.Text, result.Edits));
    }

    [Fact]
    public void The_kernel_treats_dash_and_underscore_alike_in_keys()
    {
        var result = Enable("GRUB_CMDLINE_LINUX=\"pci_stub.ids=8086:1572\"\n", ids: new[] { "10de:11fa" });
        Assert.Equal("GRUB_CMDLINE_LINUX=\"pci_stub.ids=8086:1572,10de:11fa intel_iommu=on iommu=pt\"\n", result.Text);
    }

    [Fact]
    public void A_missing_variable_is_added_with_a_marker_and_removed_again()
    {
        var original = BootFixture.Data("grub/no-cmdline-grub");
        var result = Enable(original);
        Assert.Equal(original + CmdlineDocument.AddedAssignmentMarker + "\nGRUB_CMDLINE_LINUX=\"intel_iommu=on iommu=pt\"\n", result.Text);
        Assert.Equal(original, Undo(result.Text, result.Edits));

        var noNewline = original.TrimEnd('\n');
        var r2 = Enable(noNewline);
        Assert.EndsWith("\"true\"\n" + CmdlineDocument.AddedAssignmentMarker + "\nGRUB_CMDLINE_LINUX=\"intel_iommu=on iommu=pt\"", r2.Text);
        Assert.Equal(noNewline, Undo(r2.Text, r2.Edits));
        Assert.Equal(string.Empty, Undo(Enable(string.Empty).Text, Enable(string.Empty).Edits));
    }

    [Fact]
    public void Single_quotes_comments_and_unquoted_values_keep_every_other_byte()
    {
        var single = BootFixture.Data("grub/single-quoted-grub");
        var s = Enable(single);
        Assert.Contains("GRUB_CMDLINE_LINUX='crashkernel=auto rd.lvm.lv=rhel/root rhgb quiet intel_iommu=on iommu=pt'\n", s.Text);
        Assert.Equal(single, Undo(s.Text, s.Edits));

        var comments = BootFixture.Data("grub/comments-grub");
        var c = Enable(comments);
        Assert.Equal(comments.Replace("GRUB_CMDLINE_LINUX=\"rhgb quiet\" #", "GRUB_CMDLINE_LINUX=\"rhgb quiet intel_iommu=on iommu=pt\" #"), c.Text);
        Assert.Equal(comments, Undo(c.Text, c.Edits));

        foreach (var unquoted in new[] { "GRUB_CMDLINE_LINUX=quiet\n", "GRUB_CMDLINE_LINUX=\nX=1\n", "GRUB_CMDLINE_LINUX=\"quiet\"$EXTRA\n" })
        {
            var u = Enable(unquoted);
            Assert.Contains(u.Edits, e => e.Kind == BootEditKind.QuotedRun);
            Assert.Equal(unquoted, Undo(u.Text, u.Edits));
        }
        Assert.Equal("GRUB_CMDLINE_LINUX=quiet\" intel_iommu=on iommu=pt\"\n", Enable("GRUB_CMDLINE_LINUX=quiet\n").Text);
        Assert.Equal("GRUB_CMDLINE_LINUX=\"quiet\"$EXTRA\" intel_iommu=on iommu=pt\"\n", Enable("GRUB_CMDLINE_LINUX=\"quiet\"$EXTRA\n").Text);
    }

    [Fact]
    public void Trailing_and_leading_whitespace_inside_the_quotes_stays_where_it_was()
    {
        foreach (var value in new[] { "\"quiet \"", "\" \"", "\"\"", "\"  quiet\n\"", "\"quiet\\\n\"", "\"a  \\\"b c\\\"\"" })
        {
            var text = "GRUB_CMDLINE_LINUX=" + value + "\n";
            var r = Enable(text, ids: new[] { "10de:11fa" }, nouveau: true);
            Assert.Equal(4, r.Edits.Count);
            Assert.Equal(text, Undo(r.Text, r.Edits));
            Assert.Empty(Enable(r.Text, ids: new[] { "10de:11fa" }, nouveau: true).Edits);
        }
    }

    [Fact]
    public void Only_the_last_assignment_counts_unless_it_builds_on_the_earlier_one()
    {
        var overridden = "GRUB_CMDLINE_LINUX=\"iommu=off\"\nGRUB_CMDLINE_LINUX=\"quiet\"\n";
        var r = Enable(overridden);
        Assert.Equal("GRUB_CMDLINE_LINUX=\"iommu=off\"\nGRUB_CMDLINE_LINUX=\"quiet intel_iommu=on iommu=pt\"\n", r.Text);

        var extended = "GRUB_CMDLINE_LINUX=\"iommu=off\"\nif true; then GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX quiet\"; fi\n";
        var e = Enable(extended);
        Assert.Equal("GRUB_CMDLINE_LINUX=\"iommu=pt\"\nif true; then GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX quiet intel_iommu=on\"; fi\n", e.Text);
        Assert.Equal(extended, Undo(e.Text, e.Edits));
    }

    [Fact]
    public void Assignments_inside_quotes_comments_or_other_commands_are_not_assignments()
    {
        var text = "X=\"\nGRUB_CMDLINE_LINUX=\\\"iommu=off\\\"\n\"\n# GRUB_CMDLINE_LINUX=\"a\"\necho GRUB_CMDLINE_LINUX=\"b\"\nGRUB_CMDLINE_LINUX=\"quiet\"\n";
        var doc = Shell(text);
        Assert.Equal(new[] { "quiet" }, doc.Words.Select(w => w.Text));
    }

    [Fact]
    public void An_unterminated_quote_is_a_malformed_file_error_with_its_line()
    {
        var e = Assert.Throws<GpuVirtException>(() => Shell("GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"quiet $(echo \")\"\n"));
        Assert.Equal(ErrorIds.BootFileMalformed, e.ErrorId);
        Assert.Contains("Line 2", e.Message);
    }

    [Fact]
    public void A_managed_argument_written_with_an_expansion_is_refused_not_guessed()
    {
        var e = Assert.Throws<GpuVirtException>(() => Enable("GRUB_CMDLINE_LINUX=\"quiet iommu=$MODE\"\n"));
        Assert.Equal(ErrorIds.BootArgumentNotEditable, e.ErrorId);
        Assert.Contains("iommu=$MODE", e.Message);
        // An expansion that is a whole word of its own is left alone.
        Assert.Equal("GRUB_CMDLINE_LINUX=\"$EXTRA quiet intel_iommu=on iommu=pt\"\n", Enable("GRUB_CMDLINE_LINUX=\"$EXTRA quiet\"\n").Text);
    }

    [Fact]
    public void Ids_are_checked_and_normalized()
    {
        Assert.Equal(new[] { "10de:11fa", "10de:0e0b" }, IommuBoot.NormalizeIds(new[] { "10DE:11FA", "0x10de:0x0e0b", "10de:11fa" }));
        var e = Assert.Throws<GpuVirtException>(() => IommuBoot.NormalizeIds(new[] { "10de-11fa" }));
        Assert.Equal(ErrorIds.InvalidStubId, e.ErrorId);
    }

    [Fact]
    public void A_plain_kernel_cmdline_file_is_edited_and_restored_the_same_way()
    {
        foreach (var text in new[] { "root=UUID=7f3c rw quiet\n", "root=/dev/sda1 quiet", "\n", string.Empty, "quiet iommu=off\n" })
        {
            var requirements = IommuBoot.Requirements(CpuVendor.Intel, new IommuBootRequest(), new[] { "10de:11fa" });
            var r = ArgumentEditor.Apply(text, CmdlineDocument.ParsePlain, "/etc/kernel/cmdline", requirements);
            Assert.Contains("intel_iommu=on", r.Text);
            Assert.Equal(text, ArgumentEditor.Undo(r.Text, CmdlineDocument.ParsePlain, "/etc/kernel/cmdline", r.Edits).Text);
        }
        var first = ArgumentEditor.Apply("root=UUID=7f3c rw quiet\n", CmdlineDocument.ParsePlain, "/etc/kernel/cmdline",
            IommuBoot.Requirements(CpuVendor.Intel, new IommuBootRequest(), Array.Empty<string>()));
        Assert.Equal("root=UUID=7f3c rw quiet intel_iommu=on iommu=pt\n", first.Text);
    }

    [Fact]
    public void The_edit_record_round_trips_any_whitespace()
    {
        var edits = new[]
        {
            new BootEdit { Kind = BootEditKind.Drop, File = "/etc/default/grub", Key = "amd_iommu", Word = "amd_iommu=off", Index = 3, Separator = "\n\t \\", SeparatorBefore = true },
            new BootEdit { Kind = BootEditKind.CreatedFile, File = "/etc/kernel/cmdline", Word = "root=x\n" },
        };
        var back = BootEditLog.Parse(BootEditLog.Format(edits));
        Assert.Equal("\n\t \\", back[0].Separator);
        Assert.Equal("root=x\n", back[1].Word);
        Assert.True(back[0].SeparatorBefore);
        var e = Assert.Throws<GpuVirtException>(() => BootEditLog.Parse("Add\tbroken\n"));
        Assert.Equal(ErrorIds.BootFileMalformed, e.ErrorId);
    }

    public static TheoryData<string> DataFiles() => new()
    {
        "grub/rhel7-sysconfig-grub", "grub/debian12-default-grub", "grub/ubuntu2204-default-grub", "grub/rhel9-default-grub",
        "grub/no-cmdline-grub", "grub/single-quoted-grub", "grub/comments-grub", "grub/iommu-off-grub", "grub/pci-stub-grub",
    };

    /// <summary>Every data file, every kind of request: enable is idempotent, undo is the identity, nothing else moves.</summary>
    [Theory]
    [MemberData(nameof(DataFiles))]
    public void Enable_then_undo_gives_back_every_data_file_byte_for_byte(string name)
    {
        var original = BootFixture.Data(name);
        var requests = new (CpuVendor, string[], StubDriver, bool, bool)[]
        {
            (CpuVendor.Intel, Array.Empty<string>(), StubDriver.PciStub, false, false),
            (CpuVendor.Amd, Array.Empty<string>(), StubDriver.PciStub, false, false),
            (CpuVendor.Intel, new[] { "10de:11fa", "10de:0e0b" }, StubDriver.PciStub, true, false),
            (CpuVendor.Intel, new[] { "10de:11fa", "8086:1572" }, StubDriver.VfioPci, false, true),
            (CpuVendor.Amd, new[] { "1002:73a3" }, StubDriver.VfioPci, true, false),
        };
        foreach (var (vendor, ids, driver, nouveau, noPt) in requests)
        {
            var once = Enable(original, vendor, ids, driver, nouveau, noPt);
            var twice = Enable(once.Text, vendor, ids, driver, nouveau, noPt);
            Assert.Empty(twice.Edits);
            Assert.Equal(original, Undo(once.Text, once.Edits));
            AssertOnlyTheValueChanged(original, once.Text);
            var words = Shell(once.Text).Words.Select(w => w.Text).ToList();
            foreach (var id in ids)
            {
                Assert.Single(words, w => KernelArguments.SameKey(KernelArguments.KeyOf(w), KernelArguments.IdsKey(driver)) && KernelArguments.ItemsOf(w).Contains(id));
            }
            Assert.DoesNotContain("iommu=off", words);
            if (vendor == CpuVendor.Intel) Assert.DoesNotContain("intel_iommu=off", words);
        }
    }

    /// <summary>Random values built from the pieces real files have: the same three properties hold for each.</summary>
    [Fact]
    public void Random_values_keep_the_three_properties()
    {
        var random = new Random(20260126);
        var pieces = new[]
        {
            "quiet", "rhgb", "iommu=off", "intel_iommu=off", "iommu=pt", "intel_iommu=on", "pci-stub.ids=8086:1572", "vfio-pci.ids=10de:11fa",
            "$(echo \"a b\" || :)", "${X:-y}", "`uname -r`", "crashkernel=1G-4G:192M,4G-64G:256M", "\\\"q\\\"", "modprobe.blacklist=nouveau,radeon",
            "amd_iommu=off", "intel_iommu=on,igfx_off",
        };
        var gaps = new[] { " ", "  ", "\n", " \\\n", "\t" };
        for (var n = 0; n < 1000; n++)
        {
            var count = random.Next(0, 7);
            var body = string.Concat(Enumerable.Range(0, count).Select(_ => pieces[random.Next(pieces.Length)] + gaps[random.Next(gaps.Length)]));
            if (random.Next(2) == 0) body = body.TrimEnd(' ', '\t');
            var quote = random.Next(3) == 0 ? "'" : "\"";
            if (quote == "'") body = body.Replace("\\\n", "\n");
            var text = "A=1\nGRUB_CMDLINE_LINUX=" + quote + body + quote + "\nB=2\n";
            var vendor = random.Next(2) == 0 ? CpuVendor.Intel : CpuVendor.Amd;
            var ids = random.Next(2) == 0 ? new[] { "10de:11fa" } : new[] { "10de:11fa", "8086:1572" };
            var driver = random.Next(2) == 0 ? StubDriver.PciStub : StubDriver.VfioPci;
            var once = Enable(text, vendor, ids, driver, nouveau: true);
            Assert.Empty(Enable(once.Text, vendor, ids, driver, nouveau: true).Edits);
            var back = Undo(once.Text, once.Edits);
            Assert.True(text == back, $"{vendor} {string.Join(",", ids)} {driver}\nIN:   [{text}]\nMID:  [{once.Text}]\nBACK: [{back}]\nEDITS: {string.Join(" ; ", once.Edits)}");
            AssertOnlyTheValueChanged(text, once.Text);
        }
    }

    /// <summary>Outside the GRUB_CMDLINE_LINUX value (or after the file, for a block the module adds), every byte is the same.</summary>
    private static void AssertOnlyTheValueChanged(string before, string after)
    {
        if (before == after) return;
        var assignments = ShellScanner.FindAssignments(before, "GRUB_CMDLINE_LINUX");
        if (assignments.Count == 0)
        {
            Assert.StartsWith(before, after);
            return;
        }
        var value = assignments[assignments.Count - 1];
        var prefix = 0;
        while (prefix < before.Length && prefix < after.Length && before[prefix] == after[prefix]) prefix++;
        var suffix = 0;
        while (suffix < before.Length - prefix && suffix < after.Length - prefix && before[before.Length - 1 - suffix] == after[after.Length - 1 - suffix]) suffix++;
        Assert.True(prefix >= value.ValueStart, $"a byte before the value changed (at {prefix}, value starts at {value.ValueStart})");
        Assert.True(before.Length - suffix <= value.ValueEnd, $"a byte after the value changed (at {before.Length - suffix}, value ends at {value.ValueEnd}):\n[{before}]\n[{after}]");
    }
}
