using GpuVirt.Core;
using GpuVirt.Core.Boot;

namespace GpuVirt.Tests;

/// <summary>vfio-pci in each initramfs tool's module list: put in, found again, taken out leaving the rest as it was.</summary>
public class InitramfsModulesTests
{
    private const string DebianModules = "# List of modules that you want to include in your initramfs.\n#\n# Syntax:  module_name [args ...]\nnvme\n";

    [Theory]
    [InlineData(nameof(InitramfsTool.Dracut), "/etc/dracut.conf.d/gpuvirt-vfio-pci.conf", "force_drivers+=\" vfio_pci vfio vfio_iommu_type1 \"")]
    [InlineData(nameof(InitramfsTool.Mkinitcpio), "/etc/mkinitcpio.conf.d/gpuvirt-vfio-pci.conf", "MODULES+=(vfio_pci vfio vfio_iommu_type1)")]
    public void A_tool_with_drop_ins_gets_a_file_of_its_own_and_loses_it(string toolName, string file, string entry)
    {
        var tool = (InitramfsTool)System.Enum.Parse(typeof(InitramfsTool), toolName);
        Assert.Equal(file, InitramfsModules.FileOf(tool));
        var written = InitramfsModules.With(tool, null);
        Assert.Equal(InitramfsModules.Marker + "\n" + entry + "\n", written);
        Assert.True(InitramfsModules.Has(written));
        Assert.Same(written, InitramfsModules.With(tool, written));
        Assert.Null(InitramfsModules.Without(tool, written));
    }

    [Theory]
    [InlineData(DebianModules)]
    [InlineData("nvme")]
    [InlineData("")]
    public void The_initramfs_tools_list_gets_a_block_appended_and_taken_out_again_byte_for_byte(string original)
    {
        Assert.Equal("/etc/initramfs-tools/modules", InitramfsModules.FileOf(InitramfsTool.InitramfsTools));
        var written = InitramfsModules.With(InitramfsTool.InitramfsTools, original);
        Assert.EndsWith(InitramfsModules.Marker + "\nvfio_pci\nvfio\nvfio_iommu_type1\n", written);
        Assert.StartsWith(original, written);
        Assert.False(InitramfsModules.Has(original));
        var back = InitramfsModules.Without(InitramfsTool.InitramfsTools, written);
        // The newline added to a last line that had none stays; an empty list goes (the journal's undo restores exactly).
        Assert.Equal(original.Length == 0 ? null : original.EndsWith('\n') ? original : original + "\n", back);
    }

    [Fact]
    public void Lines_the_administrator_added_after_the_block_stay()
    {
        var written = InitramfsModules.With(InitramfsTool.InitramfsTools, DebianModules) + "bochs\n";
        Assert.Equal(DebianModules + "bochs\n", InitramfsModules.Without(InitramfsTool.InitramfsTools, written));
        Assert.Equal(DebianModules, InitramfsModules.Without(InitramfsTool.InitramfsTools, DebianModules));
    }
}
