using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Xml.Linq;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Planning;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Mmio
{
    /// <summary>
    /// What a guest's definition lacks for the 64-bit MMIO space and physical address bits its hostdevs need: the new
    /// definition, the diff, the definition it was computed from. <see cref="GuestMmioPlanner"/> turns it into a plan.
    /// </summary>
    internal sealed class GuestMmioChange
    {
        internal GuestMmioChange(string domain, string baseXml, string newXml, GuestMmioSpace before, bool active)
        {
            Domain = domain;
            BaseXml = baseXml;
            NewXml = newXml;
            Before = before;
            IsActive = active;
        }

        public const string ActionText = "Set the 64-bit MMIO space (<pcihole64>, <maxphysaddr>)";

        public string Domain { get; }

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

        /// <summary>What the new definition changes, one line each.</summary>
        public IReadOnlyList<string> Changes { get; internal set; } = Array.Empty<string>();

        public IReadOnlyList<string> Warnings { get; internal set; } = Array.Empty<string>();

        public IReadOnlyList<string> Consequences { get; internal set; } = Array.Empty<string>();
    }

    /// <summary>
    /// Plans giving a guest the 64-bit MMIO space its hostdevs need (Set-GuestMmioSpace): reads libvirt and sysfs,
    /// writes nothing; the plan's one step is <c>virsh define --validate</c> of the new definition, with the old one as
    /// its inverse, applied by <see cref="PlanExecutor"/> under the host lock after the definition was read again
    /// (<see cref="ErrorIds.GuestDefinitionChanged"/> when it changed since it was planned), and journaled.
    /// </summary>
    internal sealed class GuestMmioPlanner
    {
        private readonly ChangeHost _host;
        private readonly Virsh _virsh;
        private readonly PciInventory _inventory;
        private readonly IEnumerable<IPlanCheck> _checks;

        public GuestMmioPlanner(ChangeHost host, Virsh virsh, PciInventory inventory, IEnumerable<IPlanCheck>? checks = null)
        {
            _host = host;
            _virsh = virsh;
            _inventory = inventory;
            _checks = checks ?? PlanChecks.All;
        }

        /// <summary>Reads the guest's persistent definition and plans what it lacks; its result is the space as the definition gives it afterwards.</summary>
        public ChangePlan<GuestMmioSpace> Plan(string domain)
        {
            var (all, active) = _virsh.ListDomainsWithState();
            var name = _virsh.ResolveDomain(domain, all);
            var change = Propose(name, _virsh.ReadDefinitionForEdit(name), active.Contains(name, StringComparer.Ordinal), _inventory);
            string? afterXml = null;
            var plan = new ChangePlan<GuestMmioSpace>(ChangeKind.GuestMmio, _host, $"guest '{name}'", GuestMmioChange.ActionText,
                () => afterXml is null ? change.Before : GuestMmio.Evaluate(afterXml, _inventory))
            {
                Summary = $"{GuestMmioChange.ActionText} of guest '{name}':",
                Domain = name,
            };
            plan.Warnings.AddRange(change.Warnings);
            if (!change.HasChanges)
            {
                plan.NothingToDo = $"Guest '{name}' already has the 64-bit MMIO space its hostdevs need.";
                PlanChecks.Run(plan, _checks);
                return plan;
            }

            var nl = Environment.NewLine;
            var description = string.Join(nl + "  ", change.Changes) + nl + "  " +
                _virsh.CommandLine(VirshCommand.Define("<temporary file with the new definition>")) + nl + change.Diff.TrimEnd();
            plan.Steps.Add(new PlanStep(description,
                c =>
                {
                    _virsh.Define(name, change.NewXml);
                    afterXml = _virsh.ReadDefinitionForEdit(name);
                    if (change.IsActive) c.Plan.AppliedWarnings.AddRange(change.Consequences);
                    else foreach (var line in change.Consequences) c.Log?.Invoke(line);
                },
                c => _virsh.Define(name, change.BaseXml),
                $"define guest '{name}' as it was before its 64-bit MMIO space was set")
            {
                Inverse = new InverseStep
                {
                    Kind = InverseKind.DefineDomain,
                    Description = $"define guest '{name}' as it was before its 64-bit MMIO space was set",
                    Domain = name,
                    Xml = change.BaseXml,
                },
            });
            plan.Consequences.AddRange(change.Consequences);
            // The definition is read again and written back under the guest's own lock, wherever -Root points.
            plan.GuestLocks.Add(GuestLockKey.Definition(_virsh, name));
            plan.Preconditions.Add(new PlanPrecondition($"the persistent definition of guest '{name}' as read when planning", () =>
            {
                try
                {
                    return string.Equals(_virsh.ReadDefinitionForEdit(name), change.BaseXml, StringComparison.Ordinal)
                        ? null
                        : $"the definition of guest '{name}' changed after the change was planned";
                }
                catch (GpuVirtException e)
                {
                    return $"the definition of guest '{name}' cannot be read again: {e.Message}";
                }
            }, ErrorIds.GuestDefinitionChanged));
            plan.Journal = () =>
            {
                var record = new ChangeRecord { Target = plan.Target, Action = plan.Action, Connect = _virsh.Uri };
                record.Details.AddRange(change.Changes.Select(s => new ChangeDetail(s, null, null)));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.DefineDomain,
                    Description = $"define guest '{name}' as it was before its 64-bit MMIO space was set",
                    Domain = name,
                    Xml = change.BaseXml,
                    ExpectedXml = afterXml,
                });
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }

        /// <summary>What a definition lacks, from its text (what <c>dumpxml --inactive --security-info</c> printed).</summary>
        public static GuestMmioChange Propose(string domain, string xml, bool active, PciInventory inventory)
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
            var plan = new GuestMmioChange(domain, xml, xml, before, active);
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
            plan = new GuestMmioChange(domain, xml, changed.ToString(SaveOptions.None), before, active)
            {
                NewPciHole64Bytes = newHole,
                NewMaxPhysAddr = newMax,
            };
            return Finish(plan, doc, changed);
        }

        private static GuestMmioChange Finish(GuestMmioChange plan, XDocument before, XDocument after)
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
                consequences.Add(plan.IsActive
                    ? $"Guest '{plan.Domain}' runs: the new definition takes effect when it next starts (shut it down and start it)."
                    : $"Takes effect when guest '{plan.Domain}' next starts.");
            }
            foreach (var item in space.NotSized) warnings.Add("Not counted: " + item + ".");
            plan.Changes = steps;
            plan.Consequences = consequences;
            plan.Warnings = warnings;
            plan.Diff = plan.HasChanges ? VgpuConsole.LineDiff(before.ToString(SaveOptions.None), after.ToString(SaveOptions.None)) : string.Empty;
            return plan;
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
