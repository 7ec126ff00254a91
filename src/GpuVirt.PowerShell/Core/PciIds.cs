using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace GpuVirt.Core
{
    /// <summary>
    /// Names from the pci.ids database (vendors, devices, subsystems, classes, subclasses, programming interfaces).
    /// Looked up under the host root (hwdata first, then Debian's location), parsed once per file version and
    /// shared by every reader in the process; a missing file gives no names, never an error.
    /// </summary>
    internal sealed class PciIds
    {
        private static readonly ConcurrentDictionary<string, Lazy<PciIds>> Cache = new ConcurrentDictionary<string, Lazy<PciIds>>(StringComparer.Ordinal);

        public static readonly PciIds Empty = new PciIds(null);

        private readonly Dictionary<ushort, Vendor> _vendors = new Dictionary<ushort, Vendor>();
        private readonly Dictionary<byte, ClassEntry> _classes = new Dictionary<byte, ClassEntry>();

        private PciIds(string? path)
        {
            Path = path;
        }

        /// <summary>The file the names came from, or null when no pci.ids was found.</summary>
        public string? Path { get; }

        /// <summary>The database for a host root: the first pci.ids that exists under it, parsed lazily and cached.</summary>
        public static PciIds For(HostRoot root)
        {
            foreach (var hostPath in HostPaths.PciIds)
            {
                var path = root.Resolve(hostPath);
                FileInfo info;
                try
                {
                    info = new FileInfo(path);
                    if (!info.Exists) continue;
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    continue;
                }
                var key = path + "|" + info.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture) + "|" + info.Length.ToString(CultureInfo.InvariantCulture);
                return Cache.GetOrAdd(key, _ => new Lazy<PciIds>(() => Load(path))).Value;
            }
            return Empty;
        }

        public static PciIds Load(string path)
        {
            var db = new PciIds(path);
            try
            {
                // Through the one bounded, non-blocking reader: a FIFO or an endless file in its place is no database.
                using var reader = new StreamReader(new MemoryStream(FileReads.ReadBytes(path, path)));
                db.Parse(reader);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is GpuVirtException)
            {
                return new PciIds(null);
            }
            return db;
        }

        public static PciIds Parse(TextReader reader, string? path = null)
        {
            var db = new PciIds(path);
            db.Parse(reader);
            return db;
        }

        private void Parse(TextReader reader)
        {
            Vendor? vendor = null;
            Device? device = null;
            ClassEntry? cls = null;
            SubclassEntry? sub = null;
            string? line;
            while ((line = reader.ReadLine()) != null)
            {
                if (line.Length == 0 || line[0] == '#') continue;
                if (line[0] == 'C' && line.Length > 2 && line[1] == ' ')
                {
                    vendor = null;
                    device = null;
                    sub = null;
                    if (TrySplit(line, 2, 2, out var code, out var name))
                    {
                        cls = new ClassEntry(name);
                        _classes[(byte)code] = cls;
                    }
                    else
                    {
                        cls = null;
                    }
                    continue;
                }
                if (line[0] != '\t')
                {
                    cls = null;
                    sub = null;
                    device = null;
                    // Other top-level sections (device classes 'C' aside) such as 'X' and 'ffff' end the vendor list.
                    if (TrySplit(line, 0, 4, out var id, out var name))
                    {
                        vendor = new Vendor(name);
                        _vendors[(ushort)id] = vendor;
                    }
                    else
                    {
                        vendor = null;
                    }
                    continue;
                }
                var depth = line.Length > 1 && line[1] == '\t' ? 2 : 1;
                if (vendor != null)
                {
                    if (depth == 1)
                    {
                        device = TrySplit(line, 1, 4, out var id, out var name) ? new Device(name) : null;
                        if (device != null) vendor.Devices[(ushort)id] = device;
                    }
                    else if (device != null && line.Length > 12 && line[6] == ' ')
                    {
                        var sv = ParseHex(line, 2, 4);
                        var sd = ParseHex(line, 7, 4);
                        var name = line.Length > 13 ? line.Substring(13).Trim() : string.Empty;
                        if (sv.HasValue && sd.HasValue && name.Length > 0)
                        {
                            device.Subsystems ??= new Dictionary<uint, string>();
                            device.Subsystems[(sv.Value << 16) | sd.Value] = name;
                        }
                    }
                }
                else if (cls != null)
                {
                    if (depth == 1)
                    {
                        sub = TrySplit(line, 1, 2, out var id, out var name) ? new SubclassEntry(name) : null;
                        if (sub != null) cls.Subclasses[(byte)id] = sub;
                    }
                    else if (sub != null && TrySplit(line, 2, 2, out var pi, out var piName))
                    {
                        sub.ProgIfs[(byte)pi] = piName;
                    }
                }
            }
        }

        private static bool TrySplit(string line, int start, int width, out uint id, out string name)
        {
            id = 0;
            name = string.Empty;
            if (line.Length < start + width + 2) return false;
            var v = ParseHex(line, start, width);
            if (v is null) return false;
            id = v.Value;
            name = line.Substring(start + width).Trim();
            return name.Length > 0;
        }

        private static uint? ParseHex(string line, int start, int width)
        {
            if (line.Length < start + width) return null;
            return uint.TryParse(line.Substring(start, width), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v) ? v : (uint?)null;
        }

        public string? VendorName(ushort vendorId) => _vendors.TryGetValue(vendorId, out var v) ? v.Name : null;

        public string? DeviceName(ushort vendorId, ushort deviceId) =>
            _vendors.TryGetValue(vendorId, out var v) && v.Devices.TryGetValue(deviceId, out var d) ? d.Name : null;

        public string? SubsystemName(ushort vendorId, ushort deviceId, ushort subVendorId, ushort subDeviceId)
        {
            if (_vendors.TryGetValue(vendorId, out var v) && v.Devices.TryGetValue(deviceId, out var d) && d.Subsystems != null &&
                d.Subsystems.TryGetValue(((uint)subVendorId << 16) | subDeviceId, out var name))
            {
                return name;
            }
            return null;
        }

        /// <summary>The most specific class name: the subclass name (as lspci prints it), else the base class name.</summary>
        public string? ClassName(uint classCode)
        {
            var baseClass = (byte)(classCode >> 16);
            var subClass = (byte)(classCode >> 8);
            if (!_classes.TryGetValue(baseClass, out var c)) return null;
            return c.Subclasses.TryGetValue(subClass, out var s) ? s.Name : c.Name;
        }

        public string? BaseClassName(uint classCode) => _classes.TryGetValue((byte)(classCode >> 16), out var c) ? c.Name : null;

        public string? ProgIfName(uint classCode)
        {
            if (_classes.TryGetValue((byte)(classCode >> 16), out var c) && c.Subclasses.TryGetValue((byte)(classCode >> 8), out var s) &&
                s.ProgIfs.TryGetValue((byte)classCode, out var name))
            {
                return name;
            }
            return null;
        }

        private sealed class Vendor
        {
            public Vendor(string name) => Name = name;
            public string Name { get; }
            public Dictionary<ushort, Device> Devices { get; } = new Dictionary<ushort, Device>();
        }

        private sealed class Device
        {
            public Device(string name) => Name = name;
            public string Name { get; }
            public Dictionary<uint, string>? Subsystems { get; set; }
        }

        private sealed class ClassEntry
        {
            public ClassEntry(string name) => Name = name;
            public string Name { get; }
            public Dictionary<byte, SubclassEntry> Subclasses { get; } = new Dictionary<byte, SubclassEntry>();
        }

        private sealed class SubclassEntry
        {
            public SubclassEntry(string name) => Name = name;
            public string Name { get; }
            public Dictionary<byte, string> ProgIfs { get; } = new Dictionary<byte, string>();
        }
    }
}
