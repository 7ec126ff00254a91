using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using GpuVirt.Core.Boot;

namespace GpuVirt.Core.Vgpu
{
    /// <summary>One SR-IOV vGPU to bring back at boot: the GPU, its virtual function and the type to set.</summary>
    internal sealed class SriovVgpuProfile
    {
        public SriovVgpuProfile(PciAddress physicalFunction, PciAddress virtualFunction, string typeId, string? typeName)
        {
            PhysicalFunction = physicalFunction;
            VirtualFunction = virtualFunction;
            TypeId = typeId;
            TypeName = string.IsNullOrWhiteSpace(typeName) ? null : typeName;
        }

        public PciAddress PhysicalFunction { get; }
        public PciAddress VirtualFunction { get; }
        public string TypeId { get; }
        public string? TypeName { get; }

        public string Line => PhysicalFunction + " " + VirtualFunction + " " + TypeId + (TypeName is null ? string.Empty : " " + TypeName);
    }

    /// <summary>
    /// Persistence for NVIDIA SR-IOV vGPUs on plain libvirt, where nothing keeps a VF's type across a reboot: a
    /// declarative file, <c>/etc/gpuvirt/vgpu-profiles.conf</c> (one <c>PF VF TYPE-ID TYPE-NAME</c> line per vGPU), and a
    /// systemd unit, <c>gpuvirt-vgpu.service</c>, ordered after NVIDIA's vGPU manager and SR-IOV services, that runs
    /// <c>/usr/libexec/gpuvirt/vgpu-restore</c> at boot: it enables each GPU's virtual functions when they are not
    /// (sriov-manage -e, or sriov_numvfs), waits a bounded time for each VF and writes its type. The unit is enabled the
    /// way <c>systemctl enable</c> does it (a link in <c>multi-user.target.wants</c>), so no running systemd is needed.
    /// </summary>
    internal sealed class SriovVgpuProfiles
    {
        public const string ProfileFile = "/etc/gpuvirt/vgpu-profiles.conf";
        public const string UnitName = "gpuvirt-vgpu.service";
        public const string UnitFile = "/etc/systemd/system/" + UnitName;
        public const string WantsLink = "/etc/systemd/system/multi-user.target.wants/" + UnitName;
        public const string RestoreScript = "/usr/libexec/gpuvirt/vgpu-restore";

        /// <summary>How long the boot script waits for one virtual function to show its vGPU types, in tenths of a second.</summary>
        public const int WaitTenths = 600;

        private readonly HostRoot _root;

        public SriovVgpuProfiles(HostRoot root)
        {
            _root = root ?? throw new ArgumentNullException(nameof(root));
        }

