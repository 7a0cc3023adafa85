"""Bad-input campaign, run INSIDE a guest: `python3 -m lab.reliability.fuzz_guest --seed S
--seconds T --out FILE` (with /lab on PYTHONPATH; Python 3 stdlib only).

Targets, each for a share of the time, while trafgen floods va -> vb -> f1 (bpf) -> c1:
  netlink  random and malformed generic netlink messages to the LANA family
  procfs   garbage written to every file under /proc/net/lana
  bpf      malformed classic BPF programs written into a bpf instance
  fbctl    random argument lists for the fbctl tool
  vlink    random argument lists for the vlink tool
  settings every value in lab/reliability/settings.py's table, then mangled ones, set on
           an instance of each protocol block type (arp, icmp_echo, udp, ratelimit)
Every input must be answered (an errno, an exit status 1 with a message) or accepted;
the kernel must log no trouble; a rejected BPF program must leave the old one in place.
Figures per target go to FILE as JSON.
"""

from __future__ import annotations

import argparse
import errno
import json
import random
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lab.lana.procfs import parse_fblocks
from lab.reliability import genl, settings
from lab.reliability.storm import (
    ENGINES,
    FRAME,
    current_engine,
    kernel_trouble,
    sh,
    stop,
    wait_for_frames,
)

PROC = Path("/proc/net/lana")
BASE_TYPES = {"vb": "eth", "f1": "bpf", "c1": "counter", "fw": "fwd", "te": "tee",
              "mi": "mirror"}
BASE_BINDS = [("f1", "vb"), ("c1", "f1")]
# Devices the fuzz must never hook: hooking them could loop frames (mirror on lo).
FORBIDDEN_NAMES = {"lo", "va", "eth0", "eth1"}
SHARES = {"netlink": 0.34, "procfs": 0.1, "bpf": 0.17, "fbctl": 0.15, "vlink": 0.08,
          "settings": 0.16}
NAME_POOL = ["vb", "f1", "c1", "fw", "te", "mi", "x1", "x2", "n" * 31, "n" * 32, "a b",
             "", ".", "..", "ünï", "x/y", "-", "_", "x" * 300]
TYPE_POOL = ["fwd", "tee", "counter", "bpf", "mirror", "eth", "nosuch", "", "c" * 40,
             "../fwd", "counter\n", *settings.BLOCKS]
OPT_POOL = ["reset=1", "mode=observe", "mode=steal", "mode=", "=1", "novalue", "", "k=" +
            "v" * 300, "reset=x", "a=b=c", "ip=10.0.0.50", "ip=bad", "port=7", "port=0",
            "rate=5", "burst=0"]


