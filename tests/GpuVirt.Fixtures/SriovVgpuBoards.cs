using System.Globalization;

namespace GpuVirt.Fixtures;

/// <summary>One vGPU profile of a board: its id in <c>creatable_vgpu_types</c>, its name and its framebuffer.</summary>
public sealed record FixtureVgpuProfile(int Id, string Name, int FramebufferMiB);

/// <summary>
/// A GPU that NVIDIA's vGPU 17+ manager virtualizes with SR-IOV: its ids, framebuffer, virtual function limit and the
/// profiles its VFs offer. Profile names, series and framebuffer sizes follow NVIDIA's vGPU user guide for the board;
/// the numeric ids are examples (the driver numbers types per release), consistent within the fixtures.
/// </summary>
public sealed record FixtureSriovBoard(string Name, ushort Device, ushort SubsystemDevice, int FramebufferMiB, int TotalVfs, IReadOnlyList<FixtureVgpuProfile> Profiles)
{
    /// <summary>How many vGPUs of a profile fit on one GPU: its framebuffer over the profile's, at most one per VF.</summary>
    public int MaxInstances(FixtureVgpuProfile profile) => Math.Min(FramebufferMiB / profile.FramebufferMiB, TotalVfs);

    /// <summary>The <c>creatable_vgpu_types</c> lines of a VF of an idle GPU: every profile.</summary>
    public IList<(int Id, string Name)> AllCreatable() => Profiles.Select(p => (p.Id, p.Name)).ToList();

    public FixtureVgpuProfile Profile(string name) => Profiles.First(p => p.Name == name);

    private static IReadOnlyList<FixtureVgpuProfile> Series(int firstId, string board, int boardMiB, string series, params int[] gigabytes) =>
        gigabytes.Select((g, i) => new FixtureVgpuProfile(firstId + i, string.Create(CultureInfo.InvariantCulture, $"NVIDIA {board}-{g}{series}"), g * 1024))
            .Where(p => p.FramebufferMiB <= boardMiB).ToList();

    /// <summary>NVIDIA L40S (Ada, 10de:26b9, 48 GB): B, Q, A and C profiles, 32 VFs.</summary>
    public static readonly FixtureSriovBoard L40S = new("L40S", 0x26b9, 0x1851, 48 * 1024, 32,
        Series(1155, "L40S", 48 * 1024, "B", 1, 2)
            .Concat(Series(1160, "L40S", 48 * 1024, "Q", 1, 2, 3, 4, 6, 8, 12, 16, 24, 48))
            .Concat(Series(1175, "L40S", 48 * 1024, "A", 1, 2, 3, 4, 6, 8, 12, 16, 24, 48))
            .Concat(Series(1190, "L40S", 48 * 1024, "C", 4, 6, 8, 12, 16, 24, 48))
            .ToList());

    /// <summary>NVIDIA H100 PCIe (Hopper, 10de:2331, 80 GB): C (compute) profiles only, 32 VFs.</summary>
    public static readonly FixtureSriovBoard H100 = new("H100", 0x2331, 0x1626, 80 * 1024, 32,
        Series(1300, "H100", 80 * 1024, "C", 4, 5, 10, 16, 20, 40, 80));
}
