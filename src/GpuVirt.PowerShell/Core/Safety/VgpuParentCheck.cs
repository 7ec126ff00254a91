using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// Refuses to unbind the driver of a vGPU parent that has live vGPUs: unbinding removes its mediated devices
    /// (an SR-IOV physical function's driver owns its virtual functions' vGPU types), from under the guests using them.
    /// </summary>
    internal static class VgpuParentCheck
    {
        /// <param name="change">What would destroy them, as a sentence subject.</param>
        public static CheckFindings Check(VgpuInventory vgpu, PciAddress address, string change = "Unbinding its driver")
        {
            var findings = new CheckFindings();
            var live = vgpu.Devices()
                .Where(d => d.Active && (d.ParentPciAddress == address || (d.Kind == VgpuKind.SriovVf && d.PciAddress == address)))
                .ToList();
            if (live.Count == 0) return findings;
            var names = string.Join(", ", live.Select(d => d.Kind == VgpuKind.SriovVf
                ? $"virtual function {d.Address} (vGPU type {d.TypeId}{(d.TypeName is null ? string.Empty : " " + d.TypeName)})"
                : $"mediated device {d.Uuid} ({d.TypeId}{(d.TypeName is null ? string.Empty : " " + d.TypeName)})"));
            findings.Refuse(new GpuVirtException(ErrorIds.VgpuParentInUse, ErrorKind.ResourceBusy,
                $"{address} has live vGPUs: {names}. {change} would destroy them.{CheckFindings.NothingChanged} " +
                "Remove them first (Get-VgpuDevice | Where-Object ParentAddress -eq '" + address + "' | Remove-VgpuDevice), then try again.",
                address.ToString()));
            return findings;
        }
    }
}
