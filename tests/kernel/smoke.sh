#!/usr/bin/env bash
# Smoke payload for tests/kernel/run.sh: proves, inside the guest, that the harness gives
# a real kernel's sysfs with the topology the tests rely on.
#   tests/kernel/run.sh tests/kernel/smoke.sh
# Writes mdev-sysfs.txt (a listing of the mdev parent and a device) and dmesg.txt to $RESULTS.
set -uo pipefail

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
START=$EPOCHREALTIME
section() { echo; echo "### $* [$(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s]"; }
t0() { T0=$EPOCHREALTIME; }
t1() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

[[ ${GPUVIRT_KERNEL_GUEST:-} == 1 ]] || { echo "run me through tests/kernel/run.sh"; exit 2; }
: "${RESULTS:?}"

PCI=/sys/bus/pci/devices
# Reads avoid subshells and cat: every fork and exec is slow under TCG.
rd() { local -n _v=$1; _v=; read -r _v <"$2" 2>/dev/null || true; }  # rd VAR FILE
attr() { local v; rd v "$1"; printf '%s' "$v"; }
group_of() { local l; l=$(readlink "$PCI/$1/iommu_group" 2>/dev/null) && printf '%s' "${l##*/}"; }
driver_of() { local l; l=$(readlink "$PCI/$1/driver" 2>/dev/null) && printf '%s' "${l##*/}"; }
declare -A IDS=()   # address -> "vendor device class"
v='' i='' c='' left=''
for d in "$PCI"/*; do
    rd v "$d/vendor"; rd i "$d/device"; rd c "$d/class"
    IDS[${d##*/}]="$v $i $c"
done
find_pci() { # find_pci VENDOR DEVICE CLASS -> first address
    local a
    for a in $(printf '%s\n' "${!IDS[@]}" | sort); do
        [[ ${IDS[$a]} == "$1 $2 $3" ]] && { printf '%s' "$a"; return 0; }
    done
    return 1
}
# write VALUE FILE: writes like `echo VALUE > FILE`; on failure prints the kernel's error text
write() {
    local err
    if err=$({ printf '%s\n' "$1" >"$2"; } 2>&1); then return 0; fi
    printf '%s' "${err##*write error: }"
    return 1
}
# rebind ADDR OVERRIDE [DRIVER]: write OVERRIDE to driver_override ("" clears it), unbind
# from the current driver, drivers_probe; then the device must be bound to DRIVER
# (default: OVERRIDE).
rebind() {
    local addr=$1 override=$2 drv=${3:-$2}
    write "$override" "$PCI/$addr/driver_override" >/dev/null || return 1
    if [[ -L $PCI/$addr/driver ]]; then
        write "$addr" "$PCI/$addr/driver/unbind" >/dev/null || return 1
    fi
    write "$addr" /sys/bus/pci/drivers_probe >/dev/null
    [[ $(driver_of "$addr") == "$drv" ]]
}
uuid() { local u; rd u /proc/sys/kernel/random/uuid; printf '%s' "$u"; }

section "kernel $(uname -r), $(nproc) CPUs"
dmesg >"$RESULTS/dmesg.txt" 2>/dev/null || true
lspci -Dnnk

section "IOMMU groups"
for g in /sys/kernel/iommu_groups/*; do
    echo "group ${g##*/} ($(attr "$g/type")): $(cd "$g/devices" && echo *)"
