#!/usr/bin/env bash
# Real-kernel test harness: boots Debian's 6.1 kernel under QEMU and runs a payload
# inside the guest against the guest's real sysfs. See README.md beside this file.
#
#   tests/kernel/run.sh --prepare            fetch and build only (idempotent)
#   tests/kernel/run.sh [options] PAYLOAD [ARG...]
#
# Options: --timeout SECONDS (default 600), --memory SIZE (default 4G),
#          --results DIR (default artifacts/kernel/results).
# The payload's exit code is the harness's exit code; harness failures exit 125,
# a guest that runs out of time exits 124.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${GPUVIRT_KERNEL_CACHE:-$REPO/artifacts/kernel}
SERIES=6.1
METAPACKAGE=linux-image-amd64

TIMEOUT=${GPUVIRT_KERNEL_TIMEOUT:-600}
MEMORY=${GPUVIRT_KERNEL_MEMORY:-4G}
RESULTS=
PREPARE_ONLY=0

say() { printf '[kernel] %s\n' "$*" >&2; }
die() { printf '[kernel] error: %s\n' "$*" >&2; exit 125; }

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
declare -a TIMINGS=()
PHASE='' PHASE_START=''
phase() { # phase NAME: start timing a phase (ends the previous one)
    phase_end
    PHASE=$1 PHASE_START=$(now)
    say "== $PHASE"
}
phase_end() {
    [[ -n $PHASE ]] || return 0
    local t; t=$(elapsed "$PHASE_START")
    TIMINGS+=("$PHASE=${t}s")
    say "== $PHASE done in ${t}s"
    PHASE=
}

# ---------------------------------------------------------------- fetch
# Resolves the kernel ABI the metapackage points at, downloads the image, the headers
# (with their -common and kbuild dependencies) and linux-source of the same version,
# and unpacks them with dpkg -x under $CACHE/<version>. Nothing is installed.
resolve_kernel() {
    local cand
    cand=$(apt-cache policy "$METAPACKAGE" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    if [[ -z $cand || $cand == "(none)" ]]; then
        say "apt lists have no $METAPACKAGE; running apt-get update"
        apt-get update -qq || die "apt-get update failed (run as root, or run it once yourself)"
    fi
    IMAGE_PKG=$(apt-cache depends --important "$METAPACKAGE" | awk '/Depends: linux-image-/ { print $2; exit }')
    [[ -n $IMAGE_PKG ]] || die "cannot resolve the kernel package behind $METAPACKAGE"
    KREL=${IMAGE_PKG#linux-image-}
    [[ $KREL == "$SERIES".* ]] || die "$METAPACKAGE points at $KREL, not a $SERIES kernel"
    KVERSION=$(apt-cache policy "$IMAGE_PKG" | awk '/Candidate:/ { print $2 }')
    [[ -n $KVERSION && $KVERSION != "(none)" ]] || die "no candidate version for $IMAGE_PKG"
}

fetch() {
    if [[ -z ${GPUVIRT_KERNEL_REFRESH:-} && -f $CACHE/current/fetched ]]; then
        # shellcheck source=/dev/null
        . "$CACHE/current/kernel.env"
        say "using cached kernel $KREL ($KVERSION) in ${CACHE#"$REPO"/}/current"
        return
    fi
    resolve_kernel
    local dir=$CACHE/$KVERSION
    if [[ ! -f $dir/fetched ]]; then
        say "kernel $KREL, Debian version $KVERSION"
        rm -rf "$dir"
        mkdir -p "$dir/debs" "$dir/root" "$dir/source"
        local pkgs=(
            "$IMAGE_PKG=$KVERSION"
            "linux-headers-$KREL=$KVERSION"
            "linux-headers-${KREL%-*}-common=$KVERSION"
            "linux-kbuild-$SERIES=$KVERSION"
            "linux-source-$SERIES=$KVERSION"
        )
        say "apt-get download ${pkgs[*]}"
        # apt's download sandbox user may not be able to write into the cache dir.
        (cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}") >&2 \
            || die "apt-get download failed"
        local deb
        for deb in "$dir"/debs/*.deb; do
            case ${deb##*/} in
                linux-source-*) dpkg -x "$deb" "$dir/source" ;;
                *) dpkg -x "$deb" "$dir/root" ;;
            esac
        done
        say "extracting samples/vfio-mdev from linux-source-$SERIES"
        tar -xJf "$dir/source/usr/src/linux-source-$SERIES.tar.xz" -C "$dir/source" \
            "linux-source-$SERIES/samples/vfio-mdev"
        mv "$dir/source/linux-source-$SERIES/samples" "$dir/samples"
        rm -rf "$dir/source" "$dir/debs"
        [[ -f $dir/root/boot/vmlinuz-$KREL ]] || die "no vmlinuz-$KREL in the image package"
        [[ -d $dir/root/usr/src/linux-headers-$KREL ]] || die "no headers for $KREL"
        printf 'KREL=%q\nKVERSION=%q\n' "$KREL" "$KVERSION" >"$dir/kernel.env"
        touch "$dir/fetched"
    fi
    ln -sfn "$KVERSION" "$CACHE/current"
}

