namespace GpuVirt.Core.Planning
{
    /// <summary>
    /// A check run over every plan before it is shown and again, under the host lock, before it is applied. It adds
    /// <see cref="ChangePlan.Warnings"/> and <see cref="ChangePlan.Refusals"/> to the plans of the kinds it cares about
    /// (<see cref="ChangePlan.Kind"/>). Adding a safety check is adding one class to <see cref="PlanChecks.All"/>.
    /// </summary>
    internal interface IPlanCheck
    {
        void Check(ChangePlan plan);
    }
}
