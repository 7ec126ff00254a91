using System.Collections.Generic;
using System.Management.Automation;
using GpuVirt.Core;

namespace GpuVirt.Commands
{
    /// <summary>Lists IOMMU groups with their devices and whether the group can be given to a guest.</summary>
    [Cmdlet(VerbsCommon.Get, "IommuGroup")]
    [OutputType(typeof(IommuGroup))]
    public sealed class GetIommuGroupCommand : HostCmdlet
    {
        private readonly HashSet<int> _written = new HashSet<int>();
        private bool? _enabled;

        /// <summary>Group numbers; piped devices bind by their IommuGroup property.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [Alias("IommuGroup")]
        [AllowNull]
        [AllowEmptyCollection]
        [ArgumentCompleter(typeof(IommuGroupNumberCompleter))]
        public int[]? Number { get; set; }

        protected override void ProcessRecord()
        {
            // Checked once per command: listing every group for each piped device would make a pipeline quadratic.
            _enabled ??= IommuGroups.IsEnabled(HostSystem);
            if (_enabled == false)
            {
                ThrowTerminatingError(IommuGroups.NotEnabled(HostSystem));
                return;
            }

            if (Number is null || Number.Length == 0)
            {
                if (MyInvocation.ExpectingInput)
                {
                    // A piped device with no group on a host whose IOMMU is on (a device the IOMMU does not cover).
                    WriteError(new GpuVirtException(ErrorIds.IommuGroupNotFound, ErrorKind.ObjectNotFound,
                        "The piped device is in no IOMMU group: the IOMMU does not cover it."));
                    return;
                }
                foreach (var group in IommuGroups.ReadAll(Inventory)) Write(group);
                return;
            }

            foreach (var number in Number)
            {
                var group = IommuGroups.TryRead(Inventory, number);
                if (group is null)
                {
                    WriteError(new GpuVirtException(ErrorIds.IommuGroupNotFound, ErrorKind.ObjectNotFound,
                        $"IOMMU group {number} does not exist under '{HostPaths.IommuGroups}'.", number));
                    continue;
                }
                Write(group);
            }
        }

        private void Write(IommuGroup group)
        {
            if (_written.Add(group.Number)) WriteObject(group);
        }
    }
}
