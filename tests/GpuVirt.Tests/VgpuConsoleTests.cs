using System.Xml.Linq;
using GpuVirt.Core;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;
using GpuVirt.Fixtures;

namespace GpuVirt.Tests;

public class VgpuConsoleTests : IClassFixture<EmbeddedLibvirt>
{
    private const string Uuid = "ba26a3e2-8e1e-4f39-9de7-b26bd210268a";
    private readonly EmbeddedLibvirt _libvirt;

    public VgpuConsoleTests(EmbeddedLibvirt libvirt)
    {
        _libvirt = libvirt;
    }

    /// <summary>A guest as virt-install leaves it: disk, serial console, input, sound, an emulated QXL card and SPICE, and a vGPU.</summary>
    private static string Guest(string name, string graphics = "spice", bool display = false) =>
        XElement.Parse(LibvirtFixture.Domain(name, spareRootPorts: 4)) is var domain && domain.Element("devices") is { } devices
            ? Add(domain, devices, graphics, display)
            : throw new InvalidOperationException();

    private static string Add(XElement domain, XElement devices, string graphics, bool display)
    {
        domain.Add(new XElement("vcpu", 2), new XElement("on_crash", "destroy"), new XElement("description", "a vGPU workstation"));
        devices.AddFirst(new XElement("disk", new XAttribute("type", "file"), new XAttribute("device", "disk"),
            new XElement("driver", new XAttribute("name", "qemu"), new XAttribute("type", "raw")),
            new XElement("source", new XAttribute("file", "/var/lib/libvirt/images/ws.img")),
            new XElement("target", new XAttribute("dev", "vda"), new XAttribute("bus", "virtio"))));
        devices.Add(
            new XElement("serial", new XAttribute("type", "pty")),
            new XElement("input", new XAttribute("type", "tablet"), new XAttribute("bus", "usb")),
            new XElement("graphics", new XAttribute("type", graphics), new XAttribute("autoport", "yes"), new XAttribute("passwd", "s3cret")),
            new XElement("sound", new XAttribute("model", "ich9")),
            new XElement("video", new XElement("model", new XAttribute("type", "qxl"), new XAttribute("ram", 65536), new XAttribute("vram", 65536), new XAttribute("heads", 1), new XAttribute("primary", "yes"))),
            XElement.Parse($"<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'{(display ? " display='on'" : "")}><source><address uuid='{Uuid}'/></source></hostdev>"));
        return domain.ToString();
    }

    /// <summary>The planner on the embedded driver, its host lock under the fixture's own directory.</summary>
    private VgpuConsolePlanner Planner(Virsh virsh) => new(new ChangeHost(new HostRoot(_libvirt.Directory), virsh.Uri), virsh);

    private string DefineGuest(string xml)
    {
        var file = Path.Combine(_libvirt.Directory, "g-" + Guid.NewGuid().ToString("N") + ".xml");
        File.WriteAllText(file, xml);
        _libvirt.Virsh().Run(new VirshCommand("define", "--file", file));
        return XElement.Parse(xml).Element("name")!.Value;
    }

    /// <summary>The definition without what the console change may touch: graphics, video and the hostdevs' display attribute.</summary>
    private static XElement Untouched(string xml)
    {
        var doc = XElement.Parse(xml);
        var devices = doc.Element("devices")!;
        devices.Elements("graphics").Where(g => (string?)g.Attribute("type") == "vnc").Remove();
        devices.Elements("video").Remove();
        foreach (var h in devices.Elements("hostdev")) h.Attribute("display")?.Remove();
        return doc;
    }

