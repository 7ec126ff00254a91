// SPDX-License-Identifier: GPL-2.0-only
/*
 * gpuvirt_mdev_parent - turns any PCI device into a mediated-device parent that is
 * laid out in sysfs like an NVIDIA vGPU card, for tests of tools that read sysfs.
 *
 * The PCI driver has no id table: it binds only where user space asks for it,
 *
 *   echo gpuvirt_mdev_parent > /sys/bus/pci/devices/0000:00:02.0/driver_override
 *   echo 0000:00:02.0 > /sys/bus/pci/devices/0000:00:02.0/driver/unbind
 *   echo 0000:00:02.0 > /sys/bus/pci/drivers_probe
 *
 * and then registers the device as an mdev parent with "GRID T4-<n>Q"-like types:
 *
 *   /sys/class/mdev_bus/0000:00:02.0 -> ../../devices/pci0000:00/0000:00:02.0
 *   .../0000:00:02.0/mdev_supported_types/gpuvirt_mdev_parent-230/{name,description,
 *        device_api,available_instances,create,devices/}
 *
 * All types of one parent draw on one framebuffer pool (fb_mb, 16 GiB by default), so
 * creating a 2Q device lowers the available 1Q count by two. A create that does not fit
 * fails in probe with -ENOSPC, which the write to "create" returns to user space.
 * Created devices are vfio devices with an emulated IOMMU, so each one gets an IOMMU
 * group of its own (and /dev/vfio/<group>), as with the kernel's mtty sample. They
 * only exist: they have no regions and cannot be used by a guest.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/pci.h>
#include <linux/mdev.h>
#include <linux/vfio.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#define DRIVER_NAME "gpuvirt_mdev_parent"

static unsigned int fb_mb = 16384;
module_param(fb_mb, uint, 0444);
MODULE_PARM_DESC(fb_mb, "framebuffer pool of each parent in MiB (default 16384)");

struct gv_type_info {
	const char *sysfs_name;	/* the kernel prefixes it with "<driver>-" */
	const char *pretty_name;
	unsigned int fb_mb;
	unsigned int num_heads;
	unsigned int frl_config;
	const char *max_resolution;
};

static const struct gv_type_info gv_type_info[] = {
	{ "230", "GRID T4-1Q", 1024, 4, 60, "5120x2880" },
	{ "231", "GRID T4-2Q", 2048, 4, 60, "5120x2880" },
	{ "232", "GRID T4-4Q", 4096, 4, 60, "5120x2880" },
	{ "233", "GRID T4-8Q", 8192, 4, 60, "5120x2880" },
	{ "234", "GRID T4-16Q", 16384, 4, 60, "5120x2880" },
};
#define GV_NR_TYPES ARRAY_SIZE(gv_type_info)

struct gv_type {
	struct mdev_type type;
	const struct gv_type_info *info;
	struct gv_parent *parent;
};

/* one per bound PCI device */
struct gv_parent {
	struct mdev_parent mdev_parent;
	struct gv_type types[GV_NR_TYPES];
	struct mdev_type *type_ptrs[GV_NR_TYPES];
	struct mutex lock;	/* guards free_mb */
	unsigned int total_mb;
	unsigned int free_mb;
};

/* one per created mdev */
struct gv_vgpu {
	struct vfio_device vdev;
	struct gv_type *type;
};

static struct gv_type *to_gv_type(struct mdev_type *mtype)
{
	return container_of(mtype, struct gv_type, type);
}

static unsigned int gv_get_available(struct mdev_type *mtype)
{
	struct gv_type *t = to_gv_type(mtype);
	unsigned int free;

	mutex_lock(&t->parent->lock);
	free = t->parent->free_mb;
	mutex_unlock(&t->parent->lock);
	return free / t->info->fb_mb;
}

static ssize_t gv_show_description(struct mdev_type *mtype, char *buf)
{
	struct gv_type *t = to_gv_type(mtype);

	return sysfs_emit(buf,
		"num_heads=%u, frl_config=%u, framebuffer=%uM, max_resolution=%s, max_instance=%u\n",
		t->info->num_heads, t->info->frl_config, t->info->fb_mb,
		t->info->max_resolution, t->parent->total_mb / t->info->fb_mb);
}

