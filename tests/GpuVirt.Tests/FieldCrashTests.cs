using GpuVirt.Core;
using GpuVirt.Core.Boot;
using GpuVirt.Core.Journal;
using GpuVirt.Core.Planning;

namespace GpuVirt.Tests;

/// <summary>
/// Issue 29, item 18: every journaled plan has an intent written before its first step, naming its steps, their
/// inverses (the journal's own <see cref="InverseStep"/>) and the record it appends; the next command finishes or takes
/// back what a kill left; a journal that cannot take the record does not leave the change standing without one. The
/// steps here write files of a temporary root (their inverse is the journal's RestoreFiles), so every state a kill can
/// leave is made exactly; the real kills of real cmdlets are in tests/Pester/FieldCrash.Tests.ps1.
/// </summary>
public class FieldCrashTests
{
    private const string A = "/etc/a.conf";
    private const string B = "/etc/b.conf";

    private static HostRoot Host(TempRoot dir)
    {
        Directory.CreateDirectory(Path.Combine(dir.Path, "etc"));
        File.WriteAllText(Path.Combine(dir.Path, "etc/a.conf"), "a old\n");
        File.WriteAllText(Path.Combine(dir.Path, "etc/b.conf"), "b old\n");
        return new HostRoot(dir.Path);
    }

    private static string Read(HostRoot root, string hostPath) => File.ReadAllText(root.Resolve(hostPath));

    private static InverseStep Restore(string hostPath, string content) => new()
    {
        Kind = InverseKind.RestoreFiles,
        Description = "write " + hostPath + " back",
        Files = new List<FileState> { new() { Path = hostPath, Content = FileState.Encode(content), Expected = FileState.Hash(hostPath + " new\n") } },
    };

    /// <summary>A plan that writes "new" into both files, each step with its inverse as data; <paramref name="during"/> runs inside the first step.</summary>
    private static ChangePlan Plan(HostRoot root, Action? during = null)
    {
        var plan = new ChangePlan(ChangeKind.HostDriverDetach, new ChangeHost(root), "two files", "Write both files");
        foreach (var (path, old) in new[] { (A, "a old\n"), (B, "b old\n") })
        {
            var first = path == A;
            plan.Steps.Add(new PlanStep("write " + path,
                _ =>
                {
                    if (first) during?.Invoke();
                    HostFiles.WriteAtomically(root.Resolve(path), path, path + " new\n");
                },
                _ => HostFiles.WriteAtomically(root.Resolve(path), path, old))
            {
                Inverse = Restore(path, old),
            });
        }
        plan.Journal = () =>
        {
            var record = new ChangeRecord { Target = "two files", Action = "Write both files" };
            record.Inverse.Add(Restore(A, "a old\n"));
            record.Inverse.Add(Restore(B, "b old\n"));
            return record;
        };
        return plan;
    }

    private static PlanExecutor Executor(HostRoot root)
    {
        var executor = new PlanExecutor { Checks = Array.Empty<IPlanCheck>() };
        executor.Recorders.Add(new JournalPlanRecorder(new ChangeRecorder(root, null, "Test-Command", "Test-Command -Both")));
        return executor;
    }

    private static ChangeRecoveryResult Recover(HostRoot root) => ChangeRecovery.Recover(root, new ProcessRunner(), CancellationToken.None, null, null);

    [Fact]
    public void Item18_the_intent_names_the_steps_their_inverses_and_the_record_before_the_first_step_and_is_gone_once_journaled()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        PlanIntent? seen = null;
        var outcome = Executor(root).Apply(Plan(root, () => seen = PlanIntent.Read(root)));

