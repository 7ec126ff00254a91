using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Xml.Linq;

namespace GpuVirt.Core
{
    /// <summary>
    /// A planned change of one guest's definition that gives its hostdevs the 64-bit MMIO space and physical address
    /// bits they need: what it writes (the diff of the definition), the definition it was planned from, and the
    /// consequences. Nothing is written until <see cref="GuestMmioPlanner.Apply"/>.
    /// </summary>
    public sealed class GuestMmioPlan
    {
        internal GuestMmioPlan(string domain, string baseXml, string newXml, GuestMmioSpace before, bool active)
        {
            Domain = domain;
            BaseXml = baseXml;
            NewXml = newXml;
            Before = before;
            IsActive = active;
        }

        public string Domain { get; }

        /// <summary>What ShouldProcess names.</summary>
        public string Target => "domain " + Domain;

        public string Action => "Set the 64-bit MMIO space (<pcihole64>, <maxphysaddr>)";

        /// <summary>The persistent definition as read when planning (with secrets); the change is refused if it differs at apply time.</summary>
        public string BaseXml { get; }

        /// <summary>The whole new definition.</summary>
        public string NewXml { get; }

        public GuestMmioSpace Before { get; }

        public bool IsActive { get; }

        /// <summary>The new <c>&lt;pcihole64&gt;</c> in bytes; null when it stays.</summary>
        public ulong? NewPciHole64Bytes { get; internal set; }

        /// <summary>The new <c>&lt;maxphysaddr&gt;</c> element; null when it stays.</summary>
        public string? NewMaxPhysAddr { get; internal set; }

        public bool HasChanges => NewPciHole64Bytes.HasValue || NewMaxPhysAddr != null;

        /// <summary>The definition's lines that go (<c>-</c>) and come (<c>+</c>), with a line of context around each.</summary>
        public string Diff { get; internal set; } = string.Empty;

        /// <summary>What the change does, one line a step.</summary>
        public IReadOnlyList<string> Steps { get; internal set; } = Array.Empty<string>();

        public IReadOnlyList<string> Warnings { get; internal set; } = Array.Empty<string>();

        public IReadOnlyList<string> Consequences { get; internal set; } = Array.Empty<string>();
    }

    /// <summary>Plans and applies <see cref="GuestMmioPlan"/>s; reads libvirt and sysfs, writes only in <see cref="Apply"/>.</summary>
    public static class GuestMmioPlanner
    {
        /// <summary>Reads the guest's persistent definition and plans what it lacks.</summary>
        public static GuestMmioPlan Plan(Virsh virsh, PciInventory inventory, string domain)
        {
            var (all, active) = virsh.ListDomainsWithState();
            var name = virsh.ResolveDomain(domain, all);
            var xml = virsh.ReadDefinitionForEdit(name);
            return Plan(name, xml, active.Contains(name, StringComparer.Ordinal), inventory);
        }

        /// <summary>Plans from a definition's text (what <c>dumpxml --inactive --security-info</c> printed).</summary>
        public static GuestMmioPlan Plan(string domain, string xml, bool active, PciInventory inventory)
        {
            var doc = DomainXml.Load(xml, "guest '" + domain + "'");
            RemoveLayout(doc);
            var definition = GuestMmioXml.Read(doc);
            if (!definition.IsX86)
            {
                throw new GpuVirtException(ErrorIds.GuestMmioNotSupported, ErrorKind.InvalidOperation,
                    $"Guest '{domain}' is a {definition.Arch} guest; <pcihole64> and <maxphysaddr> apply to x86 guests (q35 or i440fx) only.", domain);
            }
            var before = GuestMmio.Evaluate(doc, DomainXml.Parse(xml), inventory, null);
            var plan = new GuestMmioPlan(domain, xml, xml, before, active);
            if (before.Fits || before.RecommendedBytes == 0) return Finish(plan, doc, doc);

            var changed = new XDocument(doc);
            var hole = before.EffectivePciHole64Bytes;
            ulong? newHole = null;
            if (!before.HoleFits)
            {
                newHole = before.RecommendedBytes;
                hole = newHole.Value;
                GuestMmioXml.SetPciHole64(changed, newHole.Value, definition.IsQ35);
            }
            var neededBits = MmioSize.BitsFor(before.Hole64Start + hole);
            var bits = before.EffectivePhysBits;
            string? newMax = null;
            if (bits is int b && b < neededBits)
            {
                if (before.HostPhysBits is int host && host < neededBits)
                {
                    throw new GpuVirtException(ErrorIds.GuestMmioPhysBitsUnavailable, ErrorKind.InvalidOperation,
                        $"Guest '{domain}' needs {neededBits} vCPU physical address bits to reach a 64-bit MMIO space of {MmioSize.Format(hole)} " +
                        $"at {Hex(before.Hole64Start)}, but this host's CPU has {host} ('address sizes' in {HostPaths.ProcCpuinfo}). " +
                        "Give the guest fewer GPUs or less memory, or run it on a host with more physical address bits.", domain);
                }
                if (definition.CpuTakesHostPhysBits && before.HostPhysBits is int h && h >= neededBits)
                {
                    GuestMmioXml.SetMaxPhysAddr(changed, null);
                    newMax = "<maxphysaddr mode='passthrough'/>";
                }
                else
                {
                    GuestMmioXml.SetMaxPhysAddr(changed, neededBits);
                    newMax = "<maxphysaddr mode='emulate' bits='" + neededBits.ToString(CultureInfo.InvariantCulture) + "'/>";
                }
            }
            plan = new GuestMmioPlan(domain, xml, changed.ToString(SaveOptions.None), before, active)
            {
                NewPciHole64Bytes = newHole,
                NewMaxPhysAddr = newMax,
            };
            return Finish(plan, doc, changed);
        }

