using System;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>
    /// Creates vGPUs of a type: writes a UUID to the type's <c>create</c> (mediated devices) or the type id to a free
    /// virtual function (NVIDIA SR-IOV), waits for the device and writes it out. <c>-Persistent</c> defines it for mdevctl.
    /// </summary>
    [Cmdlet(VerbsCommon.New, "VgpuDevice", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(VgpuDevice))]
    public sealed class NewVgpuDeviceCommand : VgpuCmdlet
    {
        /// <summary>The parent GPU (a PCI address in any form, or another mdev parent name); piped types bind by Parent.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(VgpuParentCompleter))]
        public string Parent { get; set; } = string.Empty;

        /// <summary>The type: its id (nvidia-63) or name (GRID P4-1Q); piped types bind by Id, piped devices by TypeId.</summary>
        [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
        [Alias("Id", "TypeId")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(VgpuTypeCompleter))]
        public string Type { get; set; } = string.Empty;

        /// <summary>The mediated device's UUID; a new one is generated when left out.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string? Uuid { get; set; }

        /// <summary>How many devices to create (each with a new UUID); piped placements (Find-VgpuPlacement) bind by Count.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateRange(1, 4096)]
        public int Count { get; set; } = 1;

        /// <summary>Define the device for mdevctl (start: auto) so that it comes back after a reboot.</summary>
        [Parameter]
        public SwitchParameter Persistent { get; set; }

        /// <summary>Define the mediated device for mdevctl without creating it (mdevctl define).</summary>
        [Parameter]
        public SwitchParameter DefineOnly { get; set; }

        /// <summary>The definition's start mode: Auto (at boot, when the parent appears; the default) or Manual.</summary>
        [Parameter]
        [ValidateSet("Auto", "Manual")]
        public string? StartMode { get; set; }

        /// <summary>
        /// mdev attributes, written in order once the device exists and kept in its definition: an [ordered]@{ name = value },
        /// or several dictionaries in order (@{ assign_adapter = '5' }, @{ assign_adapter = '6' }) so that a name can repeat,
        /// as in mdevctl's attrs.
        /// </summary>
        [Parameter]
        [ValidateNotNull]
        public System.Collections.IDictionary[]? Attribute { get; set; }

        /// <summary>The guest's operating system; Linux guests support only Q-series NVIDIA types.</summary>
        [Parameter]
        [ValidateSet("Linux", "Windows")]
        public string? GuestOS { get; set; }

        protected override void ProcessRecord()
        {
            if (Uuid != null && Count > 1)
            {
                ThrowTerminatingError(new GpuVirtException(ErrorIds.VgpuUuidNotApplicable, ErrorKind.InvalidArgument,
                    "-Uuid names one device; leave it out to create -Count devices with new UUIDs.", Uuid));
                return;
            }
            string? uuid = null;
            MdevOptions? options;
            try
            {
                if (Uuid != null) uuid = VgpuManager.ParseUuid(Uuid);
                options = Options();
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
                return;
            }

            var parent = VgpuInventory.NormalizeParent(Parent);
            var types = Vgpu.Types(parent);
            if (types is null)
            {
                if (SriovVgpu.NotEnabled(Vgpu, parent) is { } notEnabled)
                {
                    WriteError(notEnabled);
                    return;
                }
                WriteError(new GpuVirtException(ErrorIds.VgpuParentNotFound, ErrorKind.ObjectNotFound,
                    $"'{Parent}' offers no vGPU types (not under '{HostPaths.MdevBusClass}', no SR-IOV vGPU function). See Get-VgpuType and Test-VgpuHost.", Parent));
                return;
            }
            var type = types.FirstOrDefault(t => string.Equals(t.Id, Type, StringComparison.OrdinalIgnoreCase))
                ?? types.FirstOrDefault(t => t.Name != null && string.Equals(t.Name, Type, StringComparison.OrdinalIgnoreCase));
            if (type is null)
            {
                WriteError(new GpuVirtException(ErrorIds.VgpuTypeNotFound, ErrorKind.ObjectNotFound,
                    $"{parent} offers no vGPU type '{Type}'. Its types: {string.Join(", ", types.Select(t => t.Name is null ? t.Id : $"{t.Id} ({t.Name})"))}.{SriovVgpu.WhyNotOffered(Vgpu, parent)}", Type));
                return;
            }

            if (type.Series != null && type.Series != "Q" && GuestOS != "Windows")
            {
                WriteWarning($"'{type.DisplayName}' is a vGPU type of the {type.Series} series. Linux guests support only Q-series types " +
                    "(such as GRID P4-2Q); give -GuestOS Windows when the guest runs Windows.");
            }

            if (type.Kind == VgpuKind.SriovVf)
            {
                CreateSriov(type, options);
                return;
            }
            try
            {
                if (Count == 1)
                {
                    var plan = Planner().PlanCreate(type, uuid, Persistent, options);
                    if (ShouldApply(plan)) WriteObject(Apply(plan));
                    return;
                }
                // -Count devices are one plan: checked as a whole before any write, applied whole or not at all.
                var many = Planner().PlanCreateMany(type, Count, Persistent, options);
                if (!ShouldApply(many)) return;
                foreach (var device in Apply(many)) WriteObject(device);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }

        /// <summary>mdevctl's options from -DefineOnly, -StartMode and -Attribute; null when none is given.</summary>
        private MdevOptions? Options()
        {
            if (!DefineOnly && StartMode is null && Attribute is null) return null;
            if (StartMode != null && !Persistent && !DefineOnly)
            {
                throw new GpuVirtException(ErrorIds.VgpuOptionNotApplicable, ErrorKind.InvalidArgument,
                    "-StartMode is the start mode of a definition: give it with -Persistent or -DefineOnly.", StartMode);
            }
            var options = new MdevOptions { DefineOnly = DefineOnly };
            if (StartMode != null) options.StartMode = StartMode.ToLowerInvariant();
            if (Attribute != null)
            {
                var list = new System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<string, string>>();
                foreach (var dictionary in Attribute)
                {
                    if (dictionary is null) continue;
                    foreach (System.Collections.DictionaryEntry e in dictionary)
                    {
                        var name = System.Convert.ToString(e.Key, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
                        VgpuManager.CheckAttributeName(name);
                        list.Add(new System.Collections.Generic.KeyValuePair<string, string>(name, LanguagePrimitives.ConvertTo<string>(e.Value) ?? string.Empty));
                    }
                }
                options.Attributes = list;
            }
            return options;
        }

        /// <summary>SR-IOV: one plan picks -Count free virtual functions that list the type now; it is applied whole or not at all.</summary>
        private void CreateSriov(VgpuType type, MdevOptions? options)
        {
            try
            {
                VgpuManager.CheckSriovOptions(type, Uuid, options);
                var plan = Planner().PlanCreateSriov(type, Count, Persistent);
                if (!ShouldApply(plan)) return;
                foreach (var device in Apply(plan)) WriteObject(device);
            }
            catch (GpuVirtException e)
            {
                WriteError(e);
            }
        }
    }
}
