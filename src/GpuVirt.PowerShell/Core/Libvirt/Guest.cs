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
    /// <summary>A guest as libvirt lists it: its UUID (how the module names it to virsh), its exact name, whether it runs.</summary>
    internal sealed class Guest
    {
        public Guest(Guid uuid, string name, bool active)
        {
            Uuid = uuid;
            Name = name;
            Active = active;
        }

        public Guid Uuid { get; }

        /// <summary>The name exactly as defined (spaces kept).</summary>
        public string Name { get; }

        public bool Active { get; }

        /// <summary>What virsh's <c>--domain</c> is given: the UUID, which no other guest can answer to.</summary>
        public string Key => Uuid.ToString("D");

        public override string ToString() => Name;
    }
}