# ---------------------------------------------------------------- build
# Builds the kernel's sample mdev drivers and our own gpuvirt_mdev_parent out of tree
# against the unpacked headers, installs them as extra/ modules of the unpacked kernel
# and runs depmod there, so the guest can also modprobe them.
SAMPLE_MODULES=(mtty mdpy mbochs)
OUR_MODULES=(gpuvirt_mdev_parent)

build() {
    local dir=$CACHE/$KVERSION build=$CACHE/$KVERSION/build
    local hdr=$dir/root/usr/src/linux-headers-$KREL
    local mods=$dir/root/lib/modules/$KREL
    local srcs=() m
    for m in "${SAMPLE_MODULES[@]}"; do srcs+=("$dir/samples/vfio-mdev/$m.c"); done
    srcs+=("$dir/samples/vfio-mdev/mdpy-defs.h")
    for m in "${OUR_MODULES[@]}"; do srcs+=("$HERE/module/$m.c"); done
    local sum; sum=$(cat "${srcs[@]}" | sha256sum | cut -d' ' -f1)
    if [[ -f $build/sources.sha256 && $(<"$build/sources.sha256") == "$sum" ]]; then
        say "modules up to date: ${SAMPLE_MODULES[*]} ${OUR_MODULES[*]}"
        return
    fi
    # The headers' one-line Makefile includes the -common tree by its installed path.
    echo "include $dir/root/usr/src/linux-headers-${KREL%-*}-common/Makefile" >"$hdr/Makefile"
    rm -rf "$build"; mkdir -p "$build"
    cp "${srcs[@]}" "$build/"
    {
        echo "# generated by tests/kernel/run.sh"
        for m in "${SAMPLE_MODULES[@]}" "${OUR_MODULES[@]}"; do echo "obj-m += $m.o"; done
    } >"$build/Kbuild"
    say "make -C linux-headers-$KREL M=build modules"
    make -s -C "$hdr" M="$build" -j"$(nproc)" modules >&2 \
        || die "module build failed"
    rm -rf "$mods/extra"; mkdir -p "$mods/extra"
    for m in "${SAMPLE_MODULES[@]}" "${OUR_MODULES[@]}"; do
        cp "$build/$m.ko" "$mods/extra/"
    done
    depmod -b "$dir/root" "$KREL" || die "depmod failed"
    echo "$sum" >"$build/sources.sha256"
    say "built: $(cd "$mods/extra" && echo *.ko)"
}

# The VFIO holder (a process that opens a device as QEMU does), static so that it runs the same in the guest.
build_helper() {
    local out=$CACHE/$KVERSION/helper/vfio-hold cc
    cc=$(command -v gcc-12 || command -v gcc) || die "gcc not found (see apt-packages.txt)"
    if [[ ! -x $out || $HERE/helper/vfio_hold.c -nt $out ]]; then
        mkdir -p "${out%/*}"
        say "${cc##*/} -static helper/vfio_hold.c"
        "$cc" -O2 -Wall -static -o "$out" "$HERE/helper/vfio_hold.c" || die "helper build failed"
    fi
}

# ---------------------------------------------------------------- initramfs
# busybox-static, init.sh as /init, and the modules below with their dependencies
# (resolved through the unpacked kernel's modules.dep) in load order.
BOOT_MODULES=(
    virtio_pci 9pnet_virtio 9p overlay                      # to reach the host's /
    vfio vfio_iommu_type1 vfio_pci mdev                     # vfio and mediated devices
    virtio_blk crc32c_generic ext4                          # a guest disk with a mounted filesystem (ext4 checksums need crc32c)
    "${SAMPLE_MODULES[@]}" "${OUR_MODULES[@]}"              # built above
)

