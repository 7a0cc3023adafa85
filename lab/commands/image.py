"""`lanalab image build|list|export|import`: the guest image that carries LANA."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="build, list, export and import guest images",
                       description="The guest image holds Debian's 6.1 kernel, a small "
                       "initramfs, a minimal Debian root file system with qemu-guest-agent and "
                       "netsniff-ng, and the LANA modules and tools built from kernel/. It is "
                       "content-addressed: `build` only rebuilds when an input changed.")
    isub = p.add_subparsers(dest="image_command", metavar="ACTION", required=True)

    b = isub.add_parser("build", help="build the image (no work if it is up to date)")
    b.add_argument("--force", action="store_true", help="rebuild even if up to date")
    b.set_defaults(func=cmd_build)

    ls = isub.add_parser("list", help="list the images in the cache")
    ls.set_defaults(func=cmd_list)

    e = isub.add_parser("export", help="write an image to one archive (for offline machines)")
    e.add_argument("archive", type=Path, help="file to write, e.g. lana-image.tar.zst")
    e.add_argument("--image", help="image digest (default: the current one)")
    e.set_defaults(func=cmd_export)

    i = isub.add_parser("import", help="add an image from an archive made by `export`")
    i.add_argument("archive", type=Path)
    i.set_defaults(func=cmd_import)


def _progress(message: str) -> None:
    print(f"[image] {message}", flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    from lab.image.build import build_image

    info = build_image(force=args.force, progress=_progress)
    print(f"image ready: {info.path}")
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    from lab.image.store import list_images

    images = list_images()
    if not images:
        print("no images yet: run `lanalab image build`")
    for info in images:
        m = info.manifest
        print(f"{info.path.name}  kernel {m.get('kernel_release', '?')}  "
              f"built {m.get('built_at', '?')}  {info.path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lab.image.archive import export_image

    export_image(args.image, args.archive)
    print(f"exported to {args.archive}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from lab.image.archive import import_image

    info = import_image(args.archive)
    print(f"imported {info.path}")
    return 0
