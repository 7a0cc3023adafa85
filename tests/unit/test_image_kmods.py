"""Module selection from modules.dep: closures in load order, folder rules, errors."""

from __future__ import annotations

import pytest

from lab.errors import ImageError
from lab.image.kmods import load_order, module_name, parse_modules_dep, select_modules

# an excerpt of Debian 6.1's modules.dep
MODULES_DEP = """\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko \
kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet.ko:
kernel/crypto/crc32c_generic.ko:
""".replace("\\\n", "")


@pytest.fixture
def deps() -> dict[str, list[str]]:
    return parse_modules_dep(MODULES_DEP)


def position(order: list[str], name: str) -> int:
    return [module_name(p) for p in order].index(name)


def test_module_names_drop_folder_and_suffix() -> None:
    assert module_name("kernel/net/9p/9pnet_virtio.ko") == "9pnet_virtio"
    assert module_name("kernel/drivers/net/foo-bar.ko.xz") == "foo_bar"


def test_dependencies_load_first(deps: dict[str, list[str]]) -> None:
    order = load_order(["virtio_pci", "virtio_blk", "ext4"], deps)
    assert position(order, "virtio") < position(order, "virtio_pci")
    assert position(order, "virtio_ring") < position(order, "virtio_blk")
    assert position(order, "jbd2") < position(order, "ext4")
    assert position(order, "crc16") < position(order, "ext4")
    assert len(order) == len(set(order)) == 10


def test_unknown_module_names_the_list_to_fix(deps: dict[str, list[str]]) -> None:
    with pytest.raises(ImageError, match="modules.txt"):
        load_order(["no_such_module"], deps)


def test_folder_rules_take_a_subtree_and_its_dependencies(deps: dict[str, list[str]]) -> None:
    chosen = select_modules(["kernel/net/9p/", "crc32c_generic"], deps)
    names = {module_name(p) for p in chosen}
    assert names == {"9pnet", "9pnet_virtio", "virtio", "virtio_ring", "crc32c_generic"}
    assert not any("ext4" in p for p in chosen)


def test_empty_folder_rule_is_an_error(deps: dict[str, list[str]]) -> None:
    with pytest.raises(ImageError, match="guest-modules.txt"):
        select_modules(["kernel/sound/"], deps)
