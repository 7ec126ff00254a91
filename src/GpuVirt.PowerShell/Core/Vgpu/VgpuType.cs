using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>How a vGPU is made: a mediated device (write a UUID to <c>create</c>) or an NVIDIA SR-IOV virtual function (vGPU 17+).</summary>
    public enum VgpuKind
    {
        Mdev,
        SriovVf,
    }

    /// <summary>
    /// One vGPU type a parent device offers: <c>/sys/class/mdev_bus/&lt;parent&gt;/mdev_supported_types/&lt;id&gt;</c>, or an
    /// entry of NVIDIA's <c>nvidia/creatable_vgpu_types</c> on SR-IOV virtual functions.
    /// </summary>
    public sealed class VgpuType : HostObject
    {
        /// <summary>The parent device as named under <c>/sys/class/mdev_bus</c> (a PCI address for GPUs); for SR-IOV the physical function, or the VF asked for.</summary>
        public string Parent { get; internal set; } = string.Empty;

        /// <summary>The parent as a PCI address, null for a parent that is not a PCI function.</summary>
        public string? ParentAddress => ParentPciAddress?.ToString();

        internal PciAddress? ParentPciAddress { get; set; }

        /// <summary>The type id: the directory name (<c>nvidia-63</c>, <c>i915-GVTg_V5_4</c>) or the SR-IOV vGPU type number (<c>557</c>).</summary>
        public string Id { get; internal set; } = string.Empty;

        /// <summary>The human name (<c>GRID P4-1Q</c>); null when the driver gives none.</summary>
        public string? Name { get; internal set; }

        public string? DeviceApi { get; internal set; }

        public int AvailableInstances { get; internal set; }

        /// <summary>The driver's description as written.</summary>
        public string? Description { get; internal set; }

        /// <summary>The description's fields: NVIDIA's <c>key=value, …</c> list or Intel GVT-g's <c>key: value</c> lines.</summary>
        public IReadOnlyDictionary<string, string> Properties { get; internal set; } = new Dictionary<string, string>();

        public string? Framebuffer => Get("framebuffer");

        public int? NumHeads => GetInt("num_heads");

        /// <summary>NVIDIA's <c>max_resolution</c>, or Intel GVT-g's <c>resolution</c>.</summary>
        public string? MaxResolution => Get("max_resolution") ?? Get("resolution");

        public int? MaxInstance => GetInt("max_instance");

        /// <summary>The frame rate limiter setting (frames per second).</summary>
        public int? FrlConfig => GetInt("frl_config");

        /// <summary>For NVIDIA types, the series letter from the name: A (apps), B (PC), C (compute), Q (workstation).</summary>
        public string? Series { get; internal set; }

        public VgpuKind Kind { get; internal set; }

        /// <summary>The type directory as the module reads it (mdev), or null (SR-IOV).</summary>
        public string? Directory { get; internal set; }

        /// <summary>SR-IOV: the virtual functions that can take this type now.</summary>
        public IReadOnlyList<string> VirtualFunctions => VirtualFunctionAddresses.Select(a => a.ToString()).ToList();

        internal IReadOnlyList<PciAddress> VirtualFunctionAddresses { get; set; } = Array.Empty<PciAddress>();

        /// <summary>The name when there is one, else the id.</summary>
        public string DisplayName => Name ?? Id;

        public override string ToString() => Parent + "/" + Id;

        private string? Get(string key) => Properties.TryGetValue(key, out var v) ? v : null;

        private int? GetInt(string key) =>
            int.TryParse(Get(key), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : (int?)null;

        private static readonly Regex SeriesPattern = new Regex(@"-\d+([ABCQ])\d*$", RegexOptions.CultureInvariant);

        /// <summary>The series letter of an NVIDIA vGPU type name (<c>GRID P4-1Q</c> → Q, <c>GRID M60-1B4</c> → B), or null.</summary>
        internal static string? ParseSeries(string? name)
        {
            if (name is null) return null;
            var trimmed = name.Trim();
            if (!trimmed.StartsWith("GRID ", StringComparison.Ordinal) && !trimmed.StartsWith("NVIDIA ", StringComparison.Ordinal)) return null;
            var m = SeriesPattern.Match(trimmed);
            return m.Success ? m.Groups[1].Value : null;
        }

        /// <summary>
        /// Parses a type description: NVIDIA's one line <c>num_heads=4, frl_config=60, framebuffer=1024M</c> and Intel
        /// GVT-g's lines <c>low_gm_size: 128MB</c>. Pieces that are neither are left out.
        /// </summary>
        internal static IReadOnlyDictionary<string, string> ParseDescription(string? description)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            if (string.IsNullOrWhiteSpace(description)) return result;
            foreach (var line in description!.Split('\n'))
            {
                foreach (var piece in line.Split(','))
                {
                    var s = piece.Trim();
                    var eq = s.IndexOf('=');
                    var colon = s.IndexOf(':');
                    var at = eq > 0 ? eq : colon;
                    if (at <= 0) continue;
                    var key = s.Substring(0, at).Trim();
                    var value = s.Substring(at + 1).Trim();
                    if (key.Length > 0 && !result.ContainsKey(key)) result[key] = value;
                }
            }
            return result;
        }
    }
}
