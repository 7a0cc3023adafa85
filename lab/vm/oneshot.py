"""Boot one throwaway guest, run one shell command in it, print its output, exit with its code.

    python -m lab.vm.oneshot [--share DIR] [--nics N] [--keep] -- 'insmod /lab/lana.ko && ...'

Division of labour: a thin driver over QemuVM for kernel developers. The guest boots from
the current image; DIR (if given) appears at /lab. A kernel Oops/BUG/WARNING/panic seen on
the console fails the run with the trace (exit status 3), even when the command succeeded.
The VM is always stopped and its run cleaned, unless --keep (then it says how to reach it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from lab.errors import GuestKernelError, LabError
from lab.runstate import RunRecord, clean
from lab.vm.image import find_image
from lab.vm.qemu import Nic, QemuVM

EXIT_KERNEL_ERROR = 3
EXIT_LAB_ERROR = 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.vm.oneshot",
        description="Run one shell command in a fresh guest VM and stop it again.")
    parser.add_argument("--share", type=Path, help="host folder to mount at /lab in the guest")
    parser.add_argument("--nics", type=int, default=0,
                        help="guest NICs on fresh, unconnected taps (alternating virtio, e1000e)")
    parser.add_argument("--nic-model", choices=["virtio", "e1000e", "mixed"], default="mixed")
    parser.add_argument("--memory", type=int, default=512, help="guest memory in MiB")
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds the command may run (default 300)")
    parser.add_argument("--boot-timeout", type=float, default=None)
    parser.add_argument("--image", help="image reference for lab.image.store (default: current)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the VM running afterwards (stop it with `lanalab clean`)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print timings")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="shell command (after --), run with /bin/sh -c in the guest")
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("give the command to run after --")
    return args


def _nics(count: int, model: str) -> list[Nic]:
    models = ["virtio", "e1000e"] if model == "mixed" else [model]
    return [Nic(model=models[i % len(models)], create=True) for i in range(count)]


def run_oneshot(args: argparse.Namespace) -> int:
    image = find_image(args.image)
    run = RunRecord.create()
    vm = QemuVM("oneshot", image, run, nics=_nics(args.nics, args.nic_model),
                share=args.share, memory_mb=args.memory, cpus=args.cpus)
    try:
        vm.start()
        boot = vm.wait_ready(args.boot_timeout)
        _note(args, f"guest ready after {boot:.1f} s ({vm.accel.describe() if vm.accel else ''})")
        t0 = time.monotonic()
        result = vm.exec(["/bin/sh", "-c", " ".join(args.command)], timeout=args.timeout)
        _note(args, f"command exited {result.exit_code} after {time.monotonic() - t0:.1f} s")
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
        sys.stderr.write(result.stderr)
        sys.stderr.flush()
        vm.check_console()
    finally:
        if args.keep and vm.running():
            print(f"lab.vm.oneshot: VM kept running: run {run.id}, agent socket "
                  f"{vm.files.qga_socket}, console {vm.files.console_log}; remove it with "
                  f"`lanalab clean --run {run.id}`", file=sys.stderr)
        else:
            stop = vm.stop()
            _note(args, f"stopped in {stop:.2f} s")
            report = clean(run.id)
            if report.errors:
                print("lab.vm.oneshot: cleanup problems: " + "; ".join(report.errors),
                      file=sys.stderr)
    vm.check_console()  # what the kernel printed while the command ended or the VM stopped
    return result.exit_code


def _note(args: argparse.Namespace, text: str) -> None:
    if args.verbose:
        print(f"lab.vm.oneshot: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="lab.vm.oneshot: %(message)s")
    try:
        return run_oneshot(args)
    except GuestKernelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_KERNEL_ERROR
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LAB_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
