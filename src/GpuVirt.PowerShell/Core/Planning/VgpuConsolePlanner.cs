using System;
using System.Collections.Generic;
using System.Linq;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Libvirt;
using GpuVirt.Core.Vgpu;

namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// Plans setting a guest's console up for its vGPU (Set-VgpuConsole): the persistent definition is read, changed in
    /// memory (<see cref="VgpuConsole.Plan"/>) and defined again. The plan holds the definition as it was read: under the
    /// host lock the executor reads it again and refuses the plan (<see cref="ErrorIds.GuestDefinitionChanged"/>) when
    /// anything changed it meanwhile, so that a hostdev attached in between is never defined away.
    /// </summary>
    internal sealed class VgpuConsolePlanner
    {
        private readonly ChangeHost _host;
        private readonly Virsh _virsh;
        private readonly IEnumerable<IPlanCheck> _checks;

        public VgpuConsolePlanner(ChangeHost host, Virsh virsh, IEnumerable<IPlanCheck>? checks = null)
        {
            _host = host;
            _virsh = virsh;
            _checks = checks ?? PlanChecks.All;
        }

        public ChangePlan<VgpuConsoleChange> Plan(string domain, string graphics, bool noEmulatedVideo, IReadOnlyCollection<Guid>? uuids)
        {
            // Resolved once; virsh is given the guest's UUID from here on.
            var guest = _virsh.ResolveGuest(domain);
            domain = guest.Name;
            var key = guest.Key;
            var original = _virsh.ReadDefinitionForEdit(key);
            var change = VgpuConsole.Plan(domain, original, graphics, noEmulatedVideo, uuids);
            var plan = new ChangePlan<VgpuConsoleChange>(ChangeKind.VgpuConsole, _host, $"guest '{domain}'",
                $"Redefine guest '{domain}' for a {graphics} vGPU console", () => change)
            {
                Domain = domain,
                Summary = $"Redefine guest '{domain}' for a {graphics} vGPU console:\n  {string.Join("\n  ", change.Changes)}\n{change.Diff}",
            };
            foreach (var uuid in uuids ?? Array.Empty<Guid>()) plan.Mdevs.Add(MdevUuid.Format(uuid));
            if (!change.Changed)
            {
                plan.NothingToDo = $"Guest '{domain}' is already set up for a {graphics} vGPU console.";
                return plan;
            }
            // The definition is read again and written back under the guest's own lock, wherever -Root points.
            plan.GuestLocks.Add(GuestLockKey.Definition(_virsh, guest));
            plan.Preconditions.Add(PlanPrecondition.DefinitionUnchanged(_virsh, key, original, domain));
            plan.Steps.Add(new PlanStep(
                $"define the changed definition of guest '{domain}' ({_virsh.CommandLine(new VirshCommand("define", "--file", "<temporary file>"))})",
                _ =>
                {
                    VgpuConsole.Define(_virsh, key, change.After);
                    change.Applied = true;
                },
                _ => VgpuConsole.Define(_virsh, key, original),
                $"define guest '{domain}' as it was before")
            {
                Inverse = new InverseStep { Kind = InverseKind.DefineDomain, Description = $"define guest '{domain}' as it was before", Domain = domain, Xml = original },
            });
            plan.Journal = () =>
            {
                var record = new ChangeRecord { Target = $"guest '{domain}'", Action = "Redefine the guest for a vGPU console", Connect = _virsh.Uri };
                record.Details.AddRange(change.Changes.Select(c => new ChangeDetail(c, null, null)));
                record.Inverse.Add(new InverseStep
                {
                    Kind = InverseKind.DefineDomain,
                    Description = $"define guest '{domain}' as it was before ({string.Join("; ", change.Changes)} taken back)",
                    Domain = domain,
                    Xml = original,
                    ExpectedXml = _virsh.ReadDefinitionForEdit(key),
                });
                return record;
            };
            PlanChecks.Run(plan, _checks);
            return plan;
        }
    }
}
