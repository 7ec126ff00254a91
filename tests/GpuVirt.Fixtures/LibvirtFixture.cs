using System.Xml.Linq;

namespace GpuVirt.Fixtures;

/// <summary>
/// Real libvirt for the tests, with no daemon: the embedded QEMU driver (<c>qemu:///embed?root=DIR</c>), which keeps
/// guests under DIR across virsh processes and really attaches and detaches devices of shut-off guests, and the test
/// driver (<c>test:///ABS/node.xml</c>), a whole fake host read from one file.
/// </summary>
public static class LibvirtFixture
{
    /// <summary>The settings the embedded driver needs to run as root with no system services.</summary>
    public const string QemuConf = """
        user = "root"
        group = "root"
        security_driver = "none"
        dynamic_ownership = 0
        remember_owner = 0
        stdio_handler = "file"
        """;

    /// <summary>
    /// Creates DIR/etc/qemu.conf, makes the driver's first call (it probes QEMU's capabilities once, ~4 s, and caches
    /// them under DIR) and returns the embedded driver's URI for DIR.
    /// </summary>
    public static string PrepareEmbedRoot(string root)
    {
        var full = Path.GetFullPath(root);
        Directory.CreateDirectory(Path.Combine(full, "etc"));
        File.WriteAllText(Path.Combine(full, "etc", "qemu.conf"), QemuConf + "\n");
        var uri = EmbedUri(full);
        Warm(full, uri);
        return uri;
    }

    /// <summary>
    /// The capability probe starts a QEMU and talks to it over QMP; on a loaded machine it has been seen to wait forever
    /// (once in many runs). The first call therefore gets a time limit: on expiry the virsh and the probing QEMU (from
    /// its pid file) are killed and the call is made again, so a test run never hangs on it.
    /// </summary>
    private static void Warm(string root, string uri)
    {
        var errors = new List<string>();
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var start = new System.Diagnostics.ProcessStartInfo("virsh") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-c", uri, "list", "--all", "--name" }) start.ArgumentList.Add(a);
            start.Environment["LIBVIRT_LOG_FILTERS"] = "4:*";
            using var process = System.Diagnostics.Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEndAsync();
            if (process.WaitForExit(TimeSpan.FromSeconds(120)))
            {
                if (process.ExitCode == 0) return;
                errors.Add(stderr.Result.Trim());
                continue;
            }
            process.Kill(entireProcessTree: true);
            var qemuDir = Path.Combine(root, "lib", "qemu");
            var pidFiles = Directory.Exists(qemuDir) ? Directory.GetFiles(qemuDir, "qmp.pid", SearchOption.AllDirectories) : Array.Empty<string>();
            foreach (var pidFile in pidFiles)
            {
                if (int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
                {
                    try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
                }
            }
            errors.Add($"attempt {attempt}: the QEMU capability probe did not finish in 120 s");
        }
        throw new InvalidOperationException($"The embedded libvirt driver at {uri} does not start: {string.Join("; ", errors)}");
    }

    public static string EmbedUri(string root) => "qemu:///embed?root=" + Path.GetFullPath(root);

    /// <summary>
    /// A small shut-off x86_64 q35 guest (no emulator path, so libvirt picks the host's); with
    /// <paramref name="graphics"/>, a VNC display (libvirt wants one for a hostdev with display='on'). Like guests
    /// virt-install makes, it has spare PCIe root ports: a hostdev takes a free one, and libvirt only adds a port
    /// controller (which stays after the device is detached) when none is free.
    /// </summary>
    public static string Domain(string name, bool graphics = false, Guid? uuid = null, int spareRootPorts = 8)
    {
        var devices = new XElement("devices");
        if (graphics) devices.Add(new XElement("graphics", new XAttribute("type", "vnc")));
        devices.Add(new XElement("controller", new XAttribute("type", "pci"), new XAttribute("index", 0), new XAttribute("model", "pcie-root")));
        for (var i = 1; i <= spareRootPorts; i++)
        {
            devices.Add(new XElement("controller", new XAttribute("type", "pci"), new XAttribute("index", i), new XAttribute("model", "pcie-root-port")));
        }
        var domain = new XElement("domain", new XAttribute("type", "qemu"),
            new XElement("name", name),
            uuid is Guid u ? new XElement("uuid", u.ToString("D")) : null,
            new XElement("memory", new XAttribute("unit", "MiB"), 64),
            new XElement("os", new XElement("type", new XAttribute("arch", "x86_64"), new XAttribute("machine", "q35"), "hvm")),
            devices);
        return domain.ToString();
    }

