namespace GpuVirt.Core.Journal
{
    /// <summary>A state document of GpuVirt's own (an intent): the format it names and its version.</summary>
    internal interface IStateDocument
    {
        string? Format { get; }
        int Version { get; }
    }
}
