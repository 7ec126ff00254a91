using System.Text;
using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class JournalTests
{
    private static string JournalFile(TempRoot root) => Path.Combine(root.Path, "var/lib/gpuvirt/journal.json");

    private static ChangeRecord Sample(string target) => new()
    {
        Target = target,
        Action = "Test change",
        Inverse = { new InverseStep { Kind = InverseKind.RestoreFiles, Description = "put back " + target, Files = new() } },
    };

    [Fact]
    public void Appends_records_with_the_next_id_under_the_root_and_reads_them_back_with_every_field()
    {
        using var root = new TempRoot();
        var recorder = new ChangeRecorder(new HostRoot(root.Path), "qemu:///embed?root=/x", "Add-GpuHostdev", "Add-GpuHostdev vm1 -Address 02:00.0");
        recorder.Check();
        var record = Sample("guest 'vm1'");
        record.Details.Add(new ChangeDetail("PCI hostdev 0000:02:00.0", null, "attached"));
        record.FileChanges.Add(new ChangeFile { Path = "/etc/x", Action = BootFileAction.Created, AfterSha256 = "ab" });
        var first = recorder.Record(record);
        var second = recorder.Record(Sample("0000:02:00.1"));

        Assert.Equal(1, first.Id);
        Assert.Equal(2, second.Id);
        var read = new ChangeJournal(new HostRoot(root.Path)).Read();
        Assert.Equal(new long[] { 1, 2 }, read.Select(r => r.Id));
        var r1 = read[0];
        Assert.Equal("Add-GpuHostdev", r1.Command);
        Assert.Equal("Add-GpuHostdev vm1 -Address 02:00.0", r1.CommandLine);
        Assert.Equal("qemu:///embed?root=/x", r1.Connect);
        Assert.Equal(root.Path, r1.Root);
        Assert.Equal(Environment.UserName, r1.User.Split(' ')[0]);
        Assert.True((DateTime.UtcNow - r1.Time).TotalMinutes < 5);
        Assert.Equal("attached", r1.Details.Single().After);
        Assert.Equal(BootFileAction.Created, r1.FileChanges.Single().Action);
        Assert.Equal(InverseKind.RestoreFiles, r1.Inverse.Single().Kind);
        Assert.False(r1.Undone);
        var text = File.ReadAllText(JournalFile(root));
        Assert.Contains("\"Format\": \"GpuVirt change journal\"", text);
        Assert.Contains("\"Version\": 1", text);
        Assert.Contains("\"Kind\": \"RestoreFiles\"", text);
    }

    [Fact]
    public void An_undo_record_marks_the_record_it_took_back()
    {
        using var root = new TempRoot();
        var journal = new ChangeJournal(new HostRoot(root.Path));
        journal.Append(Sample("a"));
        journal.Append(new ChangeRecord { Target = "a", Action = "Undo change 1", Undoes = 1 });
        var read = journal.Read();
        Assert.Equal(2, read[0].UndoneBy);
        Assert.True(read[0].Undone);
        Assert.False(read[0].CanUndo);
        Assert.False(read[1].CanUndo);
        Assert.Empty(ChangeUndo.Undoable(read));
    }

    [Theory]
    [InlineData("{ not json", "JournalUnreadable")]
    [InlineData("{\"Format\": \"something else\", \"Version\": 1, \"Records\": []}", "JournalUnreadable")]
    [InlineData("{\"Format\": \"GpuVirt change journal\", \"Version\": 1, \"Records\": [{\"Id\": 1}, {\"Id\": 1}]}", "JournalUnreadable")]
    [InlineData("{\"Format\": \"GpuVirt change journal\", \"Version\": 2, \"Records\": []}", "JournalVersionNotSupported")]
    public void An_unreadable_or_newer_journal_is_a_clear_error_and_is_left_as_it_is(string content, string errorId)
    {
        using var root = new TempRoot();
        Directory.CreateDirectory(Path.GetDirectoryName(JournalFile(root))!);
        File.WriteAllText(JournalFile(root), content);
        var host = new HostRoot(root.Path);
        var e = Assert.Throws<GpuVirtException>(() => new ChangeJournal(host).Read());
        Assert.Equal(errorId, e.ErrorId);
        Assert.Contains(ChangeJournal.HostPath, e.Message);
        // A command checks before it changes anything, and the record is never written over the file.
        var check = Assert.Throws<GpuVirtException>(() => new ChangeRecorder(host, null, "Enable-IommuBoot", "x").Check());
        Assert.Equal(errorId, check.ErrorId);
        Assert.Throws<GpuVirtException>(() => new ChangeJournal(host).Append(Sample("x")));
        Assert.Equal(content, File.ReadAllText(JournalFile(root)));
    }

    [Fact]
    public void The_boot_edit_record_of_a_host_without_a_journal_becomes_its_first_record()
    {
        using var root = new TempRoot();
        var edits = new[]
        {
            new BootEdit { Kind = BootEditKind.Add, File = "/etc/default/grub", Key = "intel_iommu", Item = "on", Word = "intel_iommu=on", Index = 1, Separator = " " },
        };
        var tsv = Path.Combine(root.Path, "var/lib/gpuvirt/boot-edits.tsv");
        Directory.CreateDirectory(Path.GetDirectoryName(tsv)!);
        File.WriteAllText(tsv, BootEditLog.Format(edits));
        var journal = new ChangeJournal(new HostRoot(root.Path));

        var listed = journal.Read();
        var imported = Assert.Single(listed);
        Assert.Equal("Enable-IommuBoot", imported.Command);
        Assert.Equal("/etc/default/grub", imported.Target);
        Assert.Equal("intel_iommu=on", imported.Details.Single().After);
        Assert.Equal(InverseKind.UndoBootEdits, imported.Inverse.Single().Kind);
        Assert.False(File.Exists(JournalFile(root)));   // reading writes nothing

        var next = journal.Append(Sample("b"));
        Assert.Equal(2, next.Id);
        Assert.Equal(new[] { "Enable-IommuBoot", "" }, journal.Read().Select(r => r.Command));
    }

    [Fact]
    public void An_undo_puts_files_back_byte_for_byte_and_refuses_a_file_edited_since_unless_forced()
    {
        using var root = new TempRoot();
        var host = new HostRoot(root.Path);
        var etc = Path.Combine(root.Path, "etc");
        Directory.CreateDirectory(etc);
        var original = "GRUB_CMDLINE_LINUX=\"quiet\xe9\"\r\n\t\n";
        File.WriteAllBytes(Path.Combine(etc, "grub"), HostFiles.Bytes.GetBytes(original));
        var changed = "GRUB_CMDLINE_LINUX=\"quiet intel_iommu=on\"\n";
        File.WriteAllText(Path.Combine(etc, "grub"), changed);
        File.WriteAllText(Path.Combine(etc, "new.conf"), "blacklist nouveau\n");
        var record = new ChangeRecord
        {
            Target = "/etc/grub",
            Action = "Edit",
            Inverse =
            {
                new InverseStep
                {
                    Kind = InverseKind.RestoreFiles,
                    Description = "put back",
                    Files = new()
                    {
                        new FileState { Path = "/etc/grub", Content = Convert.ToBase64String(HostFiles.Bytes.GetBytes(original)), Expected = Hash(changed) },
                        new FileState { Path = "/etc/new.conf", Content = null, Expected = Hash("blacklist nouveau\n") },
                    },
                },
            },
        };
        var journal = new ChangeJournal(host);
        journal.Append(record);
        var undo = new ChangeUndo(host, new ProcessRunner());

        File.AppendAllText(Path.Combine(etc, "grub"), "# by hand\n");
        var plan = undo.Plan(journal.Read()[0]);
        var conflict = Assert.Single(plan.Conflicts);
        Assert.Equal(ErrorIds.JournalTargetChanged, conflict.ErrorId);
        Assert.Contains("'/etc/grub' was edited since", conflict.Message);
        using (var session = journal.Open())
        {
            var refused = Assert.Throws<GpuVirtException>(() => undo.Apply(undo.Plan(session.Find(1)!), session, "Undo-GpuVirtChange -Id 1", force: false));
            Assert.Equal(ErrorIds.JournalTargetChanged, refused.ErrorId);
        }
        Assert.EndsWith("# by hand\n", File.ReadAllText(Path.Combine(etc, "grub")));
        Assert.True(File.Exists(Path.Combine(etc, "new.conf")));

        using (var session = journal.Open())
        {
            var done = undo.Apply(undo.Plan(session.Find(1)!), session, "Undo-GpuVirtChange -Id 1 -Force", force: true);
            Assert.Equal(1, done.Undoes);
            Assert.Equal(2, done.Id);
        }
        Assert.Equal(HostFiles.Bytes.GetBytes(original), File.ReadAllBytes(Path.Combine(etc, "grub")));
        Assert.False(File.Exists(Path.Combine(etc, "new.conf")));
        // The hand edit that -Force went over is kept next to the file.
        var kept = Directory.GetFiles(etc, "grub.gpuvirt-*.bak").Single();
        Assert.EndsWith("# by hand\n", File.ReadAllText(kept));
        Assert.True(journal.Read()[0].Undone);
        var again = Assert.Throws<GpuVirtException>(() => undo.Plan(journal.Read()[0]));
        Assert.Equal(ErrorIds.JournalChangeAlreadyUndone, again.ErrorId);
    }

    private static string Hash(string text) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(HostFiles.Bytes.GetBytes(text))).ToLowerInvariant();
}

