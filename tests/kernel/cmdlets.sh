#!/usr/bin/env bash
# Payload for run.sh: runs the module's real-kernel Pester suite inside the QEMU guest, with the host's build.
# The counts come back as $RESULTS/pester.json; the exit code is Pester's.
set -euo pipefail
repo=$(pwd)
pester=$(find "${NUGET_PACKAGES:-$HOME/.nuget/packages}/pester/6.2.0/tools" -maxdepth 1 -name Pester.psd1 | head -n 1)
[ -n "$pester" ] || { echo "Pester 6.2.0 is not restored on the host" >&2; exit 2; }
exec dotnet pwsh -NoProfile -NonInteractive -File "$repo/tests/Pester/Invoke-PesterSuite.ps1" \
    -PesterPath "$pester" -ModulePath "$repo/out/GpuVirt" \
    -FixturesPath "$repo/tests/GpuVirt.Fixtures/bin/Release/net10.0/GpuVirt.Fixtures.dll" \
    -ResultPath "$RESULTS/pester.json" -Path "$repo/tests/kernel/RealKernel.Tests.ps1"