done
check "iommu groups exist" test -n "$(ls /sys/kernel/iommu_groups)"
missing=0
for d in "$PCI"/*; do [[ -L $d/iommu_group ]] || missing=$((missing + 1)); done
check "every PCI device has an iommu_group link" test "$missing" = 0

vga=$(find_pci 0x1234 0x1111 0x030000) || vga=
gpu=$(find_pci 0x1af4 0x1050 0x038000) || gpu=
check "std VGA (1234:1111, class 0x030000) at 0000:00:02.0" test "$vga" = 0000:00:02.0
check "virtio-gpu (1af4:1050) has class 0x038000" test -n "$gpu"
audio=${gpu%.*}.1
check "the virtio-gpu's function 1 is HD audio (class 0x0403xx)" \
    test "$(attr "$PCI/$audio/class" | cut -c1-6)" = 0x0403
check "virtio-gpu and its audio share an IOMMU group" \
    test -n "$(group_of "$gpu")" -a "$(group_of "$gpu")" = "$(group_of "$audio")"
bridge=$(find_pci 0x1b36 0x000e 0x060400) || bridge=
svga=$(find_pci 0x1234 0x1111 0x038000) || svga=
nic=$(find_pci 0x8086 0x100e 0x020000) || nic=
bg=$(group_of "$bridge")
check "pcie-pci-bridge, secondary VGA and NIC behind it share one group" \
    test -n "$bg" -a "$bg" = "$(group_of "$svga")" -a "$bg" = "$(group_of "$nic")"
e1000e=$(find_pci 0x8086 0x10d3 0x020000) || e1000e=
eg=$(group_of "$e1000e")
check "the e1000e on its own root port has a group of its own" \
    test -n "$eg" -a "$(ls "/sys/kernel/iommu_groups/$eg/devices" | wc -l)" = 1
check "HD audio at 0000:00:1b.0" test "$(attr "$PCI/0000:00:1b.0/class" | cut -c1-6)" = 0x0403

section "mdev parent: bind $vga to gpuvirt_mdev_parent (was: $(driver_of "$vga" || echo none))"
check "bind $vga to gpuvirt_mdev_parent via driver_override + drivers_probe" \
    rebind "$vga" gpuvirt_mdev_parent
parent=/sys/class/mdev_bus/$vga
check "/sys/class/mdev_bus/$vga resolves to the PCI device" \
    test "$(readlink -f "$parent")" = "$(readlink -f "$PCI/$vga")"
types=$PCI/$vga/mdev_supported_types
ntypes=0
for t in "$types"/*/; do
    t=${t%/}; ntypes=$((ntypes + 1))
    printf '%-26s name=%-13s device_api=%s available_instances=%s\n    description=%s\n' \
        "${t##*/}" "$(attr "$t/name")" "$(attr "$t/device_api")" \
        "$(attr "$t/available_instances")" "$(attr "$t/description")"
