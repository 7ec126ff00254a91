using System;

namespace GpuVirt.Core
{
    /// <summary>What kind of failure a <see cref="GpuVirtException"/> is; the cmdlets map it to an ErrorCategory.</summary>
    internal enum ErrorKind
    {
        NotSpecified,
        InvalidArgument,
        ObjectNotFound,
        PermissionDenied,
        ResourceUnavailable,
        ResourceBusy,
        NotEnabled,
        NotInstalled,
        InvalidData,
        InvalidOperation,
        OperationStopped,
        WriteError,
    }

    /// <summary>The one exception type of the core: a stable error id, a kind, a message a user can act on and the target.</summary>
    internal class GpuVirtException : Exception
    {
        public GpuVirtException(string errorId, ErrorKind kind, string message, object? target = null, Exception? inner = null)
            : base(message, inner)
        {
            ErrorId = errorId;
            Kind = kind;
            Target = target;
        }

        /// <summary>A stable identifier (VerbNounProblem style) that scripts and tests can rely on.</summary>
        public string ErrorId { get; }

        public ErrorKind Kind { get; }

        public object? Target { get; }
    }

    /// <summary>Every error id the module raises, in one place so they stay stable.</summary>
    internal static class ErrorIds
    {
        public const string InvalidPciAddress = "InvalidPciAddress";
        public const string InvalidPciId = "InvalidPciId";
        public const string InvalidPciClass = "InvalidPciClass";
        public const string PciDeviceNotFound = "PciDeviceNotFound";
        public const string IommuNotEnabled = "IommuNotEnabled";
        public const string IommuGroupNotFound = "IommuGroupNotFound";
        public const string RootRequired = "RootRequired";
        public const string PermissionDeniedAsRoot = "PermissionDeniedAsRoot";
        public const string HostRootNotFound = "HostRootNotFound";
        public const string SysfsReadFailed = "SysfsReadFailed";
        public const string InvalidVendor = "InvalidVendor";
        public const string ProgramNotFound = "ProgramNotFound";
        public const string ProgramFailed = "ProgramFailed";
        public const string OperationStopped = "OperationStopped";
        public const string ProgramTimedOut = "ProgramTimedOut";
        public const string SysfsWriteFailed = "SysfsWriteFailed";
        public const string TemporaryFileFailed = "TemporaryFileFailed";
        public const string HostChangedSincePlan = "HostChangedSincePlan";

        // libvirt and virsh
        public const string LibvirtConnectFailed = "LibvirtConnectFailed";
        public const string VirshCommandFailed = "VirshCommandFailed";
        public const string DomainNotFound = "DomainNotFound";
        public const string InvalidDomainName = "InvalidDomainName";
        public const string InvalidDomainXml = "InvalidDomainXml";
        public const string InvalidMdevUuid = "InvalidMdevUuid";
        public const string HostdevInUse = "HostdevInUse";

        /// <summary>A function of the device's IOMMU group is assigned to another guest: a VFIO group can be in one guest only.</summary>
        public const string IommuGroupSplit = "IommuGroupSplit";
        public const string HostdevAlreadyAttached = "HostdevAlreadyAttached";
        public const string HostdevNotAttached = "HostdevNotAttached";
        public const string HostdevSourceMissing = "HostdevSourceMissing";
        public const string HostdevSourceAmbiguous = "HostdevSourceAmbiguous";
        public const string HostdevDisplayNotSupported = "HostdevDisplayNotSupported";
        public const string HostdevNotAssignable = "HostdevNotAssignable";

        // host drivers (passthrough detach and reattach)
        public const string HostDriverNotLoaded = "HostDriverNotLoaded";
        public const string InvalidDriverName = "InvalidDriverName";
        public const string HostDriverNotBound = "HostDriverNotBound";
        public const string HostDriverMethodNotSupported = "HostDriverMethodNotSupported";

        // guest Xorg configuration
        public const string XorgBusIdInputInvalid = "XorgBusIdInputInvalid";
        public const string GuestAddressNotAssigned = "GuestAddressNotAssigned";
        public const string InvalidXorgValue = "InvalidXorgValue";

        // vGPU: types, mediated devices, SR-IOV vGPU functions, mdevctl definitions.
        public const string VgpuParentNotFound = "VgpuParentNotFound";
        public const string VgpuTypeNotFound = "VgpuTypeNotFound";
        public const string NoVgpuInstanceAvailable = "NoVgpuInstanceAvailable";
        public const string VgpuUuidNotApplicable = "VgpuUuidNotApplicable";
        public const string VgpuDeviceExists = "VgpuDeviceExists";
        public const string VgpuDeviceNotCreated = "VgpuDeviceNotCreated";
        public const string VgpuCreateFailed = "VgpuCreateFailed";
        public const string VgpuDeviceNotFound = "VgpuDeviceNotFound";
        public const string VgpuDeviceNotSpecified = "VgpuDeviceNotSpecified";
        public const string VgpuDeviceAmbiguous = "VgpuDeviceAmbiguous";
        public const string VgpuDeviceNotActive = "VgpuDeviceNotActive";
        public const string VgpuDeviceBusy = "VgpuDeviceBusy";
        public const string VgpuDeviceNotRemoved = "VgpuDeviceNotRemoved";
        public const string VgpuRemoveFailed = "VgpuRemoveFailed";
        public const string VgpuDefinitionConflict = "VgpuDefinitionConflict";
        public const string MdevDefinitionInvalid = "MdevDefinitionInvalid";
        public const string MdevDefinitionWriteFailed = "MdevDefinitionWriteFailed";
        public const string VgpuConsoleNoMdevHostdev = "VgpuConsoleNoMdevHostdev";

