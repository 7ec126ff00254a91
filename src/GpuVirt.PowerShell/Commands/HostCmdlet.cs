using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Planning;

namespace GpuVirt.Commands
{
    /// <summary>A cmdlet that reads or changes the host through its root directory (<c>-Root</c>, <c>/</c> by default).</summary>
    public abstract class HostCmdlet : GpuVirtCmdlet
    {
        private HostRoot? _host;
        private PciInventory? _inventory;

        /// <summary>The directory that stands for the host's <c>/</c>: a mounted image or a test tree.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Root { get; set; } = "/";

        private protected HostRoot HostSystem
        {
            get
            {
                if (_host is null)
                {
                    var path = GetUnresolvedProviderPathFromPSPath(Root);
                    try
                    {
                        _host = new HostRoot(path).EnsureExists();
                    }
                    catch (GpuVirtException e)
                    {
                        ThrowTerminatingError(e);
                    }
                }
                return _host!;
            }
        }

        private ChangeRecorder? _recorder;

        /// <summary>Journals what this command applies to the host (<see cref="ChangeJournal"/> under the root).</summary>
        private protected ChangeRecorder Recorder => _recorder ??= new ChangeRecorder(HostSystem, ConnectUri, MyInvocation.MyCommand.Name, CommandLineText(), StopToken, WriteVerbose);

        /// <summary>Plans applied by this command go into its host's change journal.</summary>
        private protected override void AddRecorders(PlanExecutor executor) => executor.Recorders.Add(new JournalPlanRecorder(Recorder));

        private GuestReferences? _guests;
        private bool _guestsRead;

        /// <summary>
        /// The guests' references to devices, read once from libvirt at <paramref name="connect"/> for the <c>Guests</c>
        /// of the devices a Get- command writes; null without a connection or when libvirt does not answer (a warning says so).
        /// </summary>
        private protected GuestReferences? GuestsAt(string? connect)
        {
            if (_guestsRead || connect is null) return _guests;
            _guestsRead = true;
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
        private protected PciInventory Inventory => _inventory ??= new PciInventory(HostSystem, DisplayAsGpu);

        /// <summary>Whether display-class functions are read as <see cref="GpuDevice"/> objects.</summary>
        private protected virtual bool DisplayAsGpu => false;
    }
}
