using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading;

namespace GpuVirt.Core.Libvirt
{
    /// <summary>
    /// One lock of a libvirt connection: a guest's definition (by the guest's UUID), or the assignment of host devices to
    /// the connection's guests. <see cref="GuestLock"/> takes it.
    /// </summary>
    internal sealed class GuestLockKey
    {
        private readonly Lazy<string> _fileName;

        private GuestLockKey(Virsh virsh, Func<string> fileName, string what)
        {
            Virsh = virsh;
            _fileName = new Lazy<string>(fileName);
            What = what;
        }

        /// <summary>The connection (its URI decides where the lock file lies).</summary>
        public Virsh Virsh { get; }

        /// <summary>The lock file's name in the connection's lock directory.</summary>
        public string FileName => _fileName.Value;

        /// <summary>What the lock guards, for the messages: <c>change the definition of guest 'vm1'</c>.</summary>
        public string What { get; }

        /// <summary>The definition of one guest (read, changed and written back as one step).</summary>
        public static GuestLockKey Definition(Virsh virsh, Guest guest) =>
            new GuestLockKey(virsh, () => FileOf(guest), $"change the definition of guest '{guest.Name}'");

        /// <summary>The definition of the guest of that exact name, its UUID read when the lock is taken.</summary>
        public static GuestLockKey Definition(Virsh virsh, string domain) =>
            new GuestLockKey(virsh, () => FileOf(virsh.ResolveGuest(domain)), $"change the definition of guest '{domain}'");

        private static string FileOf(Guest guest) => "guest-" + guest.Key + ".lock";

        /// <summary>Which guest holds which host device (each GPU in one guest, each IOMMU group in one guest).</summary>
        public static GuestLockKey Assignments(Virsh virsh) =>
            new GuestLockKey(virsh, () => "hostdevs.lock", "assign a host device to a guest");
    }

    /// <summary>
    /// The lock of a libvirt guest: an exclusive <c>flock(2)</c> keyed by the libvirt connection and the guest, in a
    /// directory that depends on the connection only, never on <c>-Root</c>. Two commands that change the same guest
    /// exclude each other whatever root each of them reads (the host lock lies under the root, so it cannot do that).
    /// Taken by <see cref="Planning.PlanExecutor"/> after the host lock, for the plan's <c>GuestLocks</c>, in the order
    /// of their paths (so that two commands never wait for each other); never under -WhatIf.
    /// </summary>
    /// <remarks>
    /// Where the files lie, by connection:
    /// <list type="bullet">
    /// <item>an embedded driver (<c>qemu:///embed?root=DIR</c>): <c>DIR/run/gpuvirt</c>, beside the state it guards;</item>
    /// <item>a session connection (<c>qemu:///session</c>): <c>$XDG_RUNTIME_DIR/gpuvirt/URI-HASH</c>, else
    /// <c>~/.cache/gpuvirt/locks/URI-HASH</c> (the user's own libvirt);</item>
    /// <item>any other (<c>qemu:///system</c>, a remote URI): <c>/run/lock/gpuvirt/URI-HASH</c> on this machine, as the
    /// host lock is in <c>/run/lock</c> (a remote guest is guarded against the commands run from here);</item>
    /// <item>the test driver (<c>test:///</c>): none, since each virsh process has a fresh copy of its guests.</item>
    /// </list>
    /// URI-HASH is the first 16 hex digits of the SHA-256 of the connection URI as libvirt names it
    /// (<see cref="Virsh.ConnectionUri"/>).
    /// </remarks>
    internal static class GuestLock
    {
        public const string SystemDirectory = "/run/lock/gpuvirt";

