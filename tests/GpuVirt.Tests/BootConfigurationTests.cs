using System.Diagnostics;
using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

/// <summary>
/// Enable/Disable against real host trees: detection of each boot loader family, the files written, the programs
/// run (stand-ins in the root, run through the real chroot), backups, the undo record, and the restore on failure.
/// </summary>
public class BootConfigurationTests
{
    private static readonly string SeedArgs = "rd.lvm.lv=vg_VolGroup00/LogVol01 vconsole.font=latarcyrheb-sun16 rd.lvm.lv=vg_VolGroup_1/root vconsole.keymap=us "
        + "$([ -x /usr/sbin/rhcrashkernel-param ]  &&\n/usr/sbin/rhcrashkernel-param || :) rhgb quiet";

    private static HostRoot SeedHost(TempRoot temp)
    {
        SampleHosts.Seed(temp.Path).Build();
        return new HostRoot(temp.Path);
    }

    private static BootChange Enable(HostRoot root, params string[] ids)
    {
        var request = new IommuBootRequest();
        foreach (var id in ids) request.StubIds.Add(id);
        return IommuBoot.Apply(root, IommuBoot.PlanEnable(root, request), new ProcessRunner());
    }

    private static BootChange Disable(HostRoot root) => IommuBoot.Apply(root, IommuBoot.PlanDisable(root), new ProcessRunner());

    private static string Read(HostRoot root, string hostPath) => File.ReadAllText(root.Resolve(hostPath));

    [Fact]
    public void Each_family_is_detected_from_the_files_under_the_root()
    {
        using var a = new TempRoot();
        BootFixture.Rhel7(a.Path);
        var rhel7 = BootConfiguration.Detect(new HostRoot(a.Path));
        Assert.Equal(BootLoaderFamily.Rhel7, rhel7.Family);
        Assert.Equal("/etc/default/grub", rhel7.File);
        Assert.Equal("/etc/sysconfig/grub", rhel7.LinkPath);

        using var b = new TempRoot();
        BootFixture.Rhel9(b.Path);
        Assert.Equal(BootLoaderFamily.Bls, BootConfiguration.Detect(new HostRoot(b.Path)).Family);

        using var c = new TempRoot();
        BootFixture.Debian(c.Path, "grub/ubuntu2204-default-grub");
        Assert.Equal(BootLoaderFamily.Debian, BootConfiguration.Detect(new HostRoot(c.Path)).Family);

        using var d = new TempRoot();
        BootFixture.SystemdBoot(d.Path, cmdline: null);
        var sdboot = BootConfiguration.Detect(new HostRoot(d.Path));
        Assert.Equal(BootLoaderFamily.SystemdBoot, sdboot.Family);
        Assert.Equal("/etc/kernel/cmdline", sdboot.File);

        using var e = new TempRoot();
        var none = Assert.Throws<GpuVirtException>(() => BootConfiguration.Detect(new HostRoot(e.Path)));
        Assert.Equal(ErrorIds.BootLoaderNotDetected, none.ErrorId);
        var forced = Assert.Throws<GpuVirtException>(() => BootConfiguration.Detect(new HostRoot(e.Path), BootLoaderFamily.Debian));
        Assert.Equal(ErrorIds.BootFileNotFound, forced.ErrorId);
    }

    [Fact]
    public void Rhel7_edits_the_link_target_keeps_the_link_backs_up_and_runs_grub2_mkconfig_stand_in()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        var original = Read(root, "/etc/default/grub");

        var change = Enable(root, "10de:11fa");

