using System;
using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Safety;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// Which guests' definitions (running or defined only) reference which devices, read from libvirt when it answers:
    /// the <c>Guests</c> of PCI devices, GPUs and vGPUs, and the <see cref="ErrorIds.DeviceReferencedByGuest"/>
    /// refusal of a change that would leave a guest with a dangling hostdev.
    /// </summary>
    internal sealed class GuestReferences
    {
        private readonly HostdevOwnership _ownership;

        private GuestReferences(HostdevOwnership ownership, string? connect)
        {
            _ownership = ownership;
            Connect = connect;
        }

        /// <summary>The libvirt URI the references were read from; null for virsh's default connection.</summary>
        public string? Connect { get; }

        /// <summary>
        /// Reads every guest's hostdevs; null when libvirt cannot be asked (virsh not installed, libvirt does not
        /// answer), which <paramref name="log"/> is told.
        /// </summary>
        public static GuestReferences? TryRead(Virsh virsh, Action<string>? log)
        {
            try
            {
                return new GuestReferences(HostdevOwnership.Read(virsh), virsh.Uri);
            }
            catch (GpuVirtException e) when (e.ErrorId == ErrorIds.LibvirtConnectFailed || e.ErrorId == ErrorIds.ProgramNotFound)
            {
                log?.Invoke("The guests' definitions cannot be read (" + e.Message + "): no guest references are checked.");
                return null;
            }
        }

        /// <summary>
        /// The guests' references of a host, read on first use and then kept: null when libvirt is not the host's to
        /// ask (<see cref="Reachable"/>) or does not answer.
        /// </summary>
        public static Lazy<GuestReferences?> OnFirstUse(ChangeHost host, Func<Virsh> virsh, Action<string>? log) =>
            new Lazy<GuestReferences?>(() => Reachable(host) ? TryRead(virsh(), log) : null);

        /// <summary>Whether libvirt is the host's to ask: a connection was given, or the host is the live one and virsh is installed.</summary>
        public static bool Reachable(ChangeHost host) =>
            host.Connect != null || (host.Root.IsLive && ProgramLocator.Find(Virsh.Program) != null);

        public IReadOnlyList<string> Of(PciAddress address) => _ownership.OwnersOf(address);

        public IReadOnlyList<string> Of(VgpuDevice device) =>
            device.Uuid != null ? _ownership.OwnersOf(MdevUuid.Parse(device.Uuid)) : _ownership.OwnersOf(device.PciAddress!.Value);

        /// <summary>Fills the <c>Guests</c> of each device.</summary>
        public void Fill(IEnumerable<PciDevice> devices)
        {
            foreach (var d in devices)
            {
                d.Guests = Of(d.PciAddress);
                d.Through(Connect);
            }
        }

        public void Fill(IEnumerable<VgpuDevice> devices)
        {
            foreach (var d in devices)
            {
                d.Guests = Of(d);
                d.Through(Connect);
            }
        }

        /// <summary>
        /// A refusal -Force lifts (with a warning saying the same) when guests reference the device: <paramref name="change"/>
        /// (as a sentence subject, "Giving it back to the host driver") would leave their definitions with a hostdev
        /// that no longer works.
        /// </summary>
        public static CheckFindings Check(IReadOnlyList<string> guests, string what, string target, string change)
        {
            var findings = new CheckFindings();
            if (guests.Count == 0) return findings;
            var names = "'" + string.Join("', '", guests) + "'";
            findings.RefuseUnlessForced(new GpuVirtException(ErrorIds.DeviceReferencedByGuest, ErrorKind.InvalidOperation,
                $"{what} is referenced by the definition of guest {names}: {change} would leave {(guests.Count == 1 ? "that guest" : "those guests")} with a hostdev " +
                $"that does not work (the guest fails to start, or loses the device).{CheckFindings.NothingChanged} " +
                $"Detach it from the guest first (Remove-GpuHostdev), or use -Force.", target));
            return findings;
        }
    }
}
