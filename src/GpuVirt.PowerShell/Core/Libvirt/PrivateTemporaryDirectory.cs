using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>A temporary directory only the current user can read (mode 0700, from mkdtemp).</summary>
    internal static class PrivateTemporaryDirectory
    {
        public static string Create(string prefix)
        {
            var template = Path.Combine(Path.GetTempPath(), prefix + "XXXXXX");
            var bytes = Encoding.UTF8.GetBytes(template + "\0");
            var result = LibC.mkdtemp(bytes);
            if (result == IntPtr.Zero)
            {
                throw new GpuVirtException(ErrorIds.TemporaryFileFailed, ErrorKind.WriteError,
                    $"Cannot create a temporary directory under '{Path.GetTempPath()}' (errno {Marshal.GetLastWin32Error()}).", template);
            }
            return Encoding.UTF8.GetString(bytes, 0, bytes.Length - 1);
        }

        public static void Remove(string directory)
        {
            try
            {
                if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

    }
}
