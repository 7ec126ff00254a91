using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using GpuVirt.Core;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Commands
{
    /// <summary>Lists the vGPU types a GPU (or any mediated-device parent) offers, with free instances and parsed descriptions.</summary>
    [Cmdlet(VerbsCommon.Get, "VgpuType")]
    [OutputType(typeof(VgpuType))]
    public sealed class GetVgpuTypeCommand : VgpuCmdlet
    {
        private readonly HashSet<string> _written = new HashSet<string>();

        /// <summary>Parent devices (PCI addresses in any form, or other mdev parent names); piped GPUs bind by Address.</summary>
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [Alias("Address")]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(VgpuParentCompleter))]
        public string[]? Parent { get; set; }

        /// <summary>Type names or ids, with wildcards: 'GRID P4-1Q', '*-2Q', 'nvidia-63'.</summary>
        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Name { get; set; }

        /// <summary>Only types with at least one free instance.</summary>
        [Parameter]
        public SwitchParameter Available { get; set; }

        protected override void ProcessRecord()
        {
            var names = Name?.Select(n => Wildcard(n, nameof(Name))).ToList();
            Reading(() => Write(names));
        }

        private void Write(List<WildcardPattern>? names)
        {
            foreach (var types in Select())
            {
                foreach (var type in types)
                {
                    if (names != null && !names.Any(p => p.IsMatch(type.Id) || (type.Name != null && p.IsMatch(type.Name)))) continue;
                    for (var i = 0; i < names?.Count; i++)
                    {
                        if (names![i].IsMatch(type.Id) || (type.Name != null && names[i].IsMatch(type.Name))) _matched.Add(Name![i]);
                    }
                    if (Available && type.AvailableInstances < 1) continue;
                    if (_written.Add(type.Root + "\n" + type.Parent + "\n" + type.Id)) WriteObject(type);
                }
            }
        }

        /// <summary>A type name or id given without wildcards that matched no type is an error, as in the other getters.</summary>
        protected override void EndProcessing()
        {
            foreach (var n in (Name ?? System.Array.Empty<string>()).Where(n => !WildcardPattern.ContainsWildcardCharacters(n) && !_matched.Contains(n)))
            {
                WriteError(new GpuVirtException(ErrorIds.VgpuTypeNotFound, ErrorKind.ObjectNotFound,
                    $"No vGPU type named or with the id '{n}' is offered{(Parent is null ? string.Empty : " by " + string.Join(", ", Parent))} (Get-VgpuType lists them).", n));
            }
        }

        private readonly HashSet<string> _matched = new HashSet<string>();

        private IEnumerable<IReadOnlyList<VgpuType>> Select()
        {
            if (Parent is null || Parent.Length == 0)
            {
                yield return Vgpu.AllTypes();
                yield break;
            }
            var piped = MyInvocation.ExpectingInput;
            foreach (var text in Parent)
            {
                if (WildcardPattern.ContainsWildcardCharacters(text))
                {
                    var pattern = Wildcard(text, nameof(Parent));
                    yield return Vgpu.AllTypes().Where(t => pattern.IsMatch(t.Parent)).ToList();
                    continue;
                }
                var name = VgpuInventory.NormalizeParent(text);
                // A virtual function coming down the pipeline (Get-GpuDevice lists them) stands for its GPU, which sums its functions' types.
                if (piped && PciAddress.TryParse(name, out var address) && Vgpu.IsSriovVgpuFunction(address)
                    && Inventory.Find(address)?.PhysicalFunctionAddress is PciAddress pf && Vgpu.Types(pf.ToString()) is { } pfTypes)
                {
                    yield return pfTypes;
                    continue;
                }
                var types = Vgpu.Types(name);
                if (types != null)
                {
                    yield return types;
                    continue;
                }
                if (SriovVgpu.NotEnabled(Vgpu, name) is { } notEnabled)
                {
                    // Piped or not, a GPU that could offer vGPUs once its VFs are enabled is worth saying so.
                    if (piped) WriteWarning(notEnabled.Message);
                    else WriteError(notEnabled);
                    continue;
                }
                if (piped)
                {
                    // Get-GpuDevice | Get-VgpuType: GPUs without vGPU support are passed over, not errors.
                    WriteVerbose($"{name} offers no vGPU types.");
                    continue;
                }
                WriteError(new GpuVirtException(ErrorIds.VgpuParentNotFound, ErrorKind.ObjectNotFound,
                    $"'{text}' offers no vGPU types: it is not under '{HostPaths.MdevBusClass}' and has no virtual function with " +
                    $"'{VgpuInventory.CreatableVgpuTypes}'. Is the NVIDIA vGPU Manager installed and the GPU supported? (Test-VgpuHost)", text));
            }
        }
    }
}
