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
    /// What a check found about a change before anything is written: refusals that block it, refusals that
    /// <c>-Force</c> may override (they become warnings then), and warnings.
    /// </summary>
    internal sealed class CheckFindings
    {
        private readonly List<GpuVirtException> _refusals = new List<GpuVirtException>();
        private readonly List<GpuVirtException> _overridable = new List<GpuVirtException>();
        private readonly List<string> _warnings = new List<string>();

        public IReadOnlyList<GpuVirtException> Refusals => _refusals;

        /// <summary>Refusals that <c>-Force</c> turns into warnings.</summary>
        public IReadOnlyList<GpuVirtException> OverridableRefusals => _overridable;

        public IReadOnlyList<string> Warnings => _warnings;

        public void Refuse(GpuVirtException refusal) => _refusals.Add(refusal);

        public void RefuseUnlessForced(GpuVirtException refusal) => _overridable.Add(refusal);

        public void Warn(string warning) => _warnings.Add(warning);

        public void AddRange(CheckFindings other)
        {
            _refusals.AddRange(other._refusals);
            _overridable.AddRange(other._overridable);
            _warnings.AddRange(other._warnings);
        }

        /// <summary>The refusals that stand with or without <paramref name="force"/>, first the ones -Force cannot lift.</summary>
        public IReadOnlyList<GpuVirtException> Blocking(bool force) => force ? _refusals : _refusals.Concat(_overridable).ToList();

        /// <summary>The warnings to show: with <paramref name="force"/>, also one per overridden refusal.</summary>
        public IReadOnlyList<string> WarningsFor(bool force) =>
            force ? _overridable.Select(Overridden).Concat(_warnings).ToList() : _warnings;

        /// <summary>Adds the findings to a plan: refusals as <see cref="PlanRefusal"/>s (the overridable ones with the warning -Force shows), warnings as warnings.</summary>
        public void AddTo(ChangePlan plan)
        {
            foreach (var refusal in _refusals) plan.Refusals.Add(new PlanRefusal(refusal));
            foreach (var refusal in _overridable) plan.Refusals.Add(new PlanRefusal(refusal, Overridden(refusal)));
            plan.Warnings.AddRange(_warnings);
        }

        private static string Overridden(GpuVirtException refusal) =>
            refusal.Message.Split(new[] { NothingChanged }, StringSplitOptions.None)[0].TrimEnd() + " -Force: going ahead anyway.";

        internal const string NothingChanged = " Nothing was changed.";
    }
}
