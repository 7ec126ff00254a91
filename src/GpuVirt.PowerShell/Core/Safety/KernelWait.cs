using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;

namespace GpuVirt.Core.Safety
{
    /// <summary>
    /// A sysfs write that may block in the kernel — on 6.1, vfio-pci's <c>unbind</c> and an mdev's <c>remove</c> wait
    /// for the process holding the device, even after a signal — made so that it never waits silently: the write runs on
    /// a worker thread while the caller's thread waits; after <see cref="FirstNotice"/> and then every
    /// <see cref="Repeat"/> the caller is told, on its own thread, who the kernel waits for. The wait ends when the
    /// write does, when the caller stops (the write stays pending in the kernel and completes when the holder lets go,
    /// which the error says), or after <see cref="Limit"/>.
    /// </summary>
    internal sealed class KernelWait
    {
        public TimeSpan FirstNotice { get; set; } = TimeSpan.FromSeconds(2);
        public TimeSpan Repeat { get; set; } = TimeSpan.FromSeconds(10);
        public TimeSpan Limit { get; set; } = TimeSpan.FromMinutes(5);

        /// <summary>Receives the notices; called on the thread that called <see cref="Write"/>.</summary>
        public Action<string>? Notice { get; set; }

        /// <summary>Writes <paramref name="value"/> to <paramref name="path"/>; returns the errno (0 on success) as <see cref="SysfsWriter.Write"/> does.</summary>
        /// <param name="what">The device, for the notice: <c>0000:02:00.0</c> or <c>mediated device UUID</c>.</param>
        /// <param name="holders">Reads who holds the device now.</param>
        public int Write(string path, string hostPath, string value, string what, Func<IReadOnlyList<DeviceHolder>> holders, CancellationToken ct)
        {
            var write = Task.Factory.StartNew(() => SysfsWriter.Write(path, value), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var done = ((IAsyncResult)write).AsyncWaitHandle;
            var watch = Stopwatch.StartNew();
            var next = FirstNotice;
            while (true)
            {
                var until = (next < Limit ? next : Limit) - watch.Elapsed;
                if (until < TimeSpan.Zero) until = TimeSpan.Zero;
                WaitHandle.WaitAny(new[] { done, ct.WaitHandle }, until);
                if (write.IsCompleted) return write.Result;
                if (ct.IsCancellationRequested)
                {
                    throw new GpuVirtException(ErrorIds.OperationStopped, ErrorKind.OperationStopped,
                        $"Stopped waiting for the kernel; the write of '{value.Trim()}' to '{hostPath}' is still pending and takes effect once " +
                        $"{Who(holders)} releases {what}.", what);
                }
                if (watch.Elapsed >= Limit)
                {
                    throw new GpuVirtException(ErrorIds.DeviceInUse, ErrorKind.ResourceBusy,
                        $"The kernel has waited {Seconds(watch.Elapsed)} s for {Who(holders)} to release {what}; the write of '{value.Trim()}' to " +
                        $"'{hostPath}' is still pending and takes effect once it does.", what);
                }
                if (watch.Elapsed >= next)
                {
                    Notice?.Invoke($"The kernel is waiting for {Who(holders)} to release {what} before the write of '{value.Trim()}' to '{hostPath}' " +
                        $"can finish ({Seconds(watch.Elapsed)} s so far). Shut that guest down or stop that process; the write stays pending until then.");
                    next += Repeat;
                }
            }
        }

        private static string Who(Func<IReadOnlyList<DeviceHolder>> holders)
        {
            IReadOnlyList<DeviceHolder> now;
            try
            {
                now = holders();
            }
            catch (GpuVirtException)
            {
                now = Array.Empty<DeviceHolder>();
            }
            return now.Count == 0 ? "the process that holds it (none found in /proc)" : DeviceHolder.Describe(now).Replace(" holds ", " holding ");
        }

        private static string Seconds(TimeSpan t) => ((int)t.TotalSeconds).ToString(CultureInfo.InvariantCulture);
    }
}