class Campaign:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tried: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.with_message: Counter[str] = Counter()
        self.no_answer: Counter[str] = Counter()
        self.with_extack: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.problems: list[str] = []

    def count(self, target: str, outcome: str, *, accepted: bool = False,
              message: bool = False) -> None:
        self.tried[target] += 1
        self.outcomes.setdefault(target, Counter())[outcome] += 1
        if accepted:
            self.accepted[target] += 1
        else:
            self.rejected[target] += 1
            if message:
                self.with_message[target] += 1

    def problem(self, text: str) -> None:
        if len(self.problems) < 60:
            self.problems.append(text)

    # ---- random values -----------------------------------------------------------------
    def name(self) -> str:
        r = self.rng.random()
        if r < 0.7:
            return self.rng.choice(NAME_POOL)
        length = self.rng.choice([1, 2, 5, 15, 31, 32, 33, 64])
        text = "".join(self.rng.choice("abcxyz019_.-/ \t\x7f") for _ in range(length))
        return "zz" + text if text.strip() in FORBIDDEN_NAMES else text

    def garbage(self, limit: int = 600) -> bytes:
        size = self.rng.choice([0, 1, 3, 4, 7, 16, 100, limit])
        return bytes(self.rng.randrange(256) for _ in range(min(size, limit)))

    # ---- target: netlink ---------------------------------------------------------------
    def netlink_message(self, nl: genl.LanaNetlink) -> tuple[bytes, int, bool]:
        """(bytes, seq, framing intact): a structured message, sometimes mangled."""
        rng = self.rng
        cmd = rng.choice(list(range(1, 10)) * 4 + [0, 10, 11, 200, 255])
        payload = b""
        for _ in range(rng.choice([0, 1, 2, 2, 3, 4, 6])):
            kind = rng.choice([1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0x3FFF])
            if kind == 5 and rng.random() < 0.6:
                value = struct.pack("=I", rng.choice([0, 1, 2, 0xFFFFFFFF, rng.getrandbits(32)]))
                value = value[:rng.choice([4, 4, 4, 0, 1, 2, 3])] + (b"\0" * 4 if
                                                                     rng.random() < 0.1 else b"")
            elif rng.random() < 0.75:
                text = rng.choice([self.name(), rng.choice(TYPE_POOL), rng.choice(OPT_POOL)])
                value = text.encode(errors="replace")
                if rng.random() < 0.85:
                    value += b"\0"  # else: a string without its NUL
                if rng.random() < 0.1:
                    value += b"\0junk"
            else:
                value = self.garbage()
            if rng.random() < 0.1:
                kind |= rng.choice([0x8000, 0x4000])  # NLA_F_NESTED / NLA_F_NET_BYTEORDER
            payload += genl.attr(kind, value)
        flags = genl.NLM_F_REQUEST | genl.NLM_F_ACK
        if rng.random() < 0.15:
            flags |= rng.choice([genl.NLM_F_DUMP, 0x100, 0x200, 0x800, 0x1000, 0x8])
        if rng.random() < 0.05:
            flags &= ~genl.NLM_F_REQUEST
        seq = nl.next_seq()
        version = 1 if rng.random() < 0.9 else rng.randrange(256)
        data = bytearray(genl.genl_message(nl.family, cmd, payload, flags, seq, version))
        intact = True
        if rng.random() < 0.35:
            intact = self.mangle(data)
        return bytes(data), seq, intact

    def mangle(self, data: bytearray) -> bool:
        """Break the message; False if even the netlink header may now be wrong."""
        rng = self.rng
        how = rng.choice(["flip", "truncate", "extend", "nlmsg_len", "attr_len"])
        if how == "flip" and len(data) > 20:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(20, len(data))] = rng.randrange(256)
            return True
        if how == "truncate":
            del data[rng.randrange(1, len(data)):]
            if len(data) >= 16:
                struct.pack_into("=I", data, 0, len(data))
                return True
            return False
        if how == "extend":
            data += self.garbage(64)
            if rng.random() < 0.5:
                struct.pack_into("=I", data, 0, len(data))
            return True
        if how == "nlmsg_len":
            struct.pack_into("=I", data, 0, rng.choice([0, 1, 15, 16, 19, 20, len(data) + 4,
                                                        0xFFFFFFFF]))
            return False
        if len(data) >= 24:  # the first attribute's length lies
            struct.pack_into("=H", data, 20, rng.choice([0, 1, 3, 4, 0xFFFF, len(data)]))
        return True

    def fuzz_netlink(self, deadline: float) -> None:
        with genl.LanaNetlink(timeout=1.0) as nl:
            sent = 0
            while time.monotonic() < deadline:
                data, seq, intact = self.netlink_message(nl)
                # the netlink core drops a message with a broken header without a word
                nl.sock.settimeout(1.0 if intact else 0.05)
                answer = nl.send_raw(data, seq)
                sent += 1
                if not answer.answered:
                    self.count("netlink", "dropped by the netlink core (bad framing)"
                               if not intact else "no answer")
                    self.no_answer["netlink"] += 1
                    if intact and data[6] & genl.NLM_F_REQUEST:
                        self.problem(f"netlink: no answer to {data[:64].hex()}")
                elif answer.errno == 0:
                    self.count("netlink", "OK", accepted=True)
                else:
                    self.count("netlink", errno.errorcode.get(answer.errno, str(answer.errno)),
                               message=True)
                    if answer.message:
                        self.with_extack["netlink"] += 1
                if sent % 150 == 0:
                    reset_state(self)

    # ---- target: procfs ----------------------------------------------------------------
    def fuzz_procfs(self, deadline: float) -> None:
        sizes = [0, 1, 2, 63, 512, 4096, 65536, 65537, 300000]
        while time.monotonic() < deadline:
            files = [PROC / n for n in ("fblocks", "ppe", "types")]
            files += sorted((PROC / "fblock").iterdir())
            for path in files:
                size = self.rng.choice(sizes)
                if self.rng.random() < 0.5:
                    data = bytes(self.rng.randrange(256) for _ in range(min(size, 4096)))
                    data = (data * (size // max(len(data), 1) + 1))[:size]
                else:
                    data = ("{ 0x6, 0, 0, 0xffff },\n" * (size // 24 + 1)).encode()[:size]
                before = read_or_none(path)
                target = f"procfs:{path.relative_to(PROC)}"
                try:
                    with open(path, "wb", buffering=0) as f:
                        written = f.write(data)
                    self.count(target, f"accepted {written} bytes", accepted=True)
                except OSError as exc:
                    self.count(target, errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                               message=True)
                    after = read_or_none(path)
                    if path.parent.name == "fblock" and BASE_TYPES.get(path.name) == "bpf" \
                            and after != before:
                        self.problem(f"{path}: a refused write changed it: {before!r} -> "
                                     f"{after!r}")
                if time.monotonic() > deadline:
                    break
            if not check_readable(self):
                break

    # ---- target: bpf -------------------------------------------------------------------
    def bpf_program(self) -> str:
        rng = self.rng
        kind = rng.choice(["random_insns", "no_ret", "jump_out", "too_long", "bad_token",
                           "big_number", "ddd_count", "div_zero", "scratch", "empty",
                           "bad_brace", "negative"])
        def insn(code: int, jt: int = 0, jf: int = 0, k: int = 0) -> str:
            return f"{{ {code:#x}, {jt}, {jf}, {k:#010x} }},\n"
        ret = insn(0x06, k=0xFFFF)
        if kind == "random_insns":
            return "".join(insn(rng.randrange(0x100), rng.randrange(256), rng.randrange(256),
                                rng.getrandbits(32)) for _ in range(rng.randint(1, 12)))
        if kind == "no_ret":
            return insn(0x28, k=12) * rng.randint(1, 5)
        if kind == "jump_out":
            return insn(0x15, rng.randint(2, 200), rng.randint(2, 200), 0x800) + ret
        if kind == "too_long":
            return insn(0x28, k=12) * rng.choice([4096, 4097, 5000]) + ret
        if kind == "bad_token":
            return rng.choice(["{ 0x6, 0, 0 },\n", "{ zz, 0, 0, 1 },\n", "ret #0xffff\n",
                               "{ 0x6, 0, 0, 1, 5 },\n", "}}}}\n", "{ 0x6 0 0 1 }\n"])
        if kind == "big_number":
            return f"{{ {rng.choice(['0x1ffff', '99999999999', '0x6'])}, 999, 0, " \
                   f"0x1ffffffffff }},\n"
        if kind == "ddd_count":
            lines = ["6 0 0 65535"]
            return f"{rng.choice([0, 2, 5, 100000, -1])}\n" + "\n".join(lines) + "\n"
        if kind == "div_zero":
            return insn(0x34, k=0) + ret  # A /= 0 with a constant: the checker refuses
        if kind == "scratch":
            return insn(rng.choice([0x60, 0x61, 0x02, 0x03]), k=rng.choice([16, 17, 1000])) + ret
        if kind == "empty":
            return rng.choice(["", "\n", "   \n\n", "\0"])
        if kind == "negative":
            return "{ -6, -1, -1, -1 },\n"
        return "{ 0x6, 0, 0, 0xffff \n"

    def fuzz_bpf(self, deadline: float) -> None:
        path = PROC / "fblock" / "f1"
        good = "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000800 },\n" \
               "{ 0x6, 0, 0, 0x0000ffff },\n{ 0x6, 0, 0, 0x00000000 },\n"
        write_text(path, good)
        while time.monotonic() < deadline:
            program = self.bpf_program()
            before = path.read_text()
            try:
                write_text(path, program)
                self.count("bpf", "accepted", accepted=True)
                # an accepted program reads back in bpfc form, which must load again
                write_text(path, path.read_text())
            except OSError as exc:
                self.count("bpf", errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                           message=True)
                if exc.errno not in (errno.EINVAL, errno.EFBIG):
                    self.problem(f"bpf: unexpected {exc} for {program[:80]!r}")
                if path.read_text() != before:
                    self.problem(f"bpf: refused program changed the loaded one: "
                                 f"{program[:80]!r}")

    # ---- target: settings of the protocol blocks --------------------------------------
    def setting_value(self) -> bytes:
        """A table case, sometimes mangled: NUL inside, no NUL, overlong, junk, repeats."""
        rng = self.rng
        raw = rng.choice(settings.ALL_CASES).encode()
        how = rng.choice(["as is", "as is", "nul", "no nul", "long", "junk", "repeat",
                          "byte"])
        if how == "nul":
            cut = rng.randrange(len(raw) + 1)
            return raw[:cut] + b"\0" + raw[cut:] + b"\0"
        if how == "no nul":
            return raw
        if how == "long":
            key = raw.split(b"=")[0]
            return key + b"=" + b"1" * rng.choice([240, 250, 251, 252, 253, 254, 255, 400]) \
                + b"\0"
        if how == "junk":
            return raw + bytes(rng.randrange(1, 256) for _ in range(rng.randint(1, 6))) + b"\0"
        if how == "repeat":
            return b",".join([raw.split(b"=", 1)[-1]] * rng.randint(2, 10)).join(
                [raw.split(b"=")[0] + b"=", b"\0"])
        if how == "byte" and raw:
            i = rng.randrange(len(raw))
            return raw[:i] + bytes([rng.randrange(1, 256)]) + raw[i + 1:] + b"\0"
        return raw + b"\0"

    def check_setting(self, nl: genl.LanaNetlink, type_: str, name: str,
                      state: dict[str, str], opt: bytes) -> None:
        want = settings.predict(type_, opt)
        path = PROC / "fblock" / name
        payload = genl.string_attr(genl.ATTR_NAME, name) + genl.attr(genl.ATTR_OPT, opt)
        seq = nl.next_seq()
        answer = nl.send_raw(genl.genl_message(nl.family, genl.CMD["set"], payload,
                                               genl.NLM_F_REQUEST | genl.NLM_F_ACK, seq), seq)
        target = f"settings:{type_}"
        shown = settings.readback(path.read_text())
        label = f"set {name} ({type_}) {opt!r}"
        if not answer.answered:
            self.count(target, "no answer")
            self.problem(f"{label}: no answer")
            return
        if answer.errno == 0:
            self.count(target, "OK", accepted=True)
            state.update(want.fields)
        else:
            self.count(target, errno.errorcode.get(answer.errno, str(answer.errno)),
                       message=bool(answer.message))
            if not answer.message:
                self.problem(f"{label}: refused ({answer.errno}) without a message")
        if answer.errno != want.errno or want.message not in answer.message:
            self.problem(f"{label}: expected {errno.errorcode.get(want.errno, 'OK')} "
                         f"{want.message!r}, got {answer.describe()}")
            state.update(want.fields if answer.errno == 0 else {})
        wrong = {k: shown.get(k) for k in state if shown.get(k) != state[k]}
        if wrong:
            self.problem(f"{label}: reads back {wrong}, expected "
                         f"{ {k: state[k] for k in wrong} }")
            state.update({k: v for k, v in shown.items() if k in state})

    def check_fbctl_setting(self, type_: str, name: str, state: dict[str, str],
                            opt: str) -> None:
        want = settings.predict(type_, opt.encode() + b"\0")
        result = subprocess.run(["fbctl", "set", name, opt], capture_output=True, text=True,
                                timeout=20)
        target = f"settings:{type_}:fbctl"
        if result.returncode == 0:
            self.count(target, "exit 0", accepted=True)
            state.update(want.fields)
        else:
            self.count(target, f"exit {result.returncode}", message=bool(result.stderr))
        if (result.returncode == 0) != (want.errno == 0) or \
                (want.errno and (result.returncode != 1 or want.message not in result.stderr)):
            self.problem(f"fbctl set {name} {opt!r}: exit {result.returncode} "
                         f"{result.stderr.strip()!r}, expected {want}")

    def fuzz_settings(self, deadline: float) -> None:
        sh("modprobe -a " + " ".join(b.module for b in settings.BLOCKS.values()))
        names = {t: f"set_{t}" for t in settings.BLOCKS}
        with genl.LanaNetlink(timeout=2.0) as nl:
            states = {}
            for type_, name in names.items():
                answer = nl.request("add", name=name, type_=type_)
                if not answer.ok:
                    self.problem(f"add {name} {type_}: {answer.describe()}")
                    return
                states[type_] = dict(settings.BLOCKS[type_].fresh)
            # every table case on every block once, whatever the time, then mangled ones
            for type_, name in names.items():
                for i, case in enumerate(settings.ALL_CASES):
                    if i % 10 == 3:
                        self.check_fbctl_setting(type_, name, states[type_], case)
                    else:
                        self.check_setting(nl, type_, name, states[type_],
                                           case.encode() + b"\0")
            mangled = 0
            while time.monotonic() < deadline or mangled < 150:
                mangled += 1
                type_ = self.rng.choice(list(names))
                self.check_setting(nl, type_, names[type_], states[type_],
                                   self.setting_value())
            for name in names.values():
                nl.request("rm", name=name)

    # ---- targets: fbctl and vlink ------------------------------------------------------
    def argv(self, tool: str) -> list[str]:
        rng = self.rng
        words = {"fbctl": ["add", "rm", "set", "bind", "unbind", "replace", "subscribe",
                           "unsubscribe", "list", "--drop-priv", "--help", "-h", "help"],
                 "vlink": ["ethernet", "hook", "unhook", "--help", "ethernet", "hook",
                           "unhook", "vb", "nosuchdev", "eth99"]}[tool]
        args = []
        for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 5, 8])):
            r = rng.random()
            if r < 0.45:
                args.append(rng.choice(words))
            elif r < 0.75:
                args.append(self.name())
            elif r < 0.85:
                args.append(rng.choice(TYPE_POOL + OPT_POOL))
            else:
                args.append("".join(chr(rng.choice([rng.randrange(1, 128),
                                                    rng.randrange(128, 0x3000)]))
                                    for _ in range(rng.choice([1, 8, 100, 5000]))))
        if tool == "vlink" and len(args) >= 3 and args[2] in FORBIDDEN_NAMES:
            args[2] = "nosuchdev"
        return args

    def fuzz_tool(self, tool: str, deadline: float) -> None:
        n = 0
        while time.monotonic() < deadline:
            argv = self.argv(tool)
            result = subprocess.run([tool, *argv], capture_output=True, timeout=20)
            n += 1
            if result.returncode == 0:
                self.count(tool, "exit 0", accepted=True)
            elif result.returncode == 1 and result.stderr.strip():
                self.count(tool, "exit 1 with a message", message=True)
            else:
                self.count(tool, f"exit {result.returncode}")
                self.problem(f"{tool} {argv!r}: exit {result.returncode}, "
                             f"stderr {result.stderr[:200]!r}")
            if n % 60 == 0:
                reset_state(self)


# ---- state helpers -------------------------------------------------------------------
def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def write_text(path: Path, text: str) -> None:
    with open(path, "wb", buffering=0) as f:  # one write(): the kernel takes it whole
        f.write(text.encode())


def check_readable(campaign: Campaign) -> bool:
    """Every LANA proc file still reads and fblocks still parses."""
    try:
        parse_fblocks((PROC / "fblocks").read_text())
        for path in [PROC / "ppe", PROC / "types", *(PROC / "fblock").iterdir()]:
            read_or_none(path)
        return True
    except Exception as exc:  # noqa: BLE001 - a parse failure is a finding, not a crash
        campaign.problem(f"proc files unreadable after garbage: {exc}")
        return False


def reset_state(campaign: Campaign) -> None:
    """Back to the base instances and bindings, whatever the fuzz created or unbound."""
    with genl.LanaNetlink() as nl:
        for _ in range(3):
            blocks = parse_fblocks((PROC / "fblocks").read_text())
            by_idp = {b.idp: n for n, b in blocks.items()}
            for name, block in blocks.items():
                for port in block.ports:
                    lower = by_idp.get(port.idp, "")
                    if port.direction == "out" and (name, lower) not in BASE_BINDS:
                        nl.request("unbind", name=name, name2=lower)
                for idp in block.subscriptions:
                    nl.request("unsubscribe", name=name, name2=by_idp.get(idp, ""))
            for name, block in blocks.items():
                if BASE_TYPES.get(name) != block.type:
                    nl.request("rm", name=name)
        blocks = parse_fblocks((PROC / "fblocks").read_text())
        for name, type_ in BASE_TYPES.items():
            if name not in blocks:
                answer = nl.request("add", name=name, type_=type_)
                if not answer.ok:
                    campaign.problem(f"reset: add {name} {type_}: {answer.describe()}")
        for upper, lower in BASE_BINDS:
            answer = nl.request("bind", name=upper, name2=lower)
            if answer.errno not in (0, errno.EEXIST):
                campaign.problem(f"reset: bind {upper} {lower}: {answer.describe()}")
        extra = set(parse_fblocks((PROC / "fblocks").read_text())) - set(BASE_TYPES)
        if extra:
            campaign.problem(f"reset: could not remove {sorted(extra)}")


def setup(engine: str | None = None) -> subprocess.Popen[bytes]:
    """The blocks, `engine` as the engine model (switched at run time: lana.ko may be
    loaded from an earlier campaign in this guest), the veth pair, trafgen flooding va."""
    sh("modprobe -a lana fb_eth fb_fwd fb_tee fb_counter fb_bpf fb_mirror "
       "&& sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "
       "&& { ip link show va > /dev/null 2>&1 || ip link add name va type veth peer name vb; }"
       " && ip link set dev va up && ip link set dev vb up")
    if engine is not None:
        (PROC / "engine").write_text(engine + "\n")
    trafgen = subprocess.Popen(["trafgen", "--dev", "va", "--cpus", "1", "--no-cpu-stats",
                                "--num", "0", FRAME], cwd="/tmp", stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_frames(trafgen)
    return trafgen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="switch to this engine model first (default: as loaded)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    campaign = Campaign(random.Random(args.seed))
    dmesg_before = sh("dmesg")
    trafgen = setup(args.engine)
    engine = current_engine()
    reset_state(campaign)
    counted_before = int((PROC / "fblock" / "c1").read_text().split()[0])
    seconds: dict[str, float] = {}
    for target, share in SHARES.items():
        started = time.monotonic()
        deadline = started + args.seconds * share
        if target == "netlink":
            campaign.fuzz_netlink(deadline)
        elif target == "procfs":
            campaign.fuzz_procfs(deadline)
        elif target == "bpf":
            campaign.fuzz_bpf(deadline)
        elif target == "settings":
            campaign.fuzz_settings(deadline)
        else:
            campaign.fuzz_tool(target, deadline)
        reset_state(campaign)
        seconds[target] = round(time.monotonic() - started, 1)
    counted = int((PROC / "fblock" / "c1").read_text().split()[0]) - counted_before
    stop(trafgen)
    dmesg = sh("dmesg")
    new_dmesg = dmesg[len(dmesg_before):] if dmesg.startswith(dmesg_before) else dmesg
    procfs_targets = [t for t in campaign.tried if t.startswith("procfs:")]
    summary: dict[str, Any] = {
        "seed": args.seed,
        "seconds": seconds,
        "engine": engine,
        "tried": dict(campaign.tried),
        "tried_procfs_total": sum(campaign.tried[t] for t in procfs_targets),
        "accepted": dict(campaign.accepted),
        "rejected": dict(campaign.rejected),
        "rejected_with_errno_or_message": dict(campaign.with_message),
        "no_answer": dict(campaign.no_answer),
        "netlink_refusals_with_extack_message": campaign.with_extack["netlink"],
        "outcomes": {t: dict(c.most_common(12)) for t, c in campaign.outcomes.items()},
        "problems": campaign.problems,
        "frames_through_bpf_to_counter": counted,
        "kernel_trouble": kernel_trouble(new_dmesg)[:40],
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({"tried": summary["tried"], "problems": len(campaign.problems)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
