using System.Reflection;
using System.Reflection.Emit;

namespace GpuVirt.Fixtures;

/// <summary>
/// A stand-in for another module's copy of CliWrap: an assembly named <c>CliWrap</c> of another version whose
/// <c>CliWrap.Cli.Wrap(string)</c> returns <c>"other CliWrap VERSION: target"</c>. The package feed serves one CliWrap
/// version only, so the conflict a second module would bring is made here: loaded first into pwsh's default load
/// context, it takes the name <c>CliWrap</c> there, as another module's copy would.
/// </summary>
public static class OtherCliWrap
{
    /// <summary>Writes <c>CliWrap.dll</c> of <paramref name="version"/> into <paramref name="directory"/> and returns its path.</summary>
    public static string Write(string directory, string version)
    {
        Directory.CreateDirectory(directory);
        var name = new AssemblyName("CliWrap") { Version = Version.Parse(version) };
        var assembly = new PersistedAssemblyBuilder(name, typeof(object).Assembly);
        var module = assembly.DefineDynamicModule("CliWrap");
        var cli = module.DefineType("CliWrap.Cli", TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed | TypeAttributes.Class);
        var wrap = cli.DefineMethod("Wrap", MethodAttributes.Public | MethodAttributes.Static, typeof(string), new[] { typeof(string) });
        var il = wrap.GetILGenerator();
        il.Emit(OpCodes.Ldstr, "other CliWrap " + name.Version + ": ");
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, typeof(string).GetMethod(nameof(string.Concat), new[] { typeof(string), typeof(string) })!);
        il.Emit(OpCodes.Ret);
        cli.CreateType();
        var path = Path.Combine(directory, "CliWrap.dll");
        assembly.Save(path);
        return path;
    }
}
