using System;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Something the plan was built on (a function's driver, a type's free instances), read again by the executor under
    /// the host lock: when it changed, the plan is refused rather than applied to a host it was not made for.
    /// </summary>
    public sealed class PlanPrecondition
    {
        private readonly Func<string?> _changed;

        /// <param name="description">What was read: <c>0000:02:00.1 is bound to snd_hda_intel</c>.</param>
        /// <param name="changed">Reads it again: null while it holds, else what it is now, in words.</param>
        public PlanPrecondition(string description, Func<string?> changed)
        {
            Description = description;
            _changed = changed ?? throw new ArgumentNullException(nameof(changed));
        }

        public string Description { get; }

        /// <summary>Null while the precondition holds; what changed otherwise.</summary>
        public string? Changed() => _changed();

        public override string ToString() => Description;
    }
}
