using System;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Journal;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Lists the changes the module applied to a host, newest first, from the journal under its root
    /// (<c>/var/lib/gpuvirt/journal.json</c>): when, who, the command line, what changed and whether it was undone.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "GpuVirtChange", DefaultParameterSetName = AllSet)]
    [OutputType(typeof(ChangeRecord))]
    public sealed class GetGpuVirtChangeCommand : HostCmdlet
    {
        private const string AllSet = "All";
        private const string IdSet = "Id";

        /// <summary>Only the records with these ids.</summary>
        [Parameter(Position = 0, ParameterSetName = IdSet, ValueFromPipelineByPropertyName = true)]
        [ValidateRange(1L, long.MaxValue)]
        public long[]? Id { get; set; }

        /// <summary>Only the newest N records.</summary>
        [Parameter(ParameterSetName = AllSet)]
        [ValidateRange(1, int.MaxValue)]
        public int Last { get; set; }

        /// <summary>Only records made at or after this time.</summary>
        [Parameter(ParameterSetName = AllSet)]
        public DateTime Since { get; set; }

        protected override void ProcessRecord()
        {
            try
            {
                var records = new ChangeJournal(HostSystem).Read().OrderByDescending(r => r.Id).ToList();
                if (Id != null)
                {
                    foreach (var id in Id)
                    {
                        var record = records.FirstOrDefault(r => r.Id == id);
                        if (record is null) WriteError(NotFound(id));
                        else WriteObject(record);
                    }
                    return;
                }
                var selected = records.AsEnumerable();
                if (Given(nameof(Since))) selected = selected.Where(r => r.Time >= Since.ToUniversalTime());
                if (Given(nameof(Last))) selected = selected.Take(Last);
                foreach (var r in selected) WriteObject(r);
            }
            catch (GpuVirtException e)
            {
                ThrowTerminatingError(e);
            }
        }

        internal static GpuVirtException NotFound(long id) =>
            new GpuVirtException(ErrorIds.JournalChangeNotFound, ErrorKind.ObjectNotFound,
                $"The change journal ('{ChangeJournal.HostPath}') has no change {id}. Get-GpuVirtChange lists them.", id);
    }
}