        private static GuestMmioPlan Finish(GuestMmioPlan plan, XDocument before, XDocument after)
        {
            var steps = new List<string>();
            var consequences = new List<string>();
            var warnings = new List<string>();
            var space = plan.Before;
            if (plan.NewPciHole64Bytes is ulong hole)
            {
                steps.Add($"Set <pcihole64 unit='KiB'>{hole / MmioSize.KiB}</pcihole64> ({MmioSize.Format(hole)}) on the root PCI controller, " +
                    $"was {MmioSize.Format(space.EffectivePciHole64Bytes)}{(space.PciHole64Bytes is null ? " (QEMU's default)" : string.Empty)}");
            }
            if (plan.NewMaxPhysAddr != null)
            {
                steps.Add($"Set <cpu>{plan.NewMaxPhysAddr}</cpu>, was {(space.MaxPhysAddrMode is null ? "none" : "<maxphysaddr mode='" + space.MaxPhysAddrMode + "'" + (space.MaxPhysAddrBits is int b ? " bits='" + b.ToString(CultureInfo.InvariantCulture) + "'" : string.Empty) + "/>")} " +
                    $"({space.EffectivePhysBits?.ToString(CultureInfo.InvariantCulture) ?? "the host's"} bits)");
            }
            if (plan.HasChanges)
            {
                steps.Add("virsh define --validate with the new definition");
                consequences.Add(plan.IsActive
                    ? $"Guest '{plan.Domain}' runs: the new definition takes effect when it next starts (shut it down and start it)."
                    : $"Takes effect when guest '{plan.Domain}' next starts.");
            }
            foreach (var item in space.NotSized) warnings.Add("Not counted: " + item + ".");
            plan.Steps = steps;
            plan.Consequences = consequences;
            plan.Warnings = warnings;
            plan.Diff = plan.HasChanges ? VgpuConsole.LineDiff(before.ToString(SaveOptions.None), after.ToString(SaveOptions.None)) : string.Empty;
            return plan;
        }

        /// <summary>
        /// Writes the planned definition with <c>virsh define --validate</c>, after checking that the persistent definition
        /// is still the one planned from (refused with <see cref="ErrorIds.GuestDefinitionChanged"/> otherwise), and returns
        /// the space as the new definition gives it.
        /// </summary>
        public static GuestMmioSpace Apply(GuestMmioPlan plan, Virsh virsh, PciInventory inventory, ChangeRecorder? recorder = null)
        {
            if (!plan.HasChanges) return plan.Before;
            recorder?.Check();
            // The host lock makes the re-read, the define and its journal record one step among GpuVirt's commands.
            using (HostLock.Acquire(inventory.Root, "change the definition of guest '" + plan.Domain + "'"))
            {
                return ApplyLocked(plan, virsh, inventory, recorder);
            }
        }

        private static GuestMmioSpace ApplyLocked(GuestMmioPlan plan, Virsh virsh, PciInventory inventory, ChangeRecorder? recorder)
        {
            var current = virsh.ReadDefinitionForEdit(plan.Domain);
            if (!string.Equals(current, plan.BaseXml, StringComparison.Ordinal))
            {
                throw new GpuVirtException(ErrorIds.GuestDefinitionChanged, ErrorKind.InvalidOperation,
                    $"The definition of guest '{plan.Domain}' changed after the change was planned; nothing was written. Run the command again.", plan.Domain);
            }
            virsh.Define(plan.Domain, plan.NewXml);
            var after = virsh.ReadDefinitionForEdit(plan.Domain);
            if (recorder != null)
            {
                var record = new ChangeRecord { Target = $"guest '{plan.Domain}'", Action = plan.Action, Connect = virsh.Uri };
                record.Changes.AddRange(plan.Steps.Take(plan.Steps.Count - 1).Select(s => new ChangeDetail(s, null, null)));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.DefineDomain,
                    Description = $"define guest '{plan.Domain}' as it was before its 64-bit MMIO space was set",
                    Domain = plan.Domain,
                    Xml = plan.BaseXml,
                    ExpectedXml = after,
                });
                recorder.Record(record);
            }
            return GuestMmio.Evaluate(after, inventory);
        }

        /// <summary>
        /// Drops the whitespace between elements (libvirt's indentation), so that the old and new definitions are
        /// written with the same indentation and the diff shows only what changed. Text content stays as it is.
        /// </summary>
        private static void RemoveLayout(XDocument doc)
        {
            doc.DescendantNodes().OfType<XText>()
                .Where(t => string.IsNullOrWhiteSpace(t.Value) && t.Parent != null && t.Parent.Elements().Any())
                .ToList()
                .ForEach(t => t.Remove());
        }

        private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
    }
}
