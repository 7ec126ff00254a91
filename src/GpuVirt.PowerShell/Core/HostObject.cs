namespace GpuVirt.Core
{
    /// <summary>
    /// What every object read from a host carries: the host root it was read from and, when libvirt was asked, the
    /// connection URI. The cmdlets bind <c>-Root</c> and <c>-Connect</c> from these by property name, so a pipeline
    /// stays on the host it started on.
    /// </summary>
    public abstract class HostObject
    {
        /// <summary>The full path of the host root the object was read from: <c>/</c> for the live host.</summary>
        public string Root { get; internal set; } = "/";

        /// <summary>
        /// The libvirt URI the object was read from or changed through; null when libvirt was not asked or its default
        /// connection was used (the default then applies to the next command too).
        /// </summary>
        public string? Connect { get; internal set; }

        /// <summary>Marks the object as read from <paramref name="root"/> (and through <paramref name="connect"/>).</summary>
        internal void From(HostRoot root, string? connect = null)
        {
            Root = root.Directory;
            if (connect != null) Connect = connect;
        }
    }

    /// <summary>Marks objects with the host they were read from.</summary>
    internal static class HostObjects
    {
        public static T On<T>(this T item, HostRoot root, string? connect = null) where T : HostObject
        {
            item.From(root, connect);
            return item;
        }

        public static System.Collections.Generic.IReadOnlyList<T> On<T>(this System.Collections.Generic.IReadOnlyList<T> items, HostRoot root, string? connect = null) where T : HostObject
        {
            foreach (var item in items) item.From(root, connect);
            return items;
        }

        /// <summary>Marks an object as read through libvirt at <paramref name="connect"/> (null: the default connection).</summary>
        public static T Through<T>(this T item, string? connect) where T : HostObject
        {
            item.Connect = connect;
            return item;
        }
    }
}
