using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet that reads or changes the host through its root directory (<c>-Root</c>, <c>/</c> by default).</summary>
    public abstract class HostCmdlet : GpuVirtCmdlet
    {
        private HostRoot? _host;
        private string? _hostFor;
        private PciInventory? _inventory;

        /// <summary>
        /// The directory that stands for the host's <c>/</c>: a mounted image or a test tree. Piped objects bind it by
        /// their Root property, so a pipeline stays on the host it started on; given on the command line, it wins.
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Root { get; set; } = "/";

        /// <summary>
        /// The host of the current record: <see cref="Root"/> resolved. Each piped object may come from another host, so
        /// when the bound root changes between records, the host and everything read from it (inventory, journal,
        /// guests' references, what subclasses keep) are read afresh for the new one.
        /// </summary>
        private protected HostRoot HostSystem
        {
            get
            {
                if (_host is null || !string.Equals(_hostFor, Root, System.StringComparison.Ordinal))
                {
                    var path = GetUnresolvedProviderPathFromPSPath(Root);
                    HostRoot host;
                    try
                    {
                        host = new HostRoot(path).EnsureExists();
                    }
                    catch (GpuVirtException e)
                    {
                        ThrowTerminatingError(e);
                        throw;
                    }
                    var changed = _host != null && !string.Equals(_host.Directory, host.Directory, System.StringComparison.Ordinal);
                    if (_host is null || changed)
                    {
                        _host = host;
                        if (changed) HostChanged();
                        RecoverInterrupted(host);
                    }
                    _hostFor = Root;
                }
                return _host!;
            }
        }

        /// <summary>
        /// Before a changing command plans anything on a host: a journaled change (or undo) that a killed command left
        /// half-made (<see cref="PlanIntent"/>) is finished or taken back under the host lock, and journaled, so that
        /// the command plans from a host whose every change stands on the record. A warning says what was done;
        /// -WhatIf only says what would be done.
        /// </summary>
        private void RecoverInterrupted(HostRoot host)
        {
            if (!Changes) return;
            try
            {
                var pending = PlanIntent.Read(host);
                if (pending is null) return;
                var text = pending.Describe();
                if (!ShouldProcess(text + ". Finish it or take it back, and journal it.", text + ". Finish it or take it back?", MyInvocation.MyCommand.Name)) return;
                using (HostLock.Acquire(host, "finish an interrupted change", StopToken, LockTimeout, WriteVerbose))
                {
                    foreach (var line in ChangeRecovery.Recover(host, Runner, StopToken, WriteVerbose, LockTimeout).Lines) WriteWarning(line);
                }
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        /// <summary>True for a command that changes the host (it asks ShouldProcess).</summary>
        private bool Changes => System.Linq.Enumerable.Any(System.Linq.Enumerable.OfType<CmdletAttribute>(GetType().GetCustomAttributes(typeof(CmdletAttribute), true)), a => a.SupportsShouldProcess);

        private readonly System.Collections.Generic.List<(string Root, string? Connect)> _hosts = new System.Collections.Generic.List<(string Root, string? Connect)>();

        /// <summary>The root and connection of the current record, as bound.</summary>
        private protected (string Root, string? Connect) CurrentHost => (Root, BoundConnect);

        /// <summary>The connection URI as bound (null for a cmdlet that does not talk to libvirt).</summary>
        private protected virtual string? BoundConnect
        {
            get => null;
            set { }
        }

        /// <summary>Notes the host of each record, for a command that acts once per host at the end (<see cref="ForEachHost"/>).</summary>
        protected override void ProcessRecord() => NoteHost();

        /// <summary>Notes the host (root and connection) of the current record.</summary>
        private protected void NoteHost()
        {
            if (!_hosts.Contains(CurrentHost)) _hosts.Add(CurrentHost);
        }

        /// <summary>
        /// Runs <paramref name="body"/> once for each host the records came from (in order), that host being current:
        /// <c>Get-GpuDevice -Root R | Get-IommuBootStatus</c> reads R once. Without input it runs once for the parameters.
        /// </summary>
        private protected void ForEachHost(System.Action body)
        {
            if (_hosts.Count == 0) NoteHost();
            foreach (var host in _hosts.ToArray()) On(host, body);
        }

        /// <summary>Makes <paramref name="host"/> current (as if its record were being processed) and runs <paramref name="body"/>.</summary>
        private protected void On((string Root, string? Connect) host, System.Action body)
        {
            Root = host.Root;
            BoundConnect = host.Connect;
            body();
        }

        /// <summary>
        /// Forgets what was read from the previous host (the bound root changed between piped records). A subclass that
        /// keeps more of the host overrides this and calls the base.
        /// </summary>
        private protected virtual void HostChanged()
        {
            _inventory = null;
            ForgetRecorder();
            _guests = null;
            _guestsRead = false;
        }

        private ChangeRecorder? _recorder;

        /// <summary>The journal's recorder is made again for the next change (another host or another connection).</summary>
        private protected void ForgetRecorder() => _recorder = null;

        /// <summary>Journals what this command applies to the host (<see cref="ChangeJournal"/> under the root).</summary>
        private protected ChangeRecorder Recorder
        {
            get
            {
                var host = HostSystem;
                return _recorder ??= new ChangeRecorder(host, ConnectUri, MyInvocation.MyCommand.Name, CommandLineText(), StopToken, WriteVerbose, LockTimeout);
            }
        }

        /// <summary>Plans applied by this command go into its host's change journal.</summary>
        private protected override void AddRecorders(PlanExecutor executor) => executor.Recorders.Add(new JournalPlanRecorder(Recorder));

        private GuestReferences? _guests;
        private bool _guestsRead;
        private string? _guestsAt;

        /// <summary>
        /// The guests' references to devices, read once from libvirt at <paramref name="connect"/> for the <c>Guests</c>
        /// of the devices a Get- command writes; null without a connection or when libvirt does not answer (a warning says so).
        /// </summary>
        private protected GuestReferences? GuestsAt(string? connect)
        {
            if (connect is null) return null;
            if (_guestsRead && string.Equals(_guestsAt, connect, System.StringComparison.Ordinal)) return _guests;
            _guestsRead = true;
            _guestsAt = connect;
            _guests = GuestReferences.TryRead(new Virsh(Runner, connect, StopToken), WriteWarning);
            return _guests;
        }

        /// <summary>The libvirt URI this command talks to, for the journal; null for commands that do not talk to libvirt.</summary>
        private protected virtual string? ConnectUri => null;

        /// <summary>The command line as the user typed it; for a call from a script without one, the command and its parameters.</summary>
        private string CommandLineText()
        {
            var line = MyInvocation.Line?.Trim();
            if (!string.IsNullOrEmpty(line)) return line!;
            var parts = new System.Collections.Generic.List<string> { MyInvocation.MyCommand.Name };
            foreach (var pair in MyInvocation.BoundParameters)
            {
                parts.Add("-" + pair.Key + (pair.Value is SwitchParameter ? string.Empty : " " + ValueText(pair.Value)));
            }
            return string.Join(" ", parts);
        }

        private static string ValueText(object? value) => value switch
        {
            null => "$null",
            string s => "'" + s.Replace("'", "''") + "'",
            System.Collections.IEnumerable e => string.Join(",", System.Linq.Enumerable.Select(System.Linq.Enumerable.Cast<object?>(e), ValueText)),
            _ => System.Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty,
        };

        /// <summary>Says, as a warning, what was done about an earlier boot change that had been interrupted; returns the change.</summary>
        private protected BootChange Recovered(BootChange change)
        {
            if (change.Recovered != null) WriteWarning(change.Recovered);
            return change;
        }

        /// <summary>The host's PCI functions, read once per command.</summary>
        private protected PciInventory Inventory
        {
            get
            {
                var host = HostSystem;
                return _inventory ??= new PciInventory(host, DisplayAsGpu);
            }
        }

        /// <summary>Whether display-class functions are read as <see cref="GpuDevice"/> objects.</summary>
        private protected virtual bool DisplayAsGpu => false;
    }
}