/* vfio_device ops: reserve framebuffer at init, give it back at release */
static int gv_vgpu_init(struct vfio_device *vdev)
{
	struct gv_vgpu *vgpu = container_of(vdev, struct gv_vgpu, vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);
	struct gv_type *t = to_gv_type(mdev->type);
	int ret = 0;

	mutex_lock(&t->parent->lock);
	if (t->parent->free_mb < t->info->fb_mb)
		ret = -ENOSPC;
	else
		t->parent->free_mb -= t->info->fb_mb;
	mutex_unlock(&t->parent->lock);
	if (!ret)
		vgpu->type = t;
	return ret;
}

static void gv_vgpu_release(struct vfio_device *vdev)
{
	struct gv_vgpu *vgpu = container_of(vdev, struct gv_vgpu, vdev);
	struct gv_type *t = vgpu->type;

	mutex_lock(&t->parent->lock);
	t->parent->free_mb += t->info->fb_mb;
	mutex_unlock(&t->parent->lock);
	vfio_free_device(vdev);
}

static const struct vfio_device_ops gv_vgpu_ops = {
	.name = "gpuvirt-vgpu",
	.init = gv_vgpu_init,
	.release = gv_vgpu_release,
};

/* mdev driver: one vfio device per created mdev */
static int gv_mdev_probe(struct mdev_device *mdev)
{
	struct gv_vgpu *vgpu;
	int ret;

	vgpu = vfio_alloc_device(gv_vgpu, vdev, &mdev->dev, &gv_vgpu_ops);
	if (IS_ERR(vgpu))
		return PTR_ERR(vgpu);

	ret = vfio_register_emulated_iommu_dev(&vgpu->vdev);
	if (ret) {
		vfio_put_device(&vgpu->vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, vgpu);
	return 0;
}

static void gv_mdev_remove(struct mdev_device *mdev)
{
	struct gv_vgpu *vgpu = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&vgpu->vdev);
	vfio_put_device(&vgpu->vdev);
}

static struct mdev_driver gv_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = "gpuvirt_mdev",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = gv_mdev_probe,
	.remove = gv_mdev_remove,
	.get_available = gv_get_available,
	.show_description = gv_show_description,
};

/* PCI driver: no id table, bound through driver_override only */
static int gv_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct gv_parent *p;
	unsigned int i;
	int ret;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	mutex_init(&p->lock);
	p->total_mb = fb_mb;
	p->free_mb = fb_mb;
	for (i = 0; i < GV_NR_TYPES; i++) {
		p->types[i].info = &gv_type_info[i];
		p->types[i].parent = p;
		p->types[i].type.sysfs_name = gv_type_info[i].sysfs_name;
		p->types[i].type.pretty_name = gv_type_info[i].pretty_name;
		p->type_ptrs[i] = &p->types[i].type;
	}

	ret = mdev_register_parent(&p->mdev_parent, &pdev->dev, &gv_mdev_driver,
				   p->type_ptrs, GV_NR_TYPES);
	if (ret) {
		kfree(p);
		return ret;
	}
	pci_set_drvdata(pdev, p);
	pci_info(pdev, "mdev parent with %zu types, %u MiB framebuffer\n",
		 GV_NR_TYPES, fb_mb);
	return 0;
}

static void gv_pci_remove(struct pci_dev *pdev)
{
	struct gv_parent *p = pci_get_drvdata(pdev);

	/* removes the remaining mdevs, which releases their framebuffer */
	mdev_unregister_parent(&p->mdev_parent);
	kfree(p);
}

static struct pci_driver gv_pci_driver = {
	.name = DRIVER_NAME,
	.id_table = NULL,
	.probe = gv_pci_probe,
	.remove = gv_pci_remove,
};

static int __init gv_init(void)
{
	int ret;

	if (!fb_mb)
		return -EINVAL;
	ret = mdev_register_driver(&gv_mdev_driver);
	if (ret)
		return ret;
	ret = pci_register_driver(&gv_pci_driver);
	if (ret)
		mdev_unregister_driver(&gv_mdev_driver);
	return ret;
}

static void __exit gv_exit(void)
{
	pci_unregister_driver(&gv_pci_driver);
	mdev_unregister_driver(&gv_mdev_driver);
}

module_init(gv_init);
module_exit(gv_exit);

MODULE_LICENSE("GPL v2");
MODULE_DESCRIPTION("Test mdev parent laid out like an NVIDIA vGPU card");