        /// <summary>The profiles recorded now (lines that do not parse are skipped: the boot script skips them too).</summary>
        public IReadOnlyList<SriovVgpuProfile> Read()
        {
            var path = _root.Resolve(ProfileFile);
            if (!File.Exists(path)) return Array.Empty<SriovVgpuProfile>();
            var list = new List<SriovVgpuProfile>();
            foreach (var raw in FileReads.ReadUtf8(path, ProfileFile).Split('\n'))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith("#", StringComparison.Ordinal)) continue;
                var parts = line.Split(new[] { ' ', '\t' }, 4, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 3 || !PciAddress.TryParse(parts[0], out var pf) || !PciAddress.TryParse(parts[1], out var vf)) continue;
                if (!int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out _)) continue;
                list.Add(new SriovVgpuProfile(pf, vf, parts[2], parts.Length > 3 ? parts[3] : null));
            }
            return list;
        }

        public SriovVgpuProfile? Find(PciAddress vf) => Read().FirstOrDefault(p => p.VirtualFunction == vf);

        /// <summary>The host paths a change writes, for -WhatIf.</summary>
        public IReadOnlyList<string> InstallLines(bool adding)
        {
            var lines = new List<string> { (adding ? "add to " : "remove from ") + ProfileFile };
            if (adding)
            {
                if (!IsInstalled()) lines.Add($"write {RestoreScript} and {UnitFile}, enable it ({WantsLink})");
            }
            else
            {
                lines.Add($"when no profile is left: remove {ProfileFile}, {WantsLink}, {UnitFile} and {RestoreScript}");
            }
            return lines;
        }

        /// <summary>Whether the script, the unit and its enabling link are in place as this module writes them.</summary>
        public bool IsInstalled()
        {
            var unit = _root.Resolve(UnitFile);
            var script = _root.Resolve(RestoreScript);
            return File.Exists(unit) && FileReads.ReadUtf8(unit, UnitFile) == UnitText
                && File.Exists(script) && FileReads.ReadUtf8(script, RestoreScript) == ScriptText
                && Sysfs.TryReadLink(_root.ResolveEntry(WantsLink)) == UnitFile;
        }

        /// <summary>Records (or replaces) a profile and makes sure the boot unit is installed and enabled.</summary>
        public void Add(SriovVgpuProfile profile)
        {
            var kept = Read().Where(p => p.VirtualFunction != profile.VirtualFunction).ToList();
            kept.Add(profile);
            WriteProfiles(kept);
            Install();
        }

        /// <summary>Takes a VF's profile out; with none left, removes the file and disables and removes the unit. False when it had none.</summary>
        public bool Remove(PciAddress vf)
        {
            var all = Read();
            if (!all.Any(p => p.VirtualFunction == vf)) return false;
            var kept = all.Where(p => p.VirtualFunction != vf).ToList();
            if (kept.Count > 0)
            {
                WriteProfiles(kept);
                return true;
            }
            foreach (var hostPath in new[] { WantsLink, UnitFile, RestoreScript, ProfileFile })
            {
                var full = _root.ResolveEntry(hostPath);
                try
                {
                    if (File.Exists(full) || Sysfs.TryReadLink(full) != null) File.Delete(full);
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    throw new GpuVirtException(ErrorIds.VgpuProfileWriteFailed, ErrorKind.WriteError, $"Cannot remove '{hostPath}': {e.Message}", hostPath, e);
                }
            }
            return true;
        }

        private void WriteProfiles(IReadOnlyList<SriovVgpuProfile> profiles)
        {
            var sb = new StringBuilder();
            sb.Append("# NVIDIA SR-IOV vGPUs that ").Append(UnitName).Append(" sets again at boot (").Append(RestoreScript).Append(").\n");
            sb.Append("# Written by GpuVirt: New-VgpuDevice -Persistent adds a line, Remove-VgpuDevice -Persistent takes it out.\n");
            sb.Append("# physical-function virtual-function type-id type-name\n");
            foreach (var p in profiles.OrderBy(p => p.VirtualFunction)) sb.Append(p.Line).Append('\n');
            Write(ProfileFile, sb.ToString(), 0x1a4);
        }

        private void Install()
        {
            Write(RestoreScript, ScriptText, 0x1ed /* 0755 */);
            Write(UnitFile, UnitText, 0x1a4);
            var link = _root.ResolveEntry(WantsLink);
            if (Sysfs.TryReadLink(link) == UnitFile) return;
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(link)!);
                if (File.Exists(link) || Sysfs.TryReadLink(link) != null) File.Delete(link);
                // What systemctl enable writes: an absolute link to the unit, which resolves inside the host.
                if (LibC.symlink(LibC.Path(UnitFile), LibC.Path(link)) != 0)
                    throw new IOException(Errno.Describe(System.Runtime.InteropServices.Marshal.GetLastWin32Error()));
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(WantsLink, "write", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(ErrorIds.VgpuProfileWriteFailed, ErrorKind.WriteError, $"Cannot enable {UnitName} ('{WantsLink}'): {e.Message}", WantsLink, e);
            }
        }

        private void Write(string hostPath, string content, int mode)
        {
            var full = _root.Resolve(hostPath);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(hostPath, "write", e);
            }
            if (File.Exists(full) && FileReads.ReadUtf8(full, hostPath) == content) return;
            HostFiles.WriteAtomically(full, hostPath, content, mode);
        }

        /// <summary>The unit: a oneshot after NVIDIA's vGPU manager and SR-IOV services, before libvirt starts guests.</summary>
        public static readonly string UnitText =
            "# Written by GpuVirt (New-VgpuDevice -Persistent); removed with the last profile (Remove-VgpuDevice -Persistent).\n" +
            "[Unit]\n" +
            "Description=Restore NVIDIA SR-IOV vGPU types recorded by GpuVirt\n" +
            "After=systemd-modules-load.service nvidia-vgpud.service nvidia-vgpu-mgr.service nvidia-sriov.service\n" +
            "Before=libvirtd.service virtqemud.service libvirt-guests.service\n" +
            "ConditionPathExists=" + ProfileFile + "\n" +
            "\n" +
            "[Service]\n" +
            "Type=oneshot\n" +
            "RemainAfterExit=yes\n" +
            "ExecStart=" + RestoreScript + " " + ProfileFile + "\n" +
            "TimeoutStartSec=600\n" +
            "\n" +
            "[Install]\n" +
            "WantedBy=multi-user.target\n";

        /// <summary>
        /// The boot script (POSIX sh): for each profile line, enable the PF's virtual functions if the VF is missing, wait
        /// (bounded) for the VF's <c>nvidia/creatable_vgpu_types</c>, then write the type unless it is set already. Every
        /// line is tried; the exit status is 1 when any failed, and each outcome is one line in the journal.
        /// </summary>
        public static readonly string ScriptText = string.Join("\n", new[]
        {
            "#!/bin/sh",
            "# Written by GpuVirt: sets the NVIDIA SR-IOV vGPU types recorded in the profile file again (run by " + UnitName + ").",
            "# Each line of the file: physical-function virtual-function type-id [type-name].",
            "conf=${1:-" + ProfileFile + "}",
            "sys=/sys/bus/pci/devices",
            "manage=" + SriovVgpu.SriovManage,
            "status=0",
            "settle() { # path: wait up to " + (WaitTenths / 10).ToString(CultureInfo.InvariantCulture) + " s for it to exist",
            "    n=0",
            "    while [ ! -e \"$1\" ]; do",
            "        [ \"$n\" -ge " + WaitTenths.ToString(CultureInfo.InvariantCulture) + " ] && return 1",
            "        sleep 0.1; n=$((n + 1))",
            "    done",
            "}",
            "[ -r \"$conf\" ] || { echo \"gpuvirt: $conf is missing\"; exit 0; }",
            "while read -r pf vf type name; do",
            "    case \"$pf\" in ''|'#'*) continue ;; esac",
            "    types=$sys/$vf/nvidia/creatable_vgpu_types",
            "    if [ ! -e \"$types\" ] && [ -e \"$sys/$pf/sriov_numvfs\" ]; then",
            "        read -r numvfs < \"$sys/$pf/sriov_numvfs\"",
            "        if [ \"$numvfs\" = 0 ]; then",
            "            if [ -x \"$manage\" ]; then",
            "                echo \"gpuvirt: $manage -e $pf\"; \"$manage\" -e \"$pf\"",
            "            else",
            "                read -r total < \"$sys/$pf/sriov_totalvfs\"",
            "                echo \"gpuvirt: enabling $total virtual functions of $pf\"; echo \"$total\" > \"$sys/$pf/sriov_numvfs\"",
            "            fi",
            "        fi",
            "    fi",
            "    if ! settle \"$types\"; then",
            "        echo \"gpuvirt: $vf ($pf) did not appear with nvidia/creatable_vgpu_types; type $type not set\"; status=1; continue",
            "    fi",
            "    read -r current < \"$sys/$vf/nvidia/current_vgpu_type\"",
            "    if [ \"$current\" = \"$type\" ]; then echo \"gpuvirt: $vf already has type $type\"; continue; fi",
            "    if [ \"$current\" != 0 ]; then echo \"gpuvirt: $vf has type $current, not $type; left as it is\"; status=1; continue; fi",
            "    if echo \"$type\" > \"$sys/$vf/nvidia/current_vgpu_type\"; then",
            "        echo \"gpuvirt: $vf set to type $type $name\"",
            "    else",
            "        echo \"gpuvirt: writing $type to $vf failed\"; status=1",
            "    fi",
            "done < \"$conf\"",
            "exit $status",
            "",
        });
    }
}