        // NVIDIA SR-IOV vGPU (vGPU 17+), its boot-time profiles, mdevctl parity and placement.
        public const string VgpuSriovNotEnabled = "VgpuSriovNotEnabled";
        public const string VgpuSriovNotSupported = "VgpuSriovNotSupported";
        public const string VgpuSriovAlreadyEnabled = "VgpuSriovAlreadyEnabled";
        public const string VgpuSriovEnableFailed = "VgpuSriovEnableFailed";
        public const string VgpuProfileWriteFailed = "VgpuProfileWriteFailed";
        public const string VgpuPlacementNotFound = "VgpuPlacementNotFound";
        public const string VgpuOptionNotApplicable = "VgpuOptionNotApplicable";
        public const string VgpuAttributeFailed = "VgpuAttributeFailed";

        // Boot configuration (Enable-IommuBoot, Disable-IommuBoot, Get-IommuBootStatus, Disable-NouveauDriver, Enable-NouveauDriver)
        public const string BootLoaderNotDetected = "BootLoaderNotDetected";
        public const string BootFileNotFound = "BootFileNotFound";
        public const string BootFileUnreadable = "BootFileUnreadable";
        public const string BootFileMalformed = "BootFileMalformed";
        public const string BootFileWriteFailed = "BootFileWriteFailed";
        public const string BootArgumentNotEditable = "BootArgumentNotEditable";
        public const string BootRegenerationFailed = "BootRegenerationFailed";
        public const string CpuVendorUnknown = "CpuVendorUnknown";
        public const string InvalidStubId = "InvalidStubId";
        public const string StubDeviceUnsafe = "StubDeviceUnsafe";
        public const string ModprobeFileConflict = "ModprobeFileConflict";
        public const string InvalidModprobeFileName = "InvalidModprobeFileName";
        public const string InitramfsToolNotDetected = "InitramfsToolNotDetected";

        // 64-bit MMIO space of guests (Get-GuestMmioSpace, Set-GuestMmioSpace)
        public const string GuestMmioNotSupported = "GuestMmioNotSupported";
        public const string GuestMmioPhysBitsUnavailable = "GuestMmioPhysBitsUnavailable";
        public const string GuestDefinitionChanged = "GuestDefinitionChanged";

        // Safe on a shared host: devices the host needs, processes that hold devices, vGPU parents in use.
        public const string HostCriticalDevice = "HostCriticalDevice";
        public const string DeviceInUse = "DeviceInUse";
        public const string VgpuParentInUse = "VgpuParentInUse";
        public const string DeviceReferencedByGuest = "DeviceReferencedByGuest";

        // The change journal (Get-GpuVirtChange, Undo-GpuVirtChange)
        public const string JournalUnreadable = "JournalUnreadable";
        public const string JournalVersionNotSupported = "JournalVersionNotSupported";
        public const string JournalWriteFailed = "JournalWriteFailed";
        public const string JournalChangeNotFound = "JournalChangeNotFound";
        public const string JournalChangeAlreadyUndone = "JournalChangeAlreadyUndone";
        public const string JournalChangeNotUndoable = "JournalChangeNotUndoable";
        public const string JournalTargetChanged = "JournalTargetChanged";
        public const string JournalUndoFailed = "JournalUndoFailed";

        // A journaled change killed half-way (the intent record /var/lib/gpuvirt/change-pending.json)
        public const string ChangePending = "ChangePending";
        public const string ChangeRecordUnreadable = "ChangeRecordUnreadable";

        // Concurrency, time bounds and host integrity (the host lock, program time bounds)
        public const string HostLockTimedOut = "HostLockTimedOut";
        public const string HostLockFailed = "HostLockFailed";
        public const string InvalidTimeoutPreference = "InvalidTimeoutPreference";
        public const string BootRegenerationTimedOut = "BootRegenerationTimedOut";

        // A boot change killed half-way (the intent record /var/lib/gpuvirt/boot-pending.json)
        public const string BootChangePending = "BootChangePending";
        public const string BootChangeRecordUnreadable = "BootChangeRecordUnreadable";
        public const string BootIntentDamaged = "BootIntentDamaged";

        // Issue 29: files GpuVirt reads that are not what they should be (a FIFO, an endless file, an unreadable attribute)
        public const string HostFileNotRegular = "HostFileNotRegular";
        public const string HostFileTooLarge = "HostFileTooLarge";
        public const string JournalIdsExhausted = "JournalIdsExhausted";
        // Issue 12: true messages for what could not be read
        public const string PciAttributeUnreadable = "PciAttributeUnreadable";
        public const string InvalidWildcard = "InvalidWildcard";
        public const string ProgramArgumentsTooLong = "ProgramArgumentsTooLong";

        // The limits of one guest (Add-GpuHostdev): the seed's 32 assigned PCI devices per guest
        public const string HostdevLimitExceeded = "HostdevLimitExceeded";
    }
}