        Assert.Equal(BootLoaderFamily.Rhel7, change.BootLoader);
        Assert.Equal("../default/grub", new FileInfo(root.ResolveEntry("/etc/sysconfig/grub")).LinkTarget);
        Assert.Contains("/usr/sbin/rhcrashkernel-param || :) rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa\"\n", Read(root, "/etc/sysconfig/grub"));
        var grubFile = Assert.Single(change.FileChanges, f => f.Path == "/etc/default/grub");
        Assert.Equal(BootFileAction.Modified, grubFile.Action);
        Assert.Matches(@"^/etc/default/grub\.gpuvirt-\d{8}-\d{6}\.bak$", grubFile.BackupPath);
        Assert.Equal(original, Read(root, grubFile.BackupPath!));
        Assert.Equal(SeedArgs, grubFile.Before);
        Assert.Equal(SeedArgs + " intel_iommu=on iommu=pt pci-stub.ids=10de:11fa", grubFile.After);
        Assert.Equal(new[] { "intel_iommu=on", "iommu=pt", "pci-stub.ids=10de:11fa" }, change.ArgumentsAdded);
        Assert.Empty(change.ArgumentsRemoved);
        Assert.Equal(new[] { "grub2-mkconfig -o /etc/grub2.cfg" }, change.Commands);
        Assert.Equal(new[] { new[] { "grub2-mkconfig", "-o", "/etc/grub2.cfg" } }, StandIns.Calls(temp.Path));
        // The seed host runs with intel_iommu=on iommu=pt already, but not with the stub id.
        Assert.True(change.RebootRequired);
        Assert.True(File.Exists(root.Resolve(BootEditLog.HostPath)));
    }

    [Fact]
    public void Uefi_hosts_regenerate_grub2_efi_cfg()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path, efi: true);
        Enable(root);
        Assert.Equal(new[] { new[] { "grub2-mkconfig", "-o", "/etc/grub2-efi.cfg" } }, StandIns.Calls(temp.Path));
    }

    [Fact]
    public void A_second_enable_writes_nothing_and_runs_nothing_and_disable_gives_back_the_original_bytes()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        var original = File.ReadAllBytes(root.Resolve("/etc/default/grub"));

        var first = Enable(root, "10de:11fa", "10de:0e0b");
        var second = Enable(root, "10de:11fa", "10de:0e0b");
        Assert.True(first.Changed);
        Assert.False(second.Changed);
        Assert.Empty(second.Commands);
        Assert.Single(StandIns.Calls(temp.Path));
        Assert.Single(Directory.GetFiles(root.Resolve("/etc/default"), "grub.gpuvirt-*.bak"));

        var undo = Disable(root);
        Assert.Equal(original, File.ReadAllBytes(root.Resolve("/etc/default/grub")));
        Assert.Equal(new[] { "intel_iommu=on", "iommu=pt", "pci-stub.ids=10de:11fa", "pci-stub.ids=10de:0e0b" }, undo.ArgumentsRemoved);
        Assert.Equal(2, StandIns.Calls(temp.Path).Count);
        Assert.False(File.Exists(root.Resolve(BootEditLog.HostPath)));
        Assert.Equal("../default/grub", new FileInfo(root.ResolveEntry("/etc/sysconfig/grub")).LinkTarget);

        // Nothing recorded any more: a second disable changes nothing and says why.
        var plan = IommuBoot.PlanDisable(root);
        Assert.False(plan.HasChanges);
        Assert.Contains(plan.Warnings, w => w.Contains("no record", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Disable_keeps_arguments_the_user_had_before_enable()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path, "grub/pci-stub-grub");
        var original = Read(root, "/etc/default/grub");
        Enable(root, "10de:11fa", "8086:1572");
        Assert.Contains("pci-stub.ids=8086:1572,10de:11fa intel_iommu=on iommu=pt\"", Read(root, "/etc/default/grub"));
        var undo = Disable(root);
        Assert.Equal(original, Read(root, "/etc/default/grub"));
        Assert.Equal(new[] { "iommu=pt", "pci-stub.ids=10de:11fa" }, undo.ArgumentsRemoved);
    }

    [Fact]
    public void A_failing_grub2_mkconfig_reports_exit_code_and_stderr_and_restores_every_file()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        StandIns.Install(temp.Path, "grub2-mkconfig", exitCode: 3, stderr: "/usr/sbin/grub2-probe: error: failed to get canonical path of `overlay'.");
        var before = Snapshot(temp.Path);

        var e = Assert.Throws<GpuVirtException>(() => Enable(root, "10de:11fa"));

        Assert.Equal(ErrorIds.BootRegenerationFailed, e.ErrorId);
        Assert.Contains("exit code 3", e.Message);
        Assert.Contains("failed to get canonical path", e.Message);
        Assert.Contains("restored", e.Message);
        var after = Snapshot(temp.Path);
        Assert.Equal(before.Keys.OrderBy(k => k), after.Keys.OrderBy(k => k));
        foreach (var f in after.Keys) Assert.Equal(before[f], after[f]);
        Assert.Single(StandIns.Calls(temp.Path));
        Assert.False(Directory.Exists(root.Resolve("/var/lib/gpuvirt")));
    }

    [Fact]
    public void Bls_runs_grubby_with_the_exact_arguments_and_keeps_ids_the_entries_have()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel9(temp.Path);
        var change = Enable(root, "10de:11fa");
        Assert.Equal(BootLoaderFamily.Bls, change.BootLoader);
        Assert.Contains("rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa\"\nGRUB_DISABLE_RECOVERY", Read(root, "/etc/default/grub"));
        Assert.Equal(new[] { new[] { "grubby", "--update-kernel=ALL", "--args=intel_iommu=on iommu=pt pci-stub.ids=10de:11fa", "--no-etc-grub-update" } }, StandIns.Calls(temp.Path));

        Disable(root);
        Assert.Equal(BootFixture.Data("grub/rhel9-default-grub"), Read(root, "/etc/default/grub"));
        Assert.Equal(new[] { "grubby", "--update-kernel=ALL", "--remove-args=intel_iommu=on iommu=pt pci-stub.ids=10de:11fa", "--no-etc-grub-update" }, StandIns.Calls(temp.Path)[1]);

        // An id set on the entries by hand (grubby --args) survives: the new id joins the entry's own list.
        using var temp2 = new TempRoot();
        var root2 = SeedHost(temp2);
        BootFixture.Rhel9(temp2.Path);
        var entry = Directory.GetFiles(root2.Resolve("/boot/loader/entries"))[0];
        File.WriteAllText(entry, File.ReadAllText(entry).Replace("rhgb quiet $tuned_params", "rhgb quiet pci-stub.ids=8086:1572 $tuned_params"));
        Enable(root2, "10de:11fa");
        Assert.Equal("--args=pci-stub.ids=8086:1572,10de:11fa intel_iommu=on iommu=pt", StandIns.Calls(temp2.Path)[0][2]);
        // grubby-bls takes a key's old word out and puts the new one last (its update_args).
        Assert.Contains("rhgb quiet $tuned_params pci-stub.ids=8086:1572,10de:11fa intel_iommu=on iommu=pt\n", File.ReadAllText(entry));
        Disable(root2);
        Assert.Equal(new[] { "grubby", "--update-kernel=ALL", "--args=pci-stub.ids=8086:1572", "--remove-args=intel_iommu=on iommu=pt", "--no-etc-grub-update" }, StandIns.Calls(temp2.Path)[1]);
        Assert.Contains("rhgb quiet $tuned_params pci-stub.ids=8086:1572\n", File.ReadAllText(entry));
    }

    [Fact]
    public void Bls_removes_per_entry_only_what_it_added_and_fixes_entries_that_lack_what_the_grub_file_has()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel9(temp.Path);
        var entries = root.Resolve("/boot/loader/entries");
        var first = Directory.GetFiles(entries)[0];
        // A second kernel whose entry the user gave iommu=pt by hand; the grub file already has intel_iommu=on iommu=pt.
        var second = Path.Combine(entries, "3c9f0a1e2b7d4c5e8f6a9b0c1d2e3f40-5.14.0-427.13.1.el9_4.x86_64.conf");
        File.WriteAllText(second, File.ReadAllText(first).Replace("362.8.1.el9_3", "427.13.1.el9_4").Replace("rhgb quiet", "rhgb quiet iommu=pt"));
        var grub = root.Resolve("/etc/default/grub");
        File.WriteAllText(grub, File.ReadAllText(grub).Replace("rhgb quiet\"", "rhgb quiet intel_iommu=on iommu=pt\""));
        var grubBefore = File.ReadAllText(grub);
        var firstBefore = File.ReadAllText(first);
        var secondBefore = File.ReadAllText(second);

        var status = IommuBootStatus.Read(root, new PciInventory(root));
        Assert.False(status.IommuConfigured);
        Assert.Equal(2, status.UnconfiguredEntries.Count);

        var change = Enable(root);
        Assert.True(change.Changed);
        Assert.Equal(grubBefore, File.ReadAllText(grub));
        Assert.Equal(new[]
        {
            new[] { "grubby", "--update-kernel=/boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64", "--args=intel_iommu=on iommu=pt" },
            new[] { "grubby", "--update-kernel=/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64", "--args=intel_iommu=on" },
        }, StandIns.Calls(temp.Path));
        Assert.True(IommuBootStatus.Read(root, new PciInventory(root)).IommuConfigured);
        Assert.False(Enable(root).Changed);

        Disable(root);
        Assert.Equal(new[] { "grubby", "--update-kernel=/boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64", "--remove-args=intel_iommu=on iommu=pt" }, StandIns.Calls(temp.Path)[2]);
        Assert.Equal(new[] { "grubby", "--update-kernel=/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64", "--remove-args=intel_iommu=on" }, StandIns.Calls(temp.Path)[3]);
        Assert.Equal(firstBefore, File.ReadAllText(first));
        Assert.Equal(secondBefore, File.ReadAllText(second));
        Assert.Equal(grubBefore, File.ReadAllText(grub));
    }

    [Fact]
    public void A_grubby_that_fails_half_way_has_its_entry_changes_rolled_back_too()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel9(temp.Path);
        var entries = root.Resolve("/boot/loader/entries");
        var entry = Directory.GetFiles(entries)[0];
        var entryBefore = File.ReadAllText(entry);
        StandIns.Install(temp.Path, "grubby", exitCode: 1, stderr: "grubby: The param /boot/vmlinuz-x is incorrect",
            extraScript: "[ \"$1\" = --help ] || echo 'options half-written' >> /boot/loader/entries/" + Path.GetFileName(entry));
        var e = Assert.Throws<GpuVirtException>(() => Enable(root));
        Assert.Equal(ErrorIds.BootRegenerationFailed, e.ErrorId);
        Assert.Contains("exit code 1", e.Message);
        Assert.Equal(entryBefore, File.ReadAllText(entry));
        Assert.Equal(BootFixture.Data("grub/rhel9-default-grub"), Read(root, "/etc/default/grub"));
    }

    [Fact]
    public void Debian_runs_update_grub_and_warns_about_a_drop_in_that_overrides_the_variable()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Debian(temp.Path);
        BootFixture.Write(temp.Path, "etc/default/grub.d/50-cloudimg-settings.cfg", "GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n");
        var plan = IommuBoot.PlanEnable(root, new IommuBootRequest());
        Assert.Contains(plan.Warnings, w => w.Contains("/etc/default/grub.d/50-cloudimg-settings.cfg"));
        var change = IommuBoot.Apply(root, plan, new ProcessRunner());
        Assert.Contains("GRUB_CMDLINE_LINUX=\"intel_iommu=on iommu=pt\"\n", Read(root, "/etc/default/grub"));
        Assert.Equal(new[] { "update-grub" }, change.Commands);
        Assert.Equal(new[] { new[] { "update-grub" } }, StandIns.Calls(temp.Path));
    }

    [Fact]
    public void Systemd_boot_starts_a_missing_kernel_cmdline_from_the_running_one_and_removes_it_on_disable()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.SystemdBoot(temp.Path, cmdline: null);
        var change = Enable(root, "10de:11fa");
        Assert.Equal("root=/dev/mapper/rhel-root ro rd.lvm.lv=vg_VolGroup00/LogVol01 rhgb quiet intel_iommu=on iommu=pt pci-stub.ids=10de:11fa\n", Read(root, "/etc/kernel/cmdline"));
        Assert.Equal(BootFileAction.Created, change.FileChanges[0].Action);
        Assert.Null(change.FileChanges[0].BackupPath);
        Assert.Equal(new[] { new[] { "kernel-install", "add", "6.8.9-300.fc40.x86_64", "/usr/lib/modules/6.8.9-300.fc40.x86_64/vmlinuz" } }, StandIns.Calls(temp.Path));

        var undo = Disable(root);
        Assert.False(File.Exists(root.Resolve("/etc/kernel/cmdline")));
        Assert.Equal(BootFileAction.Removed, undo.FileChanges[0].Action);
        Assert.Equal(change.FileChanges[0].After, Read(root, undo.FileChanges[0].BackupPath!).TrimEnd('\n'));
    }

    [Fact]
    public void Owner_mode_and_links_survive_the_atomic_replace()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        var target = root.Resolve("/etc/default/grub");
        Run("chown", "65534:65534", target);
        Run("chmod", "0640", target);
        var before = HostFiles.GetIdentity(target);
        Assert.Equal(new FileIdentity(65534, 65534, Convert.ToInt32("640", 8)), before);

        var change = Enable(root);

        Assert.Equal(before, HostFiles.GetIdentity(target));
        Assert.Equal(before, HostFiles.GetIdentity(root.Resolve(change.FileChanges[0].BackupPath!)));
        Assert.Equal(before, HostFiles.GetIdentityFromRuntime(target));
        Assert.Equal("../default/grub", new FileInfo(root.ResolveEntry("/etc/sysconfig/grub")).LinkTarget);
        Assert.Empty(Directory.GetFiles(root.Resolve("/etc/default"), ".*tmp"));
    }

    [Fact]
    public void Links_resolve_inside_the_root_even_when_absolute()
    {
        using var temp = new TempRoot();
        var root = new HostRoot(temp.Path);
        BootFixture.Write(temp.Path, "etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n");
        Directory.CreateDirectory(Path.Combine(temp.Path, "etc", "sysconfig"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "etc", "sysconfig", "grub"), "/etc/alternatives/grub");
        Directory.CreateDirectory(Path.Combine(temp.Path, "etc", "alternatives"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "etc", "alternatives", "grub"), "../default/./grub");
        Assert.Equal("/etc/default/grub", root.ResolveLinks("/etc/sysconfig/grub"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "etc", "loop"), "/etc/loop");
        var e = Assert.Throws<GpuVirtException>(() => root.ResolveLinks("/etc/loop"));
        Assert.Equal(ErrorIds.BootFileUnreadable, e.ErrorId);
    }

    [Fact]
    public void Every_path_under_a_root_resolves_its_links_inside_the_root()
    {
        using var temp = new TempRoot();
        var root = new HostRoot(temp.Path);
        // The image's /var/lib/gpuvirt and /run are absolute links, /etc/x.conf an absolute link to a file, and a
        // relative link climbs above the image's /: each stays inside the root.
        Directory.CreateDirectory(Path.Combine(temp.Path, "srv", "state"));
        Directory.CreateDirectory(Path.Combine(temp.Path, "var", "lib"));
        Directory.CreateDirectory(Path.Combine(temp.Path, "etc"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "var", "lib", "gpuvirt"), "/srv/state");
        File.CreateSymbolicLink(Path.Combine(temp.Path, "run"), "/var/run");
        File.CreateSymbolicLink(Path.Combine(temp.Path, "etc", "x.conf"), "/srv/state/x.conf");
        File.CreateSymbolicLink(Path.Combine(temp.Path, "etc", "up"), "../../../../../srv");
        Assert.Equal(temp.Path + "/srv/state/journal.json", root.Resolve("/var/lib/gpuvirt/journal.json"));
        Assert.Equal(temp.Path + "/srv/state", root.Resolve("/var/lib/gpuvirt"));
        Assert.Equal(temp.Path + "/var/run/lock/gpuvirt.lock", root.Resolve("/run/lock/gpuvirt.lock"));
        Assert.Equal(temp.Path + "/srv/state/x.conf", root.Resolve("/etc/x.conf"));
        Assert.Equal(temp.Path + "/srv/state", root.Resolve("/etc/up/state"));
        Assert.Equal(temp.Path + "/srv", root.Resolve("/var/lib/gpuvirt/.."));
        // The link itself, for code that reads or replaces it: its directories resolved, itself not followed.
        Assert.Equal(temp.Path + "/etc/x.conf", root.ResolveEntry("/etc/x.conf"));
        Assert.Equal(temp.Path + "/srv/state/x", root.ResolveEntry("/var/lib/gpuvirt/x"));
        Assert.True(HostFiles.IsLink(root, "/etc/x.conf"));
        // The live root is left to the kernel.
        Assert.Equal("/var/lib/gpuvirt/journal.json", HostRoot.Live.Resolve("/var/lib/gpuvirt/journal.json"));
    }

    [Fact]
    public void Reboot_is_required_only_while_the_running_kernel_lacks_the_configuration()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        // The seed host already runs with intel_iommu=on iommu=pt.
        var plan = IommuBoot.PlanEnable(root, new IommuBootRequest());
        Assert.True(plan.HasChanges);
        Assert.False(plan.RebootRequired);
        var request = new IommuBootRequest();
        request.StubIds.Add("10de:11fa");
        Assert.True(IommuBoot.PlanEnable(root, request).RebootRequired);
    }

    [Fact]
    public void A_bad_file_is_an_error_with_a_stable_id_and_nothing_changes()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        File.WriteAllText(root.Resolve("/etc/default/grub"), "GRUB_CMDLINE_LINUX=\"quiet\nGRUB_TIMEOUT=5\n");
        var e = Assert.Throws<GpuVirtException>(() => IommuBoot.PlanEnable(root, new IommuBootRequest()));
        Assert.Equal(ErrorIds.BootFileMalformed, e.ErrorId);

        File.Delete(root.Resolve("/etc/default/grub"));
        Directory.CreateDirectory(root.Resolve("/etc/default/grub"));
        var dir = Assert.Throws<GpuVirtException>(() => IommuBoot.PlanEnable(root, new IommuBootRequest { BootLoader = BootLoaderFamily.Rhel7 }));
        Assert.Equal(ErrorIds.BootFileUnreadable, dir.ErrorId);
        Assert.Empty(StandIns.Calls(temp.Path));
    }

    [Fact]
    public void A_missing_regeneration_program_stops_before_any_file_is_touched()
    {
        using var temp = new TempRoot();
        var root = SeedHost(temp);
        BootFixture.Rhel7(temp.Path);
        File.Delete(Path.Combine(temp.Path, "usr", "sbin", "grub2-mkconfig"));
        var original = Read(root, "/etc/default/grub");
        var e = Assert.Throws<GpuVirtException>(() => Enable(root));
        Assert.Equal(ErrorIds.ProgramNotFound, e.ErrorId);
        Assert.Contains("grub2-tools", e.Message);
        Assert.Equal(original, Read(root, "/etc/default/grub"));
        Assert.Empty(Directory.GetFiles(root.Resolve("/etc/default"), "*.bak"));
    }

    [Fact]
    public void The_cpu_vendor_comes_from_proc_cpuinfo()
    {
        using var temp = new TempRoot();
        SampleHosts.TwoSocket(temp.Path).Build();
        Assert.Equal(CpuVendor.Amd, CpuInfo.ReadVendor(new HostRoot(temp.Path)));
        using var empty = new TempRoot();
        Assert.Equal(ErrorIds.CpuVendorUnknown, Assert.Throws<GpuVirtException>(() => CpuInfo.ReadVendor(new HostRoot(empty.Path))).ErrorId);
    }

    [Fact]
    public void On_the_live_root_programs_run_directly_and_elsewhere_through_chroot()
    {
        var log = new List<string>();
        var runner = new ProcessRunner(log.Add);
        Assert.Equal("ok\n", runner.RunOnHost(HostRoot.Live, "echo", new[] { "ok" }).StandardOutput);
        using var temp = new TempRoot();
        StandIns.Install(temp.Path, "update-grub");
        runner.RunOnHost(new HostRoot(temp.Path), "update-grub", new[] { "--x" });
        Assert.Equal(new[] { "echo ok", "chroot " + temp.Path + " update-grub --x" }, log);
        Assert.Equal(new[] { new[] { "update-grub", "--x" } }, StandIns.Calls(temp.Path));
        Assert.True(ProgramLocator.ExistsOnHost(new HostRoot(temp.Path), "update-grub"));
        Assert.False(ProgramLocator.ExistsOnHost(new HostRoot(temp.Path), "grubby"));
    }

    /// <summary>Every file under etc, var and boot (links not followed: sysfs trees loop), with its bytes.</summary>
    internal static Dictionary<string, byte[]> Snapshot(string root)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, ReturnSpecialDirectories = false };
        return new[] { "etc", "var", "boot" }
            .Select(d => Path.Combine(root, d))
            .Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", options))
            .ToDictionary(f => f, File.ReadAllBytes);
    }

    [Fact]
    public void Stub_ids_of_storage_or_bridges_are_refused_and_shared_or_console_ids_warned_about()
    {
        using var temp = new TempRoot();
        SampleHosts.TwoSocket(temp.Path).Build();
        var inventory = new PciInventory(new HostRoot(temp.Path));
        var nvme = Assert.Throws<GpuVirtException>(() => IommuBoot.CheckStubIds(inventory, new[] { "144d:a808" }, Array.Empty<PciAddress>(), force: false));
        Assert.Equal(ErrorIds.StubDeviceUnsafe, nvme.ErrorId);
        Assert.Contains("0001:00:00.0", nvme.Message);
        Assert.Equal(ErrorIds.StubDeviceUnsafe, Assert.Throws<GpuVirtException>(() => IommuBoot.CheckStubIds(inventory, new[] { "1022:1483" }, Array.Empty<PciAddress>(), false)).ErrorId);
        Assert.Single(IommuBoot.CheckStubIds(inventory, new[] { "144d:a808" }, Array.Empty<PciAddress>(), force: true));

        // Four A40 virtual functions share the id of the physical function that was chosen.
        var shared = IommuBoot.CheckStubIds(inventory, new[] { "10de:2235" }, new[] { PciAddress.Parse("0000:01:00.0") }, false);
        Assert.Equal(4, shared.Count(w => w.Contains("also claims")));
        Assert.Contains(IommuBoot.CheckStubIds(inventory, new[] { "1a03:2000" }, Array.Empty<PciAddress>(), false), w => w.Contains("console GPU"));
        Assert.Contains(IommuBoot.CheckStubIds(inventory, new[] { "10de:ffff" }, Array.Empty<PciAddress>(), false), w => w.Contains("No PCI function"));
    }

    private static void Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
