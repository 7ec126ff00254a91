using System;
using System.Management.Automation;
using System.Threading;
using GpuVirt.Core;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Safety;

namespace GpuVirt.Commands
{
    /// <summary>
    /// The base of every cmdlet: turns StopProcessing into a CancellationToken for the core, gives the core a runner
    /// that writes each command line to the verbose stream, and turns core exceptions into ErrorRecords.
    /// </summary>
    public abstract class GpuVirtCmdlet : PSCmdlet, IDisposable
    {
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private ProcessRunner? _runner;

        private protected CancellationToken StopToken => _stop.Token;

        /// <summary>Runs external programs; every command line goes to the verbose stream first.</summary>
        private protected ProcessRunner Runner => _runner ??= new ProcessRunner(line => WriteVerbose("Running: " + line));

        protected override void StopProcessing() => _stop.Cancel();

        /// <summary>The preference variable that bounds the wait for the host lock (seconds or a TimeSpan).</summary>
        public const string LockTimeoutVariable = "GpuVirtLockTimeout";

        /// <summary>How long to wait for another GpuVirt command that holds the host lock: <c>$GpuVirtLockTimeout</c>, else the default.</summary>
        private protected TimeSpan? LockTimeout => TimeoutPreference(LockTimeoutVariable);

        /// <summary>The preference variable that bounds each boot regeneration program (seconds or a TimeSpan).</summary>
        public const string RegenerationTimeoutVariable = "GpuVirtRegenerationTimeout";

        /// <summary>How long grub2-mkconfig, update-grub, grubby, dracut, update-initramfs or kernel-install may run: <c>$GpuVirtRegenerationTimeout</c>, else 30 minutes.</summary>
        private protected TimeSpan? RegenerationTimeout => TimeoutPreference(RegenerationTimeoutVariable);

