using System;
using System.IO;
using System.Reflection;
using System.Runtime.Loader;

namespace GpuVirt.Core
{
    /// <summary>
    /// The module's own AssemblyLoadContext. The laid-out module keeps GpuVirt.ProcessLauncher and CliWrap in its
    /// <c>dependencies/</c> folder, where pwsh's default context does not look; when the default context cannot find
    /// GpuVirt.ProcessLauncher, this context loads it from there, and with it CliWrap. So another module's CliWrap,
    /// older or newer, loaded first into the default context, neither breaks this module nor is used by it, and this
    /// module's copy does not take the name from a module imported after it.
    /// </summary>
    internal sealed class ModuleLoadContext : AssemblyLoadContext
    {
        internal const string DependencyFolder = "dependencies";
        private const string LauncherName = "GpuVirt.ProcessLauncher";
        private static readonly object Gate = new object();
        private static ModuleLoadContext? _instance;
        private readonly string _directory;

        private ModuleLoadContext(string directory)
        {
            _directory = directory;
        }

        /// <summary>The folder the module's dependencies are loaded from: <c>dependencies/</c> beside this assembly.</summary>
        internal static string DependencyDirectory =>
            Path.Combine(Path.GetDirectoryName(typeof(ModuleLoadContext).Assembly.Location) ?? ".", DependencyFolder);

        /// <summary>Installs the default context's fallback for GpuVirt.ProcessLauncher once per process; cheap after the first call.</summary>
        internal static void EnsureResolver()
        {
            if (_instance != null) return;
            lock (Gate)
            {
                if (_instance != null) return;
                var context = new ModuleLoadContext(DependencyDirectory);
                Default.Resolving += (_, name) =>
                    string.Equals(name.Name, LauncherName, StringComparison.Ordinal) ? context.LoadDependency(name) : null;
                _instance = context;
            }
        }

        private Assembly? LoadDependency(AssemblyName name)
        {
            var path = Path.Combine(_directory, name.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }

        /// <summary>What lives in dependencies/ loads here; everything else (the framework, PowerShell) from the default context.</summary>
        protected override Assembly? Load(AssemblyName assemblyName) => assemblyName.Name is null ? null : LoadDependency(assemblyName);
    }
}
