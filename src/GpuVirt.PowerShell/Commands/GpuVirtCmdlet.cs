using System;
using System.Management.Automation;
using System.Threading;
using GpuVirt.Core;

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

        protected CancellationToken StopToken => _stop.Token;

        /// <summary>Runs external programs; every command line goes to the verbose stream first.</summary>
        protected ProcessRunner Runner => _runner ??= new ProcessRunner(line => WriteVerbose("Running: " + line));

        protected override void StopProcessing() => _stop.Cancel();

        /// <summary>True when the user gave the parameter (an enum parameter has no null to tell "not given").</summary>
        protected bool Given(string parameterName) => MyInvocation.BoundParameters.ContainsKey(parameterName);

        public void Dispose()
        {
            _stop.Dispose();
            GC.SuppressFinalize(this);
        }

        protected static ErrorRecord ToErrorRecord(GpuVirtException e) =>
            new ErrorRecord(e, e.ErrorId, ToCategory(e.Kind), e.Target);

        /// <summary>Reports a failure about one input and goes on with the next.</summary>
        protected void WriteError(GpuVirtException e) => WriteError(ToErrorRecord(e));

        /// <summary>Stops the command.</summary>
        protected void ThrowTerminatingError(GpuVirtException e) => ThrowTerminatingError(ToErrorRecord(e));

        protected static ErrorCategory ToCategory(ErrorKind kind) => kind switch
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