        /// <summary>
        /// A time bound from a preference variable: a TimeSpan, a number of seconds, or text either way; null when
        /// the variable is not set. Anything else (zero, negative, words) stops the command with a clear error.
        /// </summary>
        private protected TimeSpan? TimeoutPreference(string variable)
        {
            var value = SessionState.PSVariable.GetValue(variable);
            if (value is PSObject pso) value = pso.BaseObject;
            if (value is null) return null;
            TimeSpan? span = value switch
            {
                TimeSpan t => t,
                int i => TimeSpan.FromSeconds(i),
                long l => TimeSpan.FromSeconds(l),
                double d when !double.IsNaN(d) && !double.IsInfinity(d) && d < int.MaxValue => TimeSpan.FromSeconds(d),
                decimal m when m < int.MaxValue => TimeSpan.FromSeconds((double)m),
                string text when double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var sec) && sec < int.MaxValue => TimeSpan.FromSeconds(sec),
                string text when TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var ts) => ts,
                _ => null,
            };
            if (span is null || span.Value <= TimeSpan.Zero)
            {
                ThrowTerminatingError(new GpuVirtException(ErrorIds.InvalidTimeoutPreference, ErrorKind.InvalidArgument,
                    $"${variable} is '{value}': give a positive number of seconds or a TimeSpan (e.g. ${variable} = 600), or remove the variable for the default.", variable));
            }
            return span;
        }

        /// <summary>A wildcard pattern of a parameter; one PowerShell cannot read stops the command with <see cref="ErrorIds.InvalidWildcard"/>.</summary>
        private protected WildcardPattern Wildcard(string text, string parameter)
        {
            try
            {
                return Wildcards.Create(text, parameter);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
                throw;
            }
        }

        /// <summary>True when the user gave the parameter (an enum parameter has no null to tell "not given").</summary>
        private protected bool Given(string parameterName) => MyInvocation.BoundParameters.ContainsKey(parameterName);

        public void Dispose()
        {
            _stop.Dispose();
            GC.SuppressFinalize(this);
        }

        /// <summary>
        /// Shows a plan: its warnings, its blocking refusals as errors (false: not applied), the warnings of the refusals
        /// -Force lifted, then ShouldProcess with the plan's own text. True when the plan is to be applied (a plan with
        /// nothing to do says why on the verbose stream and is "applied" to give its result).
        /// </summary>
        private protected bool ShouldApply(ChangePlan plan)
        {
            ShownAsWhatIf = false;
            foreach (var warning in plan.Warnings) WriteWarning(warning);
            var blocking = plan.Blocking;
            if (blocking.Count > 0)
            {
                foreach (var refusal in blocking) WriteError(refusal.Error);
                return false;
            }
            foreach (var refusal in plan.Overridden) WriteWarning(refusal.OverriddenWarning!);
            if (!plan.HasChanges)
            {
                if (plan.NothingToDo != null) WriteVerbose(plan.NothingToDo);
                return true;
            }
            var go = ShouldProcess(plan.Describe(), plan.Question(), MyInvocation.MyCommand.Name, out var reason);
            ShownAsWhatIf = !go && reason == ShouldProcessReason.WhatIf;
            return go;
        }

        /// <summary>True when the last plan <see cref="ShouldApply"/> showed was only described (-WhatIf).</summary>
        private protected bool ShownAsWhatIf { get; private set; }

        /// <summary>The executor of this command: its verbose stream, its stop token.</summary>
        private protected PlanExecutor Executor
        {
            get
            {
                var executor = new PlanExecutor(line => WriteVerbose(line), StopToken) { LockTimeout = LockTimeout };
                AddRecorders(executor);
                return executor;
            }
        }

        /// <summary>Adds this command's recorders (the change journal of its host) to an executor.</summary>
        private protected virtual void AddRecorders(PlanExecutor executor)
        {
        }

        /// <summary>Writes what came up after a plan was applied: the errors (a change not journaled) and the warnings.</summary>
        private protected void WriteApplied(ChangePlan plan)
        {
            foreach (var error in plan.AppliedErrors) WriteError(error);
            foreach (var warning in plan.AppliedWarnings) WriteWarning(warning);
        }

        /// <summary>Applies the plan (<see cref="PlanExecutor"/>), shows the warnings that came up and returns the result.</summary>
        private protected TResult Apply<TResult>(ChangePlan<TResult> plan)
        {
            var result = Executor.Apply(plan);
            WriteApplied(plan);
            return result;
        }

        private protected static ErrorRecord ToErrorRecord(GpuVirtException e) =>
            new ErrorRecord(e, e.ErrorId, ToCategory(e.Kind), e.Target);

        /// <summary>Reports a failure about one input and goes on with the next.</summary>
        private protected void WriteError(GpuVirtException e) => WriteError(ToErrorRecord(e));

        /// <summary>
        /// Shows what the checks of a change found: their warnings (with <paramref name="force"/>, also one for each
        /// refusal it overrides), and their refusals as errors. True when the change must not go ahead.
        /// </summary>
        private protected bool Refused(CheckFindings findings, bool force)
        {
            foreach (var warning in findings.WarningsFor(force)) WriteWarning(warning);
            var blocking = findings.Blocking(force);
            foreach (var refusal in blocking) WriteError(refusal);
            return blocking.Count > 0;
        }

        /// <summary>Stops the command.</summary>
        private protected void ThrowTerminatingError(GpuVirtException e) => ThrowTerminatingError(ToErrorRecord(e));

        /// <summary>
        /// Runs what reads the host; a core error on the way (a file that is a FIFO, too large, or unreadable) stops the
        /// command with its own error id instead of escaping as a bare exception.
        /// </summary>
        private protected void Reading(System.Action body)
        {
            try
            {
                body();
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        private protected static ErrorCategory ToCategory(ErrorKind kind) => kind switch
        {
            ErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
            ErrorKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
            ErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
            ErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
            ErrorKind.ResourceBusy => ErrorCategory.ResourceBusy,
            ErrorKind.NotEnabled => ErrorCategory.NotEnabled,
            ErrorKind.NotInstalled => ErrorCategory.NotInstalled,
            ErrorKind.InvalidData => ErrorCategory.InvalidData,
            ErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
            ErrorKind.OperationStopped => ErrorCategory.OperationStopped,
            ErrorKind.WriteError => ErrorCategory.WriteError,
            _ => ErrorCategory.NotSpecified,
        };
    }
}