# modules_in_load_order MODULES.DEP NAME...: prints the paths of the modules and of
# their dependencies, dependencies first; "?NAME" for a name that is not there.
modules_in_load_order() {
    local dep=$1; shift
    awk -v want="$*" '
        function key(p) { sub(/.*\//, "", p); sub(/\.ko.*/, "", p); gsub(/-/, "_", p); return p }
        function add(p,    n, i, d) {
            if (p in seen) return
            seen[p] = 1
            n = split(deps[p], d, " ")
            for (i = 1; i <= n; i++) add(d[i])
            print p
        }
        { p = $1; sub(/:$/, "", p); $1 = ""; deps[p] = $0; path[key(p)] = p }
        END {
            n = split(want, w, " ")
            for (i = 1; i <= n; i++) {
                k = w[i]; gsub(/-/, "_", k)
                if (k in path) add(path[k]); else print "?" k
            }
        }' "$dep"
}

initramfs() {
    local dir=$CACHE/$KVERSION mods=$CACHE/$KVERSION/root/lib/modules/$KREL
    local out=$dir/initramfs.cpio stage=$dir/initramfs busybox
    busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
    [[ $(ldd "$busybox" 2>&1 || true) == *"not a dynamic"* ]] \
        || die "$busybox is not static (apt-get install busybox-static)"
    local sum; sum=$( { cat "$HERE/init.sh" "$busybox" "$dir/build/sources.sha256"; echo "${BOOT_MODULES[*]}"; } | sha256sum | cut -d' ' -f1)
    if [[ -f $out && -f $out.sha256 && $(<"$out.sha256") == "$sum" ]]; then
        say "initramfs up to date ($(du -h "$out" | cut -f1))"
        return
    fi
    local m order=()
    while read -r m; do
        if [[ $m != \?* ]]; then
            order+=("$m")
        elif m=${m#\?}; grep -q "/${m//_/[-_]}\.ko" "$mods/modules.builtin"; then
            :   # built into the kernel
        else
            die "module $m is neither in modules.dep nor built in"
        fi
    done < <(modules_in_load_order "$mods/modules.dep" "${BOOT_MODULES[@]}")
    rm -rf "$stage"; mkdir -p "$stage/bin" "$stage/lib/modules"
    cp "$busybox" "$stage/bin/busybox"
    cp "$HERE/init.sh" "$stage/init"; chmod 755 "$stage/init"
    local p
    for p in "${order[@]}"; do
        mkdir -p "$stage/lib/modules/${p%/*}"
        cp "$mods/$p" "$stage/lib/modules/$p"
        echo "$p"
    done >"$stage/lib/modules/load.list"
    (cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp"
    mv "$out.tmp" "$out"
    echo "$sum" >"$out.sha256"
    say "initramfs: ${#order[@]} modules, $(du -h "$out" | cut -f1)"
}

# ---------------------------------------------------------------- boot
QEMU_PID= DISK=
cleanup() {
    if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill "$QEMU_PID" 2>/dev/null || true
    fi
    if [[ -n $DISK ]]; then rm -f "$DISK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

shquote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

keep_paths() { # the host paths under /tmp or /run that the job reads, one a line
    local p v
    {
        printf '%s\n' "$REPO" "$CACHE" "${HOME:-/root}"
        for v in $(compgen -e); do
            case $v in DOTNET_*|NUGET_*) printf '%s\n' "${!v}" ;; esac
        done
    } | while IFS= read -r p; do
        case $p in /tmp/?*|/run/?*) [ -e "$p" ] && printf '%s\n' "$p" ;; esac
    done | awk '!seen[$0]++'
}

write_job() { # write_job PAYLOAD ARG...: init.env for /init, job.sh for the chroot
    local payload=$1; shift
    local dir=$CACHE/$KVERSION
    {
        echo "RESULTS_PATH=$(shquote "$RESULTS")"
        echo "MODULES_PATH=$(shquote "$dir/root/lib/modules/$KREL")"
        echo "KREL=$(shquote "$KREL")"
        echo "COLDPLUG=$(shquote "${GPUVIRT_KERNEL_COLDPLUG:-1}")"
        # The guest mounts fresh tmpfs on /tmp and /run; the host paths the job needs stay visible under them: the
        # repository, the kernel cache, HOME (~/.nuget holds Pester and the pwsh tool, ~/.dotnet the SDK's state)
        # and every path a .NET or NuGet variable names. One path a line.
        echo "KEEP_PATHS=$(shquote "$(keep_paths)")"
    } >"$RESULTS/init.env"
    {
        echo "# run by /init inside the guest, chrooted into the host's /"
        # The guest sees the host's /, so the host's PATH and HOME (~/.nuget, ~/.dotnet) hold.
        echo "export PATH=$(shquote "$PATH") HOME=$(shquote "${HOME:-/root}") LANG=C.UTF-8 TERM=dumb"
        echo "export RESULTS=$(shquote "$RESULTS")"
        echo "export GPUVIRT_KERNEL_GUEST=1 GPUVIRT_KERNEL_RELEASE=$(shquote "$KREL")"
        echo "export GPUVIRT_VFIO_HOLD=$(shquote "$dir/helper/vfio-hold")"
        echo "export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1"
        # Hand a few of the host's settings through (CI flags, .NET and NuGet locations).
        local v
        for v in $(compgen -e); do
            case $v in
                CI|GITHUB_ACTIONS|DOTNET_*|NUGET_*|POWERSHELL_*) echo "export $v=$(shquote "${!v}")" ;;
            esac
        done
        echo "cd $(shquote "$REPO") || exit 125"
        printf 'exec %s' "$(shquote "$payload")"
        local a; for a in "$@"; do printf ' %s' "$(shquote "$a")"; done
        echo
    } >"$RESULTS/job.sh"
}

boot() {
    local dir=$CACHE/$KVERSION
    local append="console=ttyS0 intel_iommu=on iommu=pt panic=-1 loglevel=4 ${GPUVIRT_KERNEL_APPEND:-}"
    # shellcheck disable=SC2054 # commas belong to QEMU's options
    local qemu=(
        qemu-system-x86_64
        -machine q35,kernel-irqchip=split -accel "${GPUVIRT_KERNEL_ACCEL:-tcg}"
        -cpu max -smp 2 -m "$MEMORY"
        -nodefaults -no-user-config -display none -no-reboot
        -serial stdio
        -kernel "$dir/root/boot/vmlinuz-$KREL" -initrd "$dir/initramfs.cpio"
        -append "$append"
        -device intel-iommu,intremap=on,caching-mode=on
        # std VGA at 00:02.0: the card that becomes the mdev parent
        -device VGA,bus=pcie.0,addr=02.0
        # a GPU and its HDMI audio: one multifunction device behind a root port
        -device pcie-root-port,id=rp1,bus=pcie.0,addr=1c.0,chassis=1,multifunction=on
        -device virtio-gpu-pci,bus=rp1,addr=00.0,multifunction=on
        -device ich9-intel-hda,id=gpu-audio,bus=rp1,addr=00.1
        -device hda-output,bus=gpu-audio.0,audiodev=noaudio
        # a NIC on a root port of its own
        -device pcie-root-port,id=rp2,bus=pcie.0,addr=1c.1,chassis=2
        -netdev hubport,id=net0,hubid=0
        -device e1000e,bus=rp2,netdev=net0
        # a PCIe-to-PCI bridge with a secondary VGA and a NIC: one shared IOMMU group
        -device pcie-root-port,id=rp3,bus=pcie.0,addr=1c.2,chassis=3
        -device pcie-pci-bridge,id=pcibr,bus=rp3
        -device secondary-vga,bus=pcibr,addr=01.0
        -netdev hubport,id=net1,hubid=1
        -device e1000,bus=pcibr,addr=02.0,netdev=net1
        # the chipset's own HD audio
        -device ich9-intel-hda,id=pch-audio,bus=pcie.0,addr=1b.0
        -device hda-duplex,bus=pch-audio.0,audiodev=noaudio
        -audiodev none,id=noaudio
        # the host's / (read-only) and the results directory, over 9p
        -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,bus=pcie.0,addr=04.0
        -fsdev "local,id=results,path=$RESULTS,security_model=none,multidevs=remap"
        -device virtio-9p-pci,fsdev=results,mount_tag=results,bus=pcie.0,addr=05.0
        # a disk with an ext4 filesystem: the test mounts it and its controller becomes host-critical
        -drive "file=$DISK,if=none,id=disk0,format=raw"
        -device virtio-blk-pci,drive=disk0,bus=pcie.0,addr=06.0
    )
    say "qemu: q35 + intel-iommu, ${GPUVIRT_KERNEL_ACCEL:-tcg}, ${MEMORY} memory, 2 vCPUs, timeout ${TIMEOUT}s"
    say "guest console follows (also in ${RESULTS#"$REPO"/}/console.log)"
    local rc=0
    timeout -k 10 "$TIMEOUT" "${qemu[@]}" </dev/null > >(tee "$RESULTS/console.log") 2>&1 &
    QEMU_PID=$!
    wait "$QEMU_PID" || rc=$?
    QEMU_PID=
    return "$rc"
}

# ---------------------------------------------------------------- main
while (($#)); do
    case $1 in
        --prepare) PREPARE_ONLY=1; shift ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --memory) MEMORY=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (see apt-packages.txt)"
# Kbuild refuses a tree whose path holds a space or a colon ("cannot contain spaces or colons"): a clone at such a
# path keeps its kernel cache in the user's cache directory instead, unless GPUVIRT_KERNEL_CACHE names one.
if [[ -z ${GPUVIRT_KERNEL_CACHE:-} && $REPO == *[[:space:]:]* ]]; then
    CACHE=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/gpuvirt/kernel
    say "the repository's path holds a space or a colon, which kbuild refuses: the kernel cache is $CACHE"
fi
mkdir -p "$CACHE"; CACHE=$(realpath "$CACHE")
[[ $CACHE != *[[:space:]:]* ]] || die "the kernel cache $CACHE holds a space or a colon, which kbuild refuses: set GPUVIRT_KERNEL_CACHE to another directory"
TOTAL_START=$(now)
phase fetch
fetch
phase build
build
build_helper
phase initramfs
initramfs
phase_end
if ((PREPARE_ONLY)); then
    say "prepared in $(elapsed "$TOTAL_START")s (${TIMINGS[*]})"
    exit 0
fi

(($# >= 1)) || die "usage: $0 [--prepare] [--timeout S] [--memory SIZE] [--results DIR] PAYLOAD [ARG...]"
PAYLOAD=$1; shift
[[ $PAYLOAD == /* ]] || PAYLOAD=$PWD/$PAYLOAD
[[ -f $PAYLOAD && -x $PAYLOAD ]] || die "payload $PAYLOAD is not an executable file"
PAYLOAD=$(realpath "$PAYLOAD")
case $PAYLOAD in # the guest mounts its own file systems there; the repository and the cache stay visible
    "$REPO"/*|"$CACHE"/*) ;;
    /tmp/*|/run/*|/proc/*|/sys/*|/dev/*) die "payload $PAYLOAD: outside the repository, the guest cannot see /tmp, /run, /proc, /sys or /dev of the host" ;;
esac
if [[ -z $RESULTS ]]; then
    RESULTS=$CACHE/results
    rm -rf "$RESULTS"
fi
mkdir -p "$RESULTS"; RESULTS=$(realpath "$RESULTS")
rm -f "$RESULTS"/{exit-code,init-error,guest-times,console.log,init.env,job.sh}
write_job "$PAYLOAD" "$@"
# The guest's disk: an empty ext4 filesystem, made for each boot and removed after it.
DISK=$(mktemp -p "$CACHE" disk.XXXXXX.img)
truncate -s 16M "$DISK"; mkfs.ext4 -q -F "$DISK" || { rm -f "$DISK"; die "mkfs.ext4 of the guest disk failed"; }

say "== boot+payload"
qrc=0 qstart=$(now)
boot || qrc=$?
rm -f "$DISK"; DISK=
qemu_s=$(elapsed "$qstart")
# The guest measures the payload itself (uptime before and after); boot is the rest.
guest_payload=
if [[ -f $RESULTS/guest-times ]]; then
    read -r _ guest_payload <"$RESULTS/guest-times"
    guest_payload=${guest_payload#payload=}
    TIMINGS+=("boot=$(awk -v q="$qemu_s" -v p="$guest_payload" 'BEGIN { printf "%.1f", q - p }')s"
              "payload=${guest_payload}s")
else
    TIMINGS+=("boot+payload=${qemu_s}s")
fi
say "timings: ${TIMINGS[*]} total=$(elapsed "$TOTAL_START")s"
if ((qrc == 124 || qrc == 137)); then
    say "FAILED: the guest did not finish within ${TIMEOUT}s"
    exit 124
fi
if [[ -f $RESULTS/init-error ]]; then
    die "guest init failed: $(<"$RESULTS/init-error")"
fi
[[ -f $RESULTS/exit-code ]] || die "the guest wrote no exit code (qemu exited $qrc)"
rc=$(<"$RESULTS/exit-code")
say "payload ${PAYLOAD#"$REPO"/} exited $rc"
exit "$rc"
