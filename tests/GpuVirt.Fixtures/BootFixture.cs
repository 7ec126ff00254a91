namespace GpuVirt.Fixtures;

/// <summary>The boot configuration of a fixture host: files laid out as each distribution ships them.</summary>
public static class BootFixture
{
    /// <summary>The repository's <c>tests/data</c> directory, found from a start directory upwards.</summary>
    public static string DataDirectory(string? start = null)
    {
        foreach (var from in new[] { start, Path.GetDirectoryName(typeof(BootFixture).Assembly.Location), AppContext.BaseDirectory })
        {
            var dir = from is null ? null : new DirectoryInfo(from);
            while (dir is not null)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "data");
                if (Directory.Exists(Path.Combine(candidate, "grub"))) return candidate;
                dir = dir.Parent;
            }
        }
        throw new DirectoryNotFoundException("tests/data was not found above " + (start ?? AppContext.BaseDirectory));
    }

    /// <summary>The text of a test data file (<c>grub/rhel7-sysconfig-grub</c>).</summary>
    public static string Data(string relative) => File.ReadAllText(Path.Combine(DataDirectory(), relative));

    /// <summary>RHEL 7: <c>/etc/default/grub</c> with <c>/etc/sysconfig/grub</c> a relative link to it, as grub2-tools installs them.</summary>
    public static void Rhel7(string root, string grubData = "grub/rhel7-sysconfig-grub", bool efi = false)
    {
        Write(root, "etc/default/grub", Data(grubData));
        Directory.CreateDirectory(Path.Combine(root, "etc", "sysconfig"));
        File.CreateSymbolicLink(Path.Combine(root, "etc", "sysconfig", "grub"), "../default/grub");
        Write(root, "etc/redhat-release", "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n");
        Directory.CreateDirectory(Path.Combine(root, "boot", "grub2"));
        File.CreateSymbolicLink(Path.Combine(root, "etc", "grub2.cfg"), "../boot/grub2/grub.cfg");
        if (efi) Directory.CreateDirectory(Path.Combine(root, "sys", "firmware", "efi"));
        StandIns.Install(root, "grub2-mkconfig");
    }

    /// <summary>RHEL 9: BLS entries under /boot/loader/entries and GRUB_ENABLE_BLSCFG=true.</summary>
    public static void Rhel9(string root, string grubData = "grub/rhel9-default-grub")
    {
        Write(root, "etc/default/grub", Data(grubData));
        Write(root, "etc/redhat-release", "Red Hat Enterprise Linux release 9.3 (Plow)\n");
        var entries = Path.Combine(root, "boot", "loader", "entries");
        Directory.CreateDirectory(entries);
        foreach (var f in Directory.GetFiles(Path.Combine(DataDirectory(), "bls")))
        {
            File.Copy(f, Path.Combine(entries, Path.GetFileName(f)));
        }
        StandIns.Install(root, "grubby");
    }

    /// <summary>Debian or Ubuntu: /etc/default/grub and update-grub.</summary>
    public static void Debian(string root, string grubData = "grub/debian12-default-grub")
    {
        Write(root, "etc/default/grub", Data(grubData));
        Write(root, "etc/debian_version", "12.8\n");
        StandIns.Install(root, "update-grub");
    }

    /// <summary>systemd-boot with kernel-install: an ESP loader.conf, /etc/kernel/cmdline (optional) and an installed kernel.</summary>
    public static void SystemdBoot(string root, string? cmdline = "root=UUID=7f3c1c52-5d2e-4a57-9b8f-0c5a3c2d1e0f rw quiet\n", string kernel = "6.8.9-300.fc40.x86_64")
    {
        Write(root, "boot/efi/loader/loader.conf", "timeout 3\n");
        if (cmdline is not null) Write(root, "etc/kernel/cmdline", cmdline);
        Write(root, "usr/lib/modules/" + kernel + "/vmlinuz", "kernel image\n");
        StandIns.Install(root, "kernel-install");
    }

    public static string Write(string root, string relative, string text)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }
}
