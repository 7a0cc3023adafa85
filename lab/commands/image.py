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

    pr = isub.add_parser("prune", help="delete old images (never the current one or one in use)")
    pr.add_argument("--keep", type=int, default=2, help="newest images to keep (default 2)")
    pr.set_defaults(func=cmd_prune)

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


def cmd_prune(args: argparse.Namespace) -> int:
    import shutil

    from lab.image.store import current_digest, images_root, list_images
    from lab.labstate import list_labs

    in_use = {lab.state.get("image") for lab in list_labs()}
    current = current_digest()
    newest_first = sorted(list_images(), key=lambda i: str(i.manifest.get("built_at", "")),
                          reverse=True)
    kept = 0
    for info in newest_first:
        keep = (info.path.name.startswith(current[:16]) or str(info.path) in in_use
                or kept < args.keep)
        if keep:
            kept += 1
            continue
        if info.path.resolve().parent != images_root().resolve():
            continue  # only ever delete inside the image store
        shutil.rmtree(info.path)
        print(f"deleted {info.path}")
    print(f"kept {kept} image(s)")
    return 0