    [Fact]
    public void Changes_only_the_console_elements_of_a_real_definition_in_qemu_embed()
    {
        var name = DefineGuest(Guest("ws-" + Guid.NewGuid().ToString("N")[..8]));
        var virsh = _libvirt.Virsh();
        var before = virsh.Run(VgpuConsole.DumpInactive(name));

        var change = VgpuConsole.Plan(name, before, "vnc", noEmulatedVideo: true, uuids: null);
        Assert.Equal(new[]
        {
            "hostdev " + Uuid + ": display='on'",
            "video: model type='none' (was 'qxl')",
            "graphics: type='vnc' added",
        }, change.Changes);
        Assert.Matches(@"(?m)^\+ +<hostdev mode=""subsystem"" type=""mdev"" managed=""no"" model=""vfio-pci"" display=""on"">$", change.Diff);
        Assert.Matches(@"(?m)^- +<hostdev mode=""subsystem"" type=""mdev"" managed=""no"" model=""vfio-pci""( display=""off"")?>$", change.Diff);
        Assert.DoesNotMatch(@"(?m)^[-+] +<(disk|serial|input|sound|controller)", change.Diff);
        var applied = new PlanExecutor().Apply(Planner(virsh).Plan(name, "vnc", noEmulatedVideo: true, uuids: null));
        Assert.True(applied.Applied);
        Assert.Equal(change.After, applied.After);

        var after = virsh.Run(VgpuConsole.DumpInactive(name));
        var devices = XElement.Parse(after).Element("devices")!;
        var hostdev = devices.Elements("hostdev").Single();
        Assert.Equal("on", (string?)hostdev.Attribute("display"));
        Assert.Equal("none", (string?)devices.Elements("video").Single().Element("model")!.Attribute("type"));
        // The guest's SPICE display stays (its audio goes through it); the VNC console is added beside it.
        Assert.Equal(new[] { "spice", "vnc" }, devices.Elements("graphics").Select(g => (string?)g.Attribute("type")));
        var graphics = devices.Elements("graphics").Last();
        Assert.Equal("address", (string?)graphics.Element("listen")!.Attribute("type"));
        Assert.True(XNode.DeepEquals(Untouched(before), Untouched(after)), "every other element survives:\n" + VgpuConsole.LineDiff(Untouched(before).ToString(), Untouched(after).ToString()));

        // A second run finds nothing to do and defines nothing.
        var again = VgpuConsole.Plan(name, after, "vnc", noEmulatedVideo: true, uuids: null);
        Assert.False(again.Changed);
    }

    [Fact]
    public void Keeps_a_graphics_device_of_the_asked_type_with_its_password_and_the_video_unless_asked()
    {
        var name = DefineGuest(Guest("ws-" + Guid.NewGuid().ToString("N")[..8], graphics: "vnc"));
        var virsh = _libvirt.Virsh();
        var before = virsh.Run(VgpuConsole.DumpInactive(name));
        Assert.Contains("passwd='s3cret'", before);
        var change = VgpuConsole.Plan(name, before, "vnc", noEmulatedVideo: false, uuids: new[] { Guid.Parse(Uuid) });
        Assert.Equal(new[] { "hostdev " + Uuid + ": display='on'" }, change.Changes);
        Assert.True(new PlanExecutor().Apply(Planner(virsh).Plan(name, "vnc", noEmulatedVideo: false, uuids: new[] { Guid.Parse(Uuid) })).Applied);
        var after = virsh.Run(VgpuConsole.DumpInactive(name));
        Assert.Contains("passwd='s3cret'", after);
        Assert.Contains("type='qxl'", after);
    }

    [Fact]
    public void A_guest_without_the_vGPU_is_an_error_that_changes_nothing()
    {
        var plain = LibvirtFixture.Domain("plain", graphics: true);
        var e = Assert.Throws<GpuVirtException>(() => VgpuConsole.Plan("plain", plain, "vnc", false, null));
        Assert.Equal(ErrorIds.VgpuConsoleNoMdevHostdev, e.ErrorId);
        Assert.Contains("Add-GpuHostdev", e.Message);
        var other = Assert.Throws<GpuVirtException>(() => VgpuConsole.Plan("ws", Guest("ws"), "vnc", false, new[] { Guid.Parse("30820a6f-b1a5-4503-91ca-0c10ba58692a") }));
        Assert.Contains("has no mediated device 30820a6f-b1a5-4503-91ca-0c10ba58692a; its mediated devices: " + Uuid, other.Message);
    }

    [Fact]
    public void Adds_spice_with_uncompressed_images_when_the_guest_has_no_graphics()
    {
        var domain = XElement.Parse(Guest("ws", display: true));
        domain.Element("devices")!.Elements("graphics").Remove();
        var change = VgpuConsole.Plan("ws", domain.ToString(), "spice", false, null);
        Assert.Equal(new[] { "graphics: type='spice' added" }, change.Changes);
        Assert.Contains("<image compression=\"off\" />", change.After);
    }
}
