using System;
using System.IO;

namespace GpuVirt.Core
{
    /// <summary>Finds an installed program on PATH, to choose between a tool (mdevctl) and the module's own way.</summary>
    internal static class ProgramLocator
    {
        /// <summary>The full path of an executable file named <paramref name="program"/> on PATH, or null.</summary>
        public static string? Find(string program)
        {
            var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
            foreach (var dir in path.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(dir, program);
                if (File.Exists(candidate) && LibC.access(LibC.Path(candidate), X_OK) == 0) return candidate;
            }
            return null;
        }

        private const int X_OK = 1;

    }
}
