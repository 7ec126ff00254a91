using System.Runtime.InteropServices;
using System.Text;
using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;

namespace GpuVirt.Tests;

/// <summary>
/// The low-level readers and the journal's own files on hostile or odd input (issue 29): FIFOs where a file should be,
/// files past any sensible size, the journal's encoding and ids, and the temporary files of killed atomic writes.
/// </summary>
public class FieldFilesTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(byte[] path, int mode);

    private static string Fifo(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        Assert.Equal(0, mkfifo(Encoding.UTF8.GetBytes(path + "\0"), 0x1a4));
        return path;
    }

    [Fact]
    public void Item20_every_low_level_reader_refuses_a_FIFO_by_name_instead_of_waiting_for_a_writer()
    {
        using var root = new TempRoot();
        var fifo = Fifo(root.Path, "vendor");

        Assert.Equal(ErrorIds.HostFileNotRegular, Assert.Throws<GpuVirtException>(() => Sysfs.TryReadText(fifo)).ErrorId);
        Assert.Equal(ErrorIds.HostFileNotRegular, Assert.Throws<GpuVirtException>(() => FileReads.ReadBytes(fifo, "/etc/default/grub")).ErrorId);
        using var dir = SysfsDirectory.TryOpen(root.Path)!;
        Assert.Equal(ErrorIds.HostFileNotRegular, Assert.Throws<GpuVirtException>(() => dir.Text(SysfsDirectory.Name("vendor"))).ErrorId);
        Assert.Equal(ErrorIds.HostFileNotRegular, Assert.Throws<GpuVirtException>(() => dir.Hex(SysfsDirectory.Name("vendor"))).ErrorId);
    }

    [Fact]
    public void Item20_a_FIFO_with_a_writer_is_refused_too_whatever_it_has_written()
    {
        using var root = new TempRoot();
        var fifo = Fifo(root.Path, "cmdline");
        // A writer that holds the FIFO open (O_RDWR never blocks on a FIFO), with data and without.
        using var writer = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle((IntPtr)OpenReadWrite(fifo), true), FileAccess.ReadWrite);
        Assert.Equal(ErrorIds.HostFileNotRegular, Assert.Throws<GpuVirtException>(() => Sysfs.TryReadText(fifo)).ErrorId);
        writer.Write(new byte[9000]);
        writer.Flush();
        Assert.Equal(ErrorIds.HostFileNotRegular, Assert.Throws<GpuVirtException>(() => Sysfs.TryReadText(fifo)).ErrorId);
    }

    private static int OpenReadWrite(string path) => LibC.open(LibC.Path(path), OpenFlags.ReadWrite | OpenFlags.NonBlock | OpenFlags.CloseOnExec);

    [Fact]
    public void Item20_reads_stop_at_their_bound_and_an_attribute_over_a_page_still_reads()
    {
        using var root = new TempRoot();
        var big = Path.Combine(root.Path, "big");
        using (var f = new FileStream(big, FileMode.CreateNew)) f.SetLength(2L * 1024 * 1024);
        var text = new string('a', 20000) + "\n";
        File.WriteAllText(Path.Combine(root.Path, "long"), text);
        Assert.Equal(ErrorIds.HostFileTooLarge, Assert.Throws<GpuVirtException>(() => FileReads.ReadBytes(big, "/x", 1024 * 1024)).ErrorId);
        using var dir = SysfsDirectory.TryOpen(root.Path)!;
        Assert.Equal(ErrorIds.HostFileTooLarge, Assert.Throws<GpuVirtException>(() => dir.Text(SysfsDirectory.Name("big"))).ErrorId);

        Assert.Equal(text.Trim(), Sysfs.TryReadText(Path.Combine(root.Path, "long")));
        Assert.Equal(text.Trim(), dir.Text(SysfsDirectory.Name("long")));
        Assert.Null(Sysfs.TryReadText(Path.Combine(root.Path, "missing")));
        Assert.Null(Sysfs.TryReadText(root.Path));
    }

    [Fact]
    public void Item24_journal_text_is_UTF8_and_a_journal_of_an_older_GpuVirt_reads_as_it_was_written()
    {
        var text = "GPU \u2713 \u65e5\u672c caf\u00e9";
        Assert.Equal(text, ChangeJournal.Decode(Encoding.UTF8.GetBytes(text)));
        // An older GpuVirt wrote one byte per character (what it kept of U+0080..U+00FF).
        Assert.Equal("caf\u00e9 r\u00e9sum\u00e9", ChangeJournal.Decode(Encoding.Latin1.GetBytes("caf\u00e9 r\u00e9sum\u00e9")));

        var record = new ChangeRecord { Id = 1, Target = "guest '\u4ed5\u4e8b-vm'", Action = text, Command = "Set-VgpuConsole", CommandLine = "x" };
        var bytes = ChangeJournal.Utf8.GetBytes(ChangeJournal.Format(new[] { record }));
        var back = ChangeJournal.Parse(new UTF8Encoding(false, true).GetString(bytes)).Single();
        Assert.Equal(record.Target, back.Target);
        Assert.Equal(text, back.Action);
    }

    [Fact]
    public void Item26_ids_go_on_past_Int32_MaxValue_and_the_last_id_there_is_is_refused_by_name()
    {
        var after = JournalSession.NextId(new[] { new ChangeRecord { Id = int.MaxValue } });
        Assert.Equal((long)int.MaxValue + 1, after);
        var journal = ChangeJournal.Parse(ChangeJournal.Format(new[] { new ChangeRecord { Id = after, Undoes = int.MaxValue } }));
        Assert.Equal(after, journal.Single().Id);
        Assert.Equal(int.MaxValue, journal.Single().Undoes);
        var e = Assert.Throws<GpuVirtException>(() => JournalSession.NextId(new[] { new ChangeRecord { Id = long.MaxValue } }));
        Assert.Equal(ErrorIds.JournalIdsExhausted, e.ErrorId);
    }

    [Fact]
    public void Item19_only_regular_files_named_as_the_atomic_writer_names_them_are_removed()
    {
        using var root = new TempRoot();
        var dir = Path.Combine(root.Path, "var", "lib", "gpuvirt");
        Directory.CreateDirectory(dir);
        var outside = Path.Combine(root.Path, "outside");
        File.WriteAllText(outside, "keep");
        File.WriteAllText(Path.Combine(dir, ".journal.json.gpuvirt-0123abcd.tmp"), "partial");
        File.CreateSymbolicLink(Path.Combine(dir, ".link.gpuvirt-0123abcd.tmp"), outside);
        Directory.CreateDirectory(Path.Combine(dir, ".dir.gpuvirt-0123abcd.tmp"));
        File.WriteAllText(Path.Combine(dir, ".journal.json.gpuvirt-0123ABCD.tmp"), "not ours");
        File.WriteAllText(Path.Combine(dir, "journal.json"), "{}");

        var removed = HostFiles.RemoveLeftovers(new HostRoot(root.Path), new[] { ChangeJournal.HostPath, "relative/path", "/../escape" });

        Assert.Equal(new[] { "/var/lib/gpuvirt/.journal.json.gpuvirt-0123abcd.tmp" }, removed);
        Assert.Equal(new[] { ".dir.gpuvirt-0123abcd.tmp", ".journal.json.gpuvirt-0123ABCD.tmp", ".link.gpuvirt-0123abcd.tmp", "journal.json" },
            Sysfs.TryListNames(dir)!.OrderBy(n => n, StringComparer.Ordinal));
        Assert.Equal("keep", File.ReadAllText(outside));
    }

    [Fact]
    public void Item21_an_intent_with_a_relative_path_or_bad_base64_is_BootIntentDamaged()
    {
        foreach (var (path, before) in new[] { ("etc/default/grub", "QQo="), ("/etc/default/grub", "not*base64"), ("/etc/../../grub", "QQo=") })
        {
            using var root = new TempRoot();
            Directory.CreateDirectory(Path.Combine(root.Path, "var", "lib", "gpuvirt"));
            var json = "{\"Format\": \"GpuVirt boot change in progress\", \"Version\": 1, \"Action\": \"Enable-IommuBoot\", \"Phase\": \"Files\", " +
                $"\"CommandsDone\": 0, \"Files\": [{{\"Path\": \"{path}\", \"Before\": \"{before}\", \"After\": \"QQo=\", \"Mode\": 420}}], " +
                "\"Guarded\": [], \"Commands\": [[\"grub2-mkconfig\", \"-o\", \"/boot/grub2/grub.cfg\"]]}";
            File.WriteAllText(Path.Combine(root.Path, "var", "lib", "gpuvirt", "boot-pending.json"), json);
            var e = Assert.Throws<GpuVirtException>(() => BootIntent.Read(new HostRoot(root.Path)));
            Assert.Equal(ErrorIds.BootIntentDamaged, e.ErrorId);
        }
    }
}