        /// <summary>The directory of a connection's locks; null when the connection keeps nothing between processes.</summary>
        public static string? DirectoryFor(string uri)
        {
            if (!System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed))
            {
                return Path.Combine(SystemDirectory, Hash(uri));
            }
            var scheme = parsed.Scheme.Split('+')[0];
            if (string.Equals(scheme, "test", StringComparison.OrdinalIgnoreCase)) return null;
            var path = parsed.AbsolutePath.TrimEnd('/');
            if (path == "/embed" && QueryValue(parsed.Query, "root") is string root && root.Length > 0 && Path.IsPathRooted(root))
            {
                return Path.Combine(root, "run", "gpuvirt");
            }
            if (path == "/session" && string.IsNullOrEmpty(parsed.Host))
            {
                var runtime = System.Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
                if (!string.IsNullOrEmpty(runtime) && Path.IsPathRooted(runtime) && Directory.Exists(runtime))
                    return Path.Combine(runtime, "gpuvirt", Hash(uri));
                var home = System.Environment.GetEnvironmentVariable("HOME");
                if (!string.IsNullOrEmpty(home)) return Path.Combine(home, ".cache", "gpuvirt", "locks", Hash(uri));
            }
            return Path.Combine(SystemDirectory, Hash(uri));
        }

        /// <summary>The file of one lock; null when its connection needs none.</summary>
        public static string? PathFor(GuestLockKey key) =>
            DirectoryFor(key.Virsh.ConnectionUri()) is string dir ? Path.Combine(dir, key.FileName) : null;

        /// <summary>
        /// Takes the locks (each once, in the order of their paths), waiting at most <paramref name="timeout"/> for
        /// another command; disposing the result lets go of all of them. Re-entrant on one thread, as the host lock is.
        /// </summary>
        public static IDisposable Acquire(IEnumerable<GuestLockKey> keys, TimeSpan? timeout, CancellationToken cancellationToken, Action<string>? waiting)
        {
            var wanted = new SortedDictionary<string, GuestLockKey>(StringComparer.Ordinal);
            foreach (var key in keys)
            {
                if (PathFor(key) is string path && !wanted.ContainsKey(path)) wanted.Add(path, key);
            }
            var held = new List<IDisposable>();
            try
            {
                foreach (var pair in wanted)
                {
                    var path = pair.Key;
                    held.Add(HostLock.AcquireFile(path, path, pair.Value.What, cancellationToken, timeout, waiting, () => Prepare(path)));
                }
            }
            catch
            {
                Release(held);
                throw;
            }
            return new Held(held);
        }

        /// <summary>Whether this thread holds the lock now.</summary>
        public static bool IsHeld(GuestLockKey key) => PathFor(key) is string path && HostLock.IsHeldFile(path);

        private static void Prepare(string path)
        {
            var directory = Path.GetDirectoryName(path)!;
            try
            {
                Directory.CreateDirectory(directory);
            }
            catch (UnauthorizedAccessException e)
            {
                throw Sysfs.RootRequired(directory, "create", e);
            }
            catch (IOException e)
            {
                throw new GpuVirtException(ErrorIds.HostLockFailed, ErrorKind.ResourceUnavailable,
                    $"Cannot create the directory of the guest locks '{directory}': {e.Message}", directory, e);
            }
        }

        private static string Hash(string uri)
        {
            using var sha = SHA256.Create();
            var bytes = sha.ComputeHash(Encoding.UTF8.GetBytes(uri));
            return string.Concat(bytes.Take(8).Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
        }

        private static string? QueryValue(string query, string name)
        {
            foreach (var part in query.TrimStart('?').Split('&'))
            {
                var eq = part.IndexOf('=');
                if (eq > 0 && part.Substring(0, eq) == name) return System.Uri.UnescapeDataString(part.Substring(eq + 1));
            }
            return null;
        }

        private static void Release(List<IDisposable> held)
        {
            for (var i = held.Count - 1; i >= 0; i--) held[i].Dispose();
        }

        private sealed class Held : IDisposable
        {
            private List<IDisposable>? _held;

            public Held(List<IDisposable> held) => _held = held;

            public void Dispose()
            {
                var held = Interlocked.Exchange(ref _held, null);
                if (held != null) Release(held);
            }
        }
    }
}
