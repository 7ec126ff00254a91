@{
    RootModule           = 'GpuVirt.PowerShell.dll'
    ModuleVersion        = '0.1.0'
    CompatiblePSEditions = @('Core')
    GUID                 = '5b8f8a2e-3c1d-4f6e-9a57-2d0c6b1e7f43'
    Author               = 'GpuVirt developers'
    CompanyName          = 'GpuVirt'
    Copyright            = '(c) GpuVirt developers. MIT License.'
    Description          = 'GPU device assignment for Linux KVM/libvirt hosts: find GPUs and IOMMU groups, enable the IOMMU at boot, create NVIDIA vGPU mediated devices and attach GPUs to libvirt guests.'
    PowerShellVersion    = '7.2'
    TypesToProcess       = @('GpuVirt.Types.ps1xml')
    FormatsToProcess     = @('GpuVirt.Format.ps1xml')
    CmdletsToExport      = @(
        'Get-PciDevice'
        'Get-GpuDevice'
        'Get-IommuGroup'
        'Add-GpuHostdev'
        'Get-GpuHostdev'
        'Remove-GpuHostdev'
        'Dismount-GpuHostDriver'
        'Mount-GpuHostDriver'
        'ConvertTo-XorgBusId'
        'Get-VgpuType'
        'New-VgpuDevice'
        'Get-VgpuDevice'
        'Remove-VgpuDevice'
        'Test-VgpuHost'
        'Set-VgpuConsole'
        'Enable-IommuBoot'
        'Disable-IommuBoot'
        'Get-IommuBootStatus'
        'Disable-NouveauDriver'
        'Enable-NouveauDriver'
        'Get-GpuVirtChange'
        'Undo-GpuVirtChange'
        # NVIDIA SR-IOV vGPU, boot-time vGPU profiles, mdevctl parity, placement
        'Enable-VgpuSriov'
        'Find-VgpuPlacement'
        'Export-VgpuDefinition'
        'Import-VgpuDefinition'
        'Get-GuestMmioSpace'
        'Set-GuestMmioSpace'
        'Test-GpuVirtHost'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('Linux', 'KVM', 'libvirt', 'GPU', 'vGPU', 'VFIO', 'IOMMU', 'PCI', 'Passthrough', 'Virtualization', 'PSEdition_Core')
        }
    }
}
