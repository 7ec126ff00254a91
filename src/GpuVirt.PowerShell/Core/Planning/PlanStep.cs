using System;
using GpuVirt.Core.Journal;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// One thing a plan writes, runs or attaches, in one line a user can read (<c>write 'vfio-pci' to
    /// /sys/bus/pci/devices/0000:02:00.1/driver_override</c>), how to apply it and, where it can be undone, its inverse.
    /// Steps that can be applied together (several attaches in one virsh process) share a <see cref="Batch"/>.
    /// </summary>
    internal class PlanStep
    {
        private readonly Action<PlanContext>? _apply;
        private readonly Action<PlanContext>? _undo;

        public PlanStep(string description, Action<PlanContext> apply, Action<PlanContext>? undo = null, string? undoDescription = null)
        {
            Description = description;
            _apply = apply ?? throw new ArgumentNullException(nameof(apply));
            _undo = undo;
            UndoDescription = undo is null ? null : undoDescription ?? "undo: " + description;
        }

        /// <summary>A step applied by its batch together with the other steps of the same batch.</summary>
        public PlanStep(string description, IStepBatch batch, Action<PlanContext>? undo = null, string? undoDescription = null)
        {
            Description = description;
            Batch = batch ?? throw new ArgumentNullException(nameof(batch));
            _undo = undo;
            UndoDescription = undo is null ? null : undoDescription ?? "undo: " + description;
        }

        /// <summary>What the step does, in one line.</summary>
        public string Description { get; }

        /// <summary>What its inverse does, in one line; null when it has none.</summary>
        public string? UndoDescription { get; }

        /// <summary>Set when the step is applied together with others (see <see cref="PlanExecutor.ApplyEach"/>).</summary>
        public IStepBatch? Batch { get; }

        public bool CanUndo => _undo != null;

        /// <summary>
        /// The inverse as data, in the journal's form: what the intent of a plan in progress names, so that the next
        /// command can take the step back after a kill (<see cref="PlanIntent"/>). Null where it cannot be stored.
        /// </summary>
        public InverseStep? Inverse { get; set; }

        /// <summary>Taking an earlier step of the plan back takes this one back too (an attribute of a device it made).</summary>
        public bool GoesWithEarlierStep { get; set; }

        public virtual void Apply(PlanContext context)
        {
            if (_apply != null)
            {
                _apply(context);
                return;
            }
            var error = Batch!.Apply(new[] { this }, context)[0];
            if (error != null) throw error;
        }

        public virtual void Undo(PlanContext context)
        {
            if (_undo is null) throw new InvalidOperationException("The step '" + Description + "' has no inverse.");
            _undo(context);
        }

        public override string ToString() => Description;
    }
}