done
check "at least 3 mdev types" test "$ntypes" -ge 3
type_by_name() { local t; for t in "$types"/*; do [[ $(attr "$t/name") == "$1" ]] && { echo "$t"; return 0; }; done; return 1; }
t1q=$(type_by_name "GRID T4-1Q") || t1q=
t2q=$(type_by_name "GRID T4-2Q") || t2q=
check "types 'GRID T4-1Q' and 'GRID T4-2Q' exist, dirs named <driver>-<id>" \
    test "${t1q##*/}" != "" -a "${t1q##*/gpuvirt_mdev_parent-}" != "${t1q##*/}"
check "device_api is vfio-pci" test "$(attr "$t1q/device_api")" = vfio-pci
check "description is one NVIDIA-like line" \
    grep -Eqx 'num_heads=[0-9]+, frl_config=[0-9]+, framebuffer=[0-9]+M, max_resolution=[0-9]+x[0-9]+, max_instance=[0-9]+' "$t1q/description"

section "mdev create until full, shared capacity"
avail1=$(attr "$t1q/available_instances")
avail2=$(attr "$t2q/available_instances")
echo "before: 1Q available=$avail1, 2Q available=$avail2"
created=()
u=$(uuid)
check "create a 2Q device $u" write "$u" "$t2q/create"
created+=("$u")
check "creating a 2Q lowers the 1Q count by 2 ($avail1 -> $(attr "$t1q/available_instances"))" \
    test "$(attr "$t1q/available_instances")" = $((avail1 - 2))
check "and the 2Q count by 1" test "$(attr "$t2q/available_instances")" = $((avail2 - 1))
n=0
while rd left "$t1q/available_instances"; (( left > 0 && n < 64 )); do
    rd u /proc/sys/kernel/random/uuid
    write "$u" "$t1q/create" >/dev/null || { not_ok "create 1Q $u"; break; }
    created+=("$u"); n=$((n + 1))
done
echo "created ${#created[@]} devices; 1Q available=$(attr "$t1q/available_instances")"
check "every type shows 0 available when the pool is full" \
    test "$(cat "$types"/*/available_instances | sort -u)" = 0
u=$(uuid)
err=$(write "$u" "$t1q/create") && err=
echo "one more create: ${err:-succeeded}"
echo "create beyond capacity: ${err:-succeeded}" >"$RESULTS/create-beyond-capacity.txt"
check "a create beyond capacity fails (kernel says: ${err:-nothing})" test -n "$err"
check "and leaves no device behind" test ! -e "/sys/bus/mdev/devices/$u"

dev=/sys/bus/mdev/devices/${created[0]}
check "/sys/bus/mdev/devices/<uuid> is a link to <parent>/<uuid>" \
    test "$(readlink -f "$dev")" = "$(readlink -f "$PCI/$vga")/${created[0]}"
check "mdev_type links to the type dir" test "$(readlink -f "$dev/mdev_type")" = "$(readlink -f "$t2q")"
check "the device is listed under the type's devices/" test -e "$t2q/devices/${created[0]}"
check "remove is there" test -f "$dev/remove"
mg=$(readlink "$dev/iommu_group") && mg=${mg##*/}
check "the mdev has an IOMMU group ($mg) of type $(attr "$dev/iommu_group/type")" test -n "$mg"
check "/dev/vfio/$mg exists" test -c "/dev/vfio/$mg"
groups=$(for u in "${created[@]}"; do readlink "/sys/bus/mdev/devices/$u/iommu_group"; done | sort -u | wc -l)
check "each mdev has a group of its own" test "$groups" = "${#created[@]}"
{
    echo "# ls -l /sys/class/mdev_bus/"
    ls -l /sys/class/mdev_bus/
    echo "# find $parent/mdev_supported_types/ (one type)"
    find "$parent/mdev_supported_types/" -maxdepth 1
    find "$t2q/" -maxdepth 2 | sort
    for f in name description device_api available_instances; do echo "$f: $(attr "$t2q/$f")"; done
    echo "# ls -l $dev/"
    ls -l "$dev/"
    echo "# readlink $dev"
    readlink "$dev"
    echo "iommu_group type: $(attr "$dev/iommu_group/type")"
} >"$RESULTS/mdev-sysfs.txt" 2>&1
check "a busy-free device can be removed" write 1 "$dev/remove"
for u in "${created[@]:1}"; do write 1 "/sys/bus/mdev/devices/$u/remove" >/dev/null || not_ok "remove $u"; done
check "all devices removed" test -z "$(ls /sys/bus/mdev/devices)"
check "the pool is free again" test "$(attr "$t1q/available_instances")" = "$avail1"
check "the parent can be unbound again" write "$vga" "$PCI/$vga/driver/unbind"
write "" "$PCI/$vga/driver_override" >/dev/null
check "and mdev_bus forgets it" test ! -e "$parent"

section "other mdev parents: $(ls /sys/class/mdev_bus | tr '\n' ' ')"
mt=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
u=$(uuid)
check "mtty sample: create a dual-port device" write "$u" "$mt/create"
check "mtty sample: remove it" write 1 "/sys/bus/mdev/devices/$u/remove"

section "vfio-pci: take $audio from $(driver_of "$audio" || echo none)"
check "bind $audio to vfio-pci" rebind "$audio" vfio-pci
ag=$(group_of "$audio")
check "/dev/vfio/$ag appears" test -c "/dev/vfio/$ag"
ls -l /dev/vfio/
check "give it back to snd_hda_intel" rebind "$audio" "" snd_hda_intel

section ".NET in the guest"
if command -v dotnet >/dev/null; then
    t0; dotnet --info >"$RESULTS/dotnet-info.txt" 2>&1; rc=$?; secs=$(t1)
    echo "dotnet --info: ${secs}s"; echo "dotnet --info: ${secs}s" >"$RESULTS/dotnet-times.txt"
    check "dotnet --info runs (${secs}s)" test "$rc" = 0
    if [[ -f .config/dotnet-tools.json ]]; then
        t0; out=$(dotnet pwsh -NoProfile -c '1+1' 2>&1); secs=$(t1)
        echo "dotnet pwsh -NoProfile -c 1+1: ${secs}s" | tee -a "$RESULTS/dotnet-times.txt"
        check "dotnet pwsh computes 1+1 (${secs}s)" test "$out" = 2
    else
        echo "no .config/dotnet-tools.json: pwsh not timed"
    fi
else
    echo "no dotnet on the host: skipped"
fi

section "done"
echo "smoke: $PASS passed, $FAIL failed"
((FAIL == 0))
