using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>How a host turns its kernel command line configuration into boot entries.</summary>
    public enum BootLoaderFamily
    {
        /// <summary>RHEL 7 and alike: <c>/etc/sysconfig/grub</c> (a link to <c>/etc/default/grub</c>), then <c>grub2-mkconfig -o /etc/grub2.cfg</c> (UEFI: <c>/etc/grub2-efi.cfg</c>).</summary>
        Rhel7,

        /// <summary>RHEL 8+, Fedora (<c>GRUB_ENABLE_BLSCFG=true</c>): <c>/etc/default/grub</c> for future kernels, <c>grubby</c> for each installed one.</summary>
        Bls,

        /// <summary>Debian, Ubuntu: <c>/etc/default/grub</c>, then <c>update-grub</c>.</summary>
        Debian,

        /// <summary>systemd-boot and kernel-install: <c>/etc/kernel/cmdline</c>, then <c>kernel-install add</c> for each installed kernel.</summary>
        SystemdBoot,

        /// <summary>Any other GRUB (Arch, Manjaro, Gentoo, openSUSE, Fedora without BLS): <c>/etc/default/grub</c>, then <c>grub-mkconfig -o</c> or <c>grub2-mkconfig -o</c> the configuration the host has.</summary>
        Grub,

        /// <summary>Pop!_OS: <c>kernelstub --add-options</c> / <c>--delete-options</c>, which keep <c>/etc/kernelstub/configuration</c>.</summary>
        Kernelstub,

        /// <summary>Fedora CoreOS, Silverblue, RHEL for Edge: <c>rpm-ostree kargs</c>, read back from the default deployment's boot entry.</summary>
        RpmOstree,

        /// <summary>Proxmox VE with <c>proxmox-boot-tool</c> (ZFS, systemd-boot or GRUB on the ESPs): <c>/etc/kernel/cmdline</c> (or <c>/etc/default/grub</c>), then <c>proxmox-boot-tool refresh</c>.</summary>
        ProxmoxBootTool,
    }
}
