/*
 * vfio-hold GROUP DEVICE: holds a device open through VFIO the way QEMU does, so that the real-kernel suite can test
 * what the cmdlets do while a guest uses a device. It opens the container (/dev/vfio/vfio), opens /dev/vfio/GROUP,
 * checks the group is viable, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU (type 1), VFIO_GROUP_GET_DEVICE_FD for DEVICE
 * (a PCI address or a mediated device's UUID), prints "holding PID" and waits until stdin closes or it is killed.
 * Built on the host by tests/kernel/run.sh (static, so that it runs the same in the guest).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "vfio-hold: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vfio-hold GROUP DEVICE\n");
        return 2;
    }
    int container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0) return fail("open /dev/vfio/vfio");
    if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        fprintf(stderr, "vfio-hold: unknown VFIO API version\n");
        return 1;
    }
    char path[64];
    snprintf(path, sizeof path, "/dev/vfio/%s", argv[1]);
    int group = open(path, O_RDWR);
    if (group < 0) return fail(path);
    struct vfio_group_status status = { .argsz = sizeof status };
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0) return fail("VFIO_GROUP_GET_STATUS");
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        fprintf(stderr, "vfio-hold: group %s is not viable\n", argv[1]);
        return 1;
    }
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) return fail("VFIO_GROUP_SET_CONTAINER");
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) return fail("VFIO_SET_IOMMU");
    int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]);
    if (device < 0) return fail("VFIO_GROUP_GET_DEVICE_FD");
    printf("holding %d\n", (int)getpid());
    fflush(stdout);
    char buffer[16];
    while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
    }
    close(device);
    close(group);
    close(container);
    return 0;
}