        Assert.True(outcome.Succeeded, outcome.Error?.Message);
        Assert.NotNull(seen);
        var pending = Assert.Single(seen!.Document.Plans);
        Assert.Equal("Test-Command", seen.Document.Command);
        Assert.Equal(0, pending.StepsDone);
        Assert.False(pending.Complete);
        Assert.Equal(new[] { "write " + A, "write " + B }, pending.Steps.Select(s => s.Description));
        Assert.All(pending.Steps, s => Assert.Equal(InverseKind.RestoreFiles, s.Inverse!.Kind));
        Assert.Equal("Write both files", pending.Record!.Action);
        Assert.Equal("Test-Command -Both", pending.Record.CommandLine);

        Assert.Null(PlanIntent.Read(root));
        var record = Assert.Single(new ChangeJournal(root).Read());
        Assert.Equal("Write both files", record.Action);
        Assert.Equal(2, record.Inverse.Count);
    }

    [Fact]
    public void Item18_no_intent_and_nothing_journaled_for_an_executor_that_does_not_journal()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        PlanIntent? seen = null;
        var outcome = new PlanExecutor { Checks = Array.Empty<IPlanCheck>() }.Apply(Plan(root, () => seen = PlanIntent.Read(root)));
        Assert.True(outcome.Succeeded);
        Assert.Null(seen);
        Assert.False(new ChangeJournal(root).Exists);
    }

    [Fact]
    public void Item18_a_plan_killed_after_its_last_step_is_journaled_by_the_recovery_once_even_when_the_recovery_is_killed_too()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        var recorder = new ChangeRecorder(root, null, "Test-Command", "Test-Command -Both");
        var plan = Plan(root);
        foreach (var step in plan.Steps) step.Apply(new PlanContext(plan, CancellationToken.None, null));
        var intent = new PlanIntent(new PlanIntentDocument
        {
            Command = "Test-Command",
            Plans = { new PendingPlan { Target = plan.Target, Action = plan.Action, StepsDone = 2, Complete = true, Record = recorder.Stamp(plan.Journal!()),
                Steps = plan.Steps.Select(s => new PendingStep { Description = s.Description, Inverse = s.Inverse }).ToList() } },
        });
        intent.Write(root);

        var result = Recover(root);
        Assert.Equal("Finished the interrupted Test-Command: Write both files on two files was made and is now journaled as change 1.", Assert.Single(result.Lines));
        Assert.Null(PlanIntent.Read(root));
        // Killed after the journal took it and before the intent was removed: not journaled twice.
        intent.Write(root);
        Assert.Equal("The interrupted Test-Command (Write both files on two files) had been journaled as change 1.", Assert.Single(Recover(root).Lines));
        Assert.Single(new ChangeJournal(root).Read());
        Assert.Equal("/etc/a.conf new\n", Read(root, A));

        // The journaled change can be taken back.
        var journal = new ChangeJournal(root);
        using (var session = journal.Open())
        {
            var undo = new ChangeUndo(root, new ProcessRunner());
            undo.Apply(undo.Plan(session.Find(1)!), session, "Undo-GpuVirtChange -Id 1", force: false);
        }
        Assert.Equal("a old\n", Read(root, A));
        Assert.Equal("b old\n", Read(root, B));
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(0, true)]
    [InlineData(1, true)]
    public void Item18_a_plan_cut_off_half_way_is_taken_back_through_its_stored_inverses_where_the_host_shows_them(int stepsDone, bool inFlightMade)
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        var plan = Plan(root);
        // The steps noted as done were made; the next one was cut off before (or after) it took effect.
        var made = stepsDone + (inFlightMade ? 1 : 0);
        foreach (var step in plan.Steps.Take(made)) step.Apply(new PlanContext(plan, CancellationToken.None, null));
        new PlanIntent(new PlanIntentDocument
        {
            Command = "Test-Command",
            Plans = { new PendingPlan { Target = plan.Target, Action = plan.Action, StepsDone = stepsDone,
                Steps = plan.Steps.Select(s => new PendingStep { Description = s.Description, Inverse = s.Inverse }).ToList() } },
        }).Write(root);

        var line = Assert.Single(Recover(root).Lines);
        Assert.StartsWith("Took back the interrupted Test-Command (Write both files on two files): ", line);
        Assert.Equal(made == 0, line.EndsWith("none of its steps had taken effect.", StringComparison.Ordinal));
        Assert.Equal("a old\n", Read(root, A));
        Assert.Equal("b old\n", Read(root, B));
        Assert.Null(PlanIntent.Read(root));
        Assert.Empty(new ChangeJournal(root).Read());
    }

    [Fact]
    public void Item18_the_next_journaled_plan_settles_what_was_left_before_its_own_steps()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        var killed = Plan(root);
        killed.Steps[0].Apply(new PlanContext(killed, CancellationToken.None, null));
        new PlanIntent(new PlanIntentDocument
        {
            Command = "Test-Command",
            Plans = { new PendingPlan { Target = killed.Target, Action = killed.Action, StepsDone = 1,
                Steps = killed.Steps.Select(s => new PendingStep { Description = s.Description, Inverse = s.Inverse }).ToList() } },
        }).Write(root);

        var next = Plan(root);
        var outcome = Executor(root).Apply(next);
        Assert.True(outcome.Succeeded, outcome.Error?.Message);
        Assert.StartsWith("Took back the interrupted Test-Command", Assert.Single(next.AppliedWarnings));
        Assert.Single(new ChangeJournal(root).Read());
        Assert.Null(PlanIntent.Read(root));
    }

    [Fact]
    public void Item18_a_journal_that_cannot_take_the_record_takes_the_change_back_instead_of_leaving_it_without_one()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        // A journal path that is a directory: the journal cannot be replaced, as on a full or read-only disk.
        Directory.CreateDirectory(root.Resolve(ChangeJournal.HostPath));
        var plan = Plan(root);
        var outcome = Executor(root).Apply(plan);

        Assert.False(outcome.Succeeded);
        Assert.Equal(ErrorIds.JournalWriteFailed, outcome.Error!.ErrorId);
        Assert.Contains("the change is taken back rather than left without a record", outcome.Error.Message);
        Assert.Contains("nothing was changed", outcome.Error.Message);
        Assert.Equal(2, outcome.Undone.Count);
        Assert.Equal("a old\n", Read(root, A));
        Assert.Equal("b old\n", Read(root, B));
        Assert.Null(PlanIntent.Read(root));
    }

    [Fact]
    public void Item18_an_intent_that_cannot_be_written_stops_the_plan_before_its_first_step()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        // /var/lib/gpuvirt is a file: neither the intent nor the journal can be written there.
        Directory.CreateDirectory(root.Resolve("/var/lib"));
        File.WriteAllText(root.Resolve("/var/lib/gpuvirt"), "not a directory\n");
        var ran = false;
        var outcome = Executor(root).Apply(Plan(root, () => ran = true));

        Assert.False(outcome.Succeeded);
        Assert.Equal(ErrorIds.JournalWriteFailed, outcome.Error!.ErrorId);
        Assert.EndsWith("Nothing was changed.", outcome.Error.Message);
        Assert.False(ran);
        Assert.Equal("a old\n", Read(root, A));
    }

    [Fact]
    public void Item18_an_intent_that_cannot_be_read_is_a_named_error_and_nothing_acts_on_it()
    {
        using var dir = new TempRoot();
        var root = Host(dir);
        Directory.CreateDirectory(root.Resolve("/var/lib/gpuvirt"));
        File.WriteAllText(root.Resolve(PlanIntent.HostPath), "{ \"Format\": \"GpuVirt change in progress\", \"Version\": 1, \"Plans\": [ { \"StepsDone\": 5, \"Steps\": [] } ] }\n");
        var ran = false;
        var outcome = Executor(root).Apply(Plan(root, () => ran = true));

        Assert.Equal(ErrorIds.ChangeRecordUnreadable, outcome.Error!.ErrorId);
        Assert.False(ran);
        Assert.True(File.Exists(root.Resolve(PlanIntent.HostPath)));
    }
}
