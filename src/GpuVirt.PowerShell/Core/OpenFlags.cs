using System.Runtime.InteropServices;

namespace GpuVirt.Core
{
    /// <summary>
    /// The <c>open(2)</c> flags the module passes. Most are the same everywhere; O_DIRECTORY and O_NOFOLLOW are not:
    /// the ARM ports number them 040000 and 0100000 where x86 has 0200000 and 0400000.
    /// </summary>
    internal static class OpenFlags
    {
        public const int ReadOnly = 0x0;
        public const int WriteOnly = 0x1;
        public const int ReadWrite = 0x2;
        public const int Create = 0x40;
        public const int Truncate = 0x200;

        /// <summary>O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.</summary>
        public const int NonBlock = 0x800;
        public const int CloseOnExec = 0x80000;

        private static readonly bool Arm =
            RuntimeInformation.ProcessArchitecture == Architecture.Arm64 || RuntimeInformation.ProcessArchitecture == Architecture.Arm;

        public static readonly int Directory = Arm ? 0x4000 : 0x10000;

        public static readonly int NoFollow = Arm ? 0x8000 : 0x20000;
    }
}