public class JournalVgpuTests
{
    private const string Uuid = "30820a6f-b1a5-4503-91ca-0c10ba58692a";

    [Fact]
    public void A_removed_persistent_vGPU_is_made_again_and_the_create_taken_back_newest_first_stand_in_mdev_driver()
    {
        using var root = new TempRoot();
        SampleHosts.Seed(root.Path).Build();
        using var driver = new MdevDriverStandIn(root.Path);
        var host = new HostRoot(root.Path);
        var recorder = new ChangeRecorder(host, null, "New-VgpuDevice", "New-VgpuDevice 01:00.0 nvidia-63 -Persistent");
        var manager = new VgpuManager(new VgpuInventory(host), new ProcessRunner()) { Recorder = recorder };
        var type = manager.Inventory.Types("0000:01:00.0")!.Single(t => t.Id == "nvidia-63");
        var device = manager.Create(type, Uuid, persistent: true);
        manager.Remove(manager.Inventory.Devices().Single(d => d.Uuid == Uuid), persistent: true, ownerOf: null);
        var definition = Path.Combine(root.Path, "etc/mdevctl.d/0000:01:00.0", Uuid);
        Assert.False(File.Exists(definition));

        var journal = new ChangeJournal(host);
        var records = journal.Read();
        Assert.Equal(new[] { InverseKind.RemoveVgpu, InverseKind.CreateVgpu }, records.Select(r => r.Inverse.Single().Kind));
        Assert.True(records[0].Inverse[0].Persistent);
        var undo = new ChangeUndo(host, new ProcessRunner());
        foreach (var record in ChangeUndo.Undoable(records))
        {
            using var session = journal.Open();
            var plan = undo.Plan(session.Find(record.Id)!);
            Assert.Empty(plan.Conflicts);
            undo.Apply(plan, session, "Undo-GpuVirtChange", force: false);
            if (record.Id == 2)
            {
                Assert.True(File.Exists(definition));
                Assert.True(Directory.Exists(Path.Combine(root.Path, "sys/bus/mdev/devices", Uuid)));
            }
        }
        Assert.False(File.Exists(definition));
        Assert.False(Directory.Exists(Path.Combine(root.Path, "sys/bus/mdev/devices", Uuid)));
        Assert.Equal(new[] { $"create nvidia-63 {Uuid}", $"remove {Uuid}", $"create nvidia-63 {Uuid}", $"remove {Uuid}" }, driver.Log);
        Assert.All(journal.Read().Where(r => r.Undoes is null), r => Assert.True(r.Undone));
        // The device is gone now: taking the create back again is refused, naming it.
        var gone = new ChangeRecord { Id = 9, Command = "New-VgpuDevice", Target = Uuid, Inverse = { records[0].Inverse[0] } };
        Assert.Contains("is gone", Assert.Single(undo.Plan(gone).Conflicts).Message);
        Assert.Equal(Uuid, device.Uuid);
    }
}
