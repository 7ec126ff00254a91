using System;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Something the plan was built on (a function's driver, a type's free instances), read again by the executor under
    /// the host lock: when it changed, the plan is refused rather than applied to a host it was not made for.
    /// </summary>
    internal sealed class PlanPrecondition
    {
        private readonly Func<string?> _changed;

        /// <param name="description">What was read: <c>0000:02:00.1 is bound to snd_hda_intel</c>.</param>
        /// <param name="changed">Reads it again: null while it holds, else what it is now, in words.</param>
        /// <param name="errorId">The id of the refusal when it changed (null: <see cref="ErrorIds.HostChangedSincePlan"/>).</param>
        public PlanPrecondition(string description, Func<string?> changed, string? errorId = null)
        {
            Description = description;
            _changed = changed ?? throw new ArgumentNullException(nameof(changed));
            ErrorId = errorId ?? ErrorIds.HostChangedSincePlan;
        }

        private PlanPrecondition(string description, Func<GpuVirtException?> refusal)
        {
            Description = description;
            _refusal = refusal ?? throw new ArgumentNullException(nameof(refusal));
            _changed = () => _refusal()?.Message;
            ErrorId = ErrorIds.HostChangedSincePlan;
        }

        private readonly Func<GpuVirtException?>? _refusal;

        /// <summary>
        /// A rule read again under the lock whose breach is its own error (another guest holds the device now:
        /// <see cref="ErrorIds.HostdevInUse"/>), not "the host changed": <paramref name="refusal"/> gives that error, or null.
        /// </summary>
        public static PlanPrecondition Rule(string description, Func<GpuVirtException?> refusal) => new PlanPrecondition(description, refusal);

        public string Description { get; }

        /// <summary>The id the executor refuses the plan with when this precondition no longer holds.</summary>
        public string ErrorId { get; }

        /// <summary>For a <see cref="Rule"/>: the error that refuses the plan now, or null while the rule holds.</summary>
        public GpuVirtException? Refusal() => _refusal?.Invoke();

        /// <summary>True for a <see cref="Rule"/>, whose breach is reported as its own error.</summary>
        public bool IsRule => _refusal != null;

        /// <summary>
        /// The persistent definition of a guest is still, byte for byte, the one the plan was made from (read with
        /// <see cref="Virsh.ReadDefinitionForEdit"/>): a change to a whole definition never overwrites what another
        /// command (an attach, a console or MMIO change) put there meanwhile; it is refused with
        /// <see cref="ErrorIds.GuestDefinitionChanged"/>.
        /// </summary>
        /// <param name="virsh">The connection.</param>
        /// <param name="domain">How virsh is told the guest (its UUID).</param>
        /// <param name="asRead">The definition as the plan read it.</param>
        /// <param name="name">The guest's name, for the messages (null: <paramref name="domain"/>).</param>
        public static PlanPrecondition DefinitionUnchanged(Virsh virsh, string domain, string asRead, string? name = null) =>
            new PlanPrecondition($"the definition of guest '{name ?? domain}' is the one read", () =>
            {
                var now = virsh.ReadDefinitionForEdit(domain);
                return string.Equals(now, asRead, StringComparison.Ordinal)
                    ? null
                    : $"the definition of guest '{name ?? domain}' was changed by another command after it was read" + DefinitionDiff(asRead, now);
            }, ErrorIds.GuestDefinitionChanged);

        private static string DefinitionDiff(string before, string now)
        {
            var diff = VgpuConsole.LineDiff(before, now);
            return diff.Length == 0 ? string.Empty : ":\n" + diff;
        }

        /// <summary>Null while the precondition holds; what changed otherwise.</summary>
        public string? Changed() => _changed();

        public override string ToString() => Description;
    }
}
