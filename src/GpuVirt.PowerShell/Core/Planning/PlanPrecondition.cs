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
        /// <param name="errorId">The error id the refusal has when this precondition no longer holds; null: <see cref="ErrorIds.HostChangedSincePlan"/>.</param>
        public PlanPrecondition(string description, Func<string?> changed, string? errorId = null)
        {
            Description = description;
            _changed = changed ?? throw new ArgumentNullException(nameof(changed));
            ErrorId = errorId ?? ErrorIds.HostChangedSincePlan;
        }

        public string Description { get; }

        /// <summary>The stable id of the refusal when the precondition no longer holds (a command's own, such as <see cref="ErrorIds.GuestDefinitionChanged"/>).</summary>
        public string ErrorId { get; }

        /// <summary>Null while the precondition holds; what changed otherwise.</summary>
        public string? Changed() => _changed();

        public override string ToString() => Description;
    }
}
