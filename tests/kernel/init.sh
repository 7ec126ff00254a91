#!/bin/busybox sh
# /init of the test initramfs (busybox sh). Loads the modules listed in
# /lib/modules/load.list, mounts the host's / read-only over 9p with a tmpfs overlay,
# binds the guest's own /proc /sys /dev into it, chroots and runs the job that the
# host wrote into the results share; the exit code goes back through that share.
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /host /rw /newroot /results
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

log() { echo "[init] $*"; }
fail() {
    log "error: $*"
    if mountpoint -q /results; then echo "$*" >/results/init-error; fi
    sync
    poweroff -f
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

MSIZE=512000
while read -r m; do
    insmod "/lib/modules/$m" || fail "insmod $m"
done </lib/modules/load.list
ip link set lo up || fail "lo up"

mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE results /results \
    || fail "mount results share"
[ -f /results/init.env ] || fail "no init.env in the results share"
. /results/init.env   # RESULTS_PATH, MODULES_PATH, KREL, COLDPLUG, KEEP_PATHS

mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE,ro,cache=loose hostroot /host \
    || fail "mount host root"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "overlay"

mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
for d in proc sys dev; do
    mount -o rbind /$d /newroot/$d || fail "bind /$d"
done
# Fresh /tmp and /run, but what the job needs from under them stays visible: KEEP_PATHS (one path a line, from
# run.sh) names the repository, the kernel cache, HOME and the .NET/NuGet paths when they live there (a clone or a
# HOME made with mktemp -d).
keep() { # keep save|restore: bind each kept path aside before the tmpfs mounts, and back after them
    n=0
    printf '%s\n' "$KEEP_PATHS" | while IFS= read -r p; do
        [ -n "$p" ] || continue
        n=$((n + 1))
        if [ "$1" = save ]; then
            mkdir -p "/keep/$n" && mount -o bind "/newroot$p" "/keep/$n" || { echo "keep $p" >/rw/keep-error; break; }
        else
            mkdir -p "/newroot$p" && mount -o bind "/keep/$n" "/newroot$p" || { echo "restore $p" >/rw/keep-error; break; }
        fi
    done
    [ ! -f /rw/keep-error ] || fail "$(cat /rw/keep-error)"
}
keep save
for d in tmp run; do
    mount -t tmpfs -o mode=1777 tmpfs /newroot/$d || fail "tmpfs /$d"
done
keep restore
mkdir -p "/newroot$RESULTS_PATH" && mount -o bind /results "/newroot$RESULTS_PATH" \
    || fail "bind results"
# The unpacked kernel's modules (with depmod run over them) for modprobe in the chroot.
mkdir -p "/newroot/lib/modules/$KREL" \
    && mount -o bind "/newroot$MODULES_PATH" "/newroot/lib/modules/$KREL" \
    || fail "bind modules"

if [ "$COLDPLUG" = 1 ]; then
    # What udev would do at boot: load the drivers for the devices present.
    cat /sys/bus/pci/devices/*/modalias /sys/bus/virtio/devices/*/modalias 2>/dev/null \
        | sort -u >/rw/modaliases
    # shellcheck disable=SC2046 # one argument per alias
    chroot /newroot /sbin/modprobe -C /dev/null -a -q $(cat /rw/modaliases)
    log "drivers loaded ($(uptime_s)s)"
fi

log "running job ($(uptime_s)s)"
start=$(uptime_s)
chroot /newroot /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/sh "$RESULTS_PATH/job.sh" </dev/null
rc=$?
end=$(uptime_s)
echo "boot=$start payload=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" \
    >/results/guest-times
echo "$rc" >/results/exit-code
sync
log "job exited $rc; powering off"
poweroff -f
