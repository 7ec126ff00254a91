namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// A reason the plan must not be applied. An overridable refusal is lifted by <c>-Force</c>: the cmdlet then shows
    /// <see cref="OverriddenWarning"/> instead of the error.
    /// </summary>
    internal sealed class PlanRefusal
    {
        public PlanRefusal(GpuVirtException error, string? overriddenWarning = null)
        {
            Error = error;
            OverriddenWarning = overriddenWarning;
        }

        public GpuVirtException Error { get; }

        /// <summary>The warning shown when -Force lifts the refusal; null when -Force cannot lift it.</summary>
        public string? OverriddenWarning { get; }

        public bool Overridable => OverriddenWarning != null;

        public override string ToString() => Error.ErrorId + ": " + Error.Message;
    }
}