    /// <summary>Writes a domain document to a new file in DIR and returns the path (for <c>virsh define</c>).</summary>
    public static string WriteDomain(string directory, string name, bool graphics = false, int spareRootPorts = 8)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "domain-" + Guid.NewGuid().ToString("N") + ".xml");
        File.WriteAllText(path, Domain(name, graphics, null, spareRootPorts));
        return path;
    }

    /// <summary>
    /// A test-driver host (<c>test:///PATH</c>): the seed's Quadro K4000 and its HDMI audio as node devices in IOMMU
    /// group 13, and the guests added with <see cref="TestDriverHost.AddGuest"/> (shut off) with their hostdevs.
    /// </summary>
    public static TestDriverHost TestDriver() => new TestDriverHost();

    internal static XElement SeedNodeDevice(bool audio) => audio
        ? NodeDevice("pci_0000_02_00_1", "pci_0000_00_03_0", "snd_hda_intel", 0, 2, 0, 1, "0x0e0b", "GK106 HDMI Audio Controller", 13,
            new[] { (2, 0, 0), (2, 0, 1) })
        : NodeDevice("pci_0000_02_00_0", "pci_0000_00_03_0", "pci-stub", 0, 2, 0, 0, "0x11fa", "GK106GL [Quadro K4000]", 13,
            new[] { (2, 0, 0), (2, 0, 1) });

    private static XElement NodeDevice(string name, string parent, string driver, int domain, int bus, int slot, int function,
        string productId, string product, int group, IEnumerable<(int Bus, int Slot, int Function)> members)
    {
        var cap = new XElement("capability", new XAttribute("type", "pci"),
            new XElement("domain", domain), new XElement("bus", bus), new XElement("slot", slot), new XElement("function", function),
            new XElement("product", new XAttribute("id", productId), product),
            new XElement("vendor", new XAttribute("id", "0x10de"), "NVIDIA Corporation"),
            new XElement("iommuGroup", new XAttribute("number", group),
                members.Select(m => new XElement("address",
                    new XAttribute("domain", "0x0000"), new XAttribute("bus", $"0x{m.Bus:x2}"),
                    new XAttribute("slot", $"0x{m.Slot:x2}"), new XAttribute("function", $"0x{m.Function:x}")))));
        return new XElement("device",
            new XElement("name", name),
            new XElement("parent", parent),
            new XElement("driver", new XElement("name", driver)),
            cap);
    }
}

/// <summary>Builds a <c>test:///</c> driver file: guests with hostdevs and the seed's node devices.</summary>
public sealed class TestDriverHost
{
    private readonly List<XElement> _domains = new();

    public TestDriverHost AddGuest(string name, params string[] hostdevXml)
    {
        var domain = XElement.Parse(LibvirtFixture.Domain(name, spareRootPorts: 0));
        domain.SetAttributeValue("type", "test");
        // A UUID of its own, as every real definition has: the test driver makes up a new one in each process otherwise.
        domain.Element("name")!.AddAfterSelf(new XElement("uuid", Guid.NewGuid().ToString("D")));
        var devices = domain.Element("devices")!;
        foreach (var h in hostdevXml) devices.Add(XElement.Parse(h));
        _domains.Add(domain);
        return this;
    }

    private readonly List<XElement> _devices = new();

    /// <summary>Adds a PCI node device (<c>pci_DDDD_BB_SS_F</c>) for a function given as <c>0000:00:19.0</c>.</summary>
    public TestDriverHost AddPciDevice(string address, string? driver = null)
    {
        var parts = address.Split(':', '.');
        int Hex(string s) => int.Parse(s, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        var name = $"pci_{parts[0]}_{parts[1]}_{parts[2]}_{parts[3]}";
        var cap = new XElement("capability", new XAttribute("type", "pci"),
            new XElement("domain", Hex(parts[0])), new XElement("bus", Hex(parts[1])),
            new XElement("slot", Hex(parts[2])), new XElement("function", Hex(parts[3])),
            new XElement("product", new XAttribute("id", "0x0001")), new XElement("vendor", new XAttribute("id", "0x8086")));
        _devices.Add(new XElement("device", new XElement("name", name), new XElement("parent", "computer"),
            driver is null ? null : new XElement("driver", new XElement("name", driver)), cap));
        return this;
    }

    /// <summary>Writes the file and returns its <c>test:///</c> URI.</summary>
    public string Write(string path)
    {
        var full = Path.GetFullPath(path);
        var node = new XElement("node", _domains, LibvirtFixture.SeedNodeDevice(false), LibvirtFixture.SeedNodeDevice(true), _devices);
        File.WriteAllText(full, node.ToString());
        return "test://" + full;
    }
}
