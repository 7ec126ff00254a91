using GpuVirt.HelpBuilder;

return Cli.Run(args, Console.Out, Console.Error);

namespace GpuVirt.HelpBuilder
{
    /// <summary>The command line: <c>--docs DIR --out DIR [--module NAME]</c>.</summary>
    internal static class Cli
    {
        public const string Usage =
            "usage: GpuVirt.HelpBuilder --docs <docs folder> --out <output folder> [--module <module name>]\n" +
            "  Reads the PlatyPS (2024-05-01 schema) cmdlet pages and about_*.md topics in <docs folder> and writes\n" +
            "  the MAML help file named by their 'external help file' and about_<Name>.help.txt files to <output folder>.\n" +
            "  --module checks that every cmdlet page says 'Module Name: <module name>'.";

        public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
        {
            string? docs = null, output = null, module = null;
            for (int i = 0; i < args.Length; i++)
            {
                string arg = args[i];
                if (arg is "-h" or "--help" or "-?")
                {
                    stdout.WriteLine(Usage);
                    return 0;
                }

                if (arg is not ("--docs" or "--out" or "--module"))
                {
                    stderr.WriteLine($"error: unknown argument '{arg}'");
                    stderr.WriteLine(Usage);
                    return 2;
                }

                if (i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    stderr.WriteLine($"error: {arg} needs a value");
                    stderr.WriteLine(Usage);
                    return 2;
                }

                string value = args[++i];
                switch (arg)
                {
                    case "--docs": docs = value; break;
                    case "--out": output = value; break;
                    default: module = value; break;
                }
            }

            if (docs is null || output is null)
            {
                stderr.WriteLine("error: --docs and --out are required");
                stderr.WriteLine(Usage);
                return 2;
            }

            BuildResult result;
            try
            {
                result = HelpBuilder.Build(docs, output, module);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"error: {e.Message}");
                return 1;
            }

            foreach (var error in result.Errors)
            {
                stderr.WriteLine($"error: {error.Message}");
            }

            if (!result.Succeeded)
            {
                stderr.WriteLine($"{result.Errors.Count} page(s) break the help schema; nothing was written.");
                return 1;
            }

            foreach (string path in result.Written)
            {
                stdout.WriteLine($"wrote {path}");
            }

            if (result.Written.Count == 0)
            {
                stdout.WriteLine($"no cmdlet pages or about_ topics in {docs}; nothing to write.");
            }

            return 0;
        }
    }
}
