"""Benchmark: memory and CPU per trainee on an Atelier hub, the inputs of ``docs/capacity.md``.

Run as root: ``/opt/atelier/env/bin/python benchmarks/bench_capacity.py [--trainees 6]``.

For ``--trainees`` trainees, one after the other: log in, press Start, open a kernel and run the
sample workbook code (what ``benchmarks/bench_hub.py`` measures as "an active trainee"). Then:

- memory per active trainee: PSS of every process of the trainee's account (server + kernel);
- CPU to start and run: user+system CPU seconds of those processes (children included);
- CPU while idle: CPU used by all trainees' processes over ``--idle`` seconds, per trainee;
- the hub and proxy themselves: PSS with that many trainees (the hub: ``atelier start``,
  JupyterHub and the server template trainees' servers are forked from).

It prints trainees per machine (memory) and server starts per minute (CPU) for common sizes.
Reuses ``bench_hub.py``'s hub and client; accounts (``c<4 letters>-``) and folders are removed.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_hub as bh

TICKS = os.sysconf("SC_CLK_TCK")


def account_cpu(uid: int) -> float:
    """CPU seconds (user+system, with waited-for children) of every live process of ``uid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue
    return total / TICKS


def pid_pss(pid: int) -> float:
    """PSS in MiB of one process."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hub_side_pss(hub) -> float:
    """PSS of what runs for the hub itself: ``atelier start``, JupyterHub, the server template."""
    hub_pid = int((hub.state_dir / "jupyterhub.pid").read_text().strip())
    pids = [hub.process.pid, hub_pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == hub_pid and b"--template" in argv:
                pids.append(int(entry.name))
    return sum(pid_pss(pid) for pid in pids)


def main() -> None:
    import pwd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainees", type=int, default=6)
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle measurement")
    args = parser.parse_args()
    prefix = "c" + "".join(random.choices(string.ascii_lowercase, k=4)) + "-"
    root = Path(tempfile.mkdtemp(prefix="atelier-capacity-"))
    root.chmod(0o755)
    try:
        token = secrets.token_hex(16)
        hub, usernames = bh.atelier_with_trainees(root, prefix, args.trainees, "cap", token)
        bh.stop_hub(hub)
        hub = bh.start_atelier_again(hub, root)
        uids = {u: pwd.getpwnam(f"{prefix}{u}").pw_uid for u in usernames}
        cpu_start, memory = [], []
        for username in usernames:
            session = hub.login(username)
            ready, _ = hub.press_start_and_wait(session, username)
            assert ready, username
            bh.run_in_kernel(hub, session, username, bh.SAMPLE_CODE)
        time.sleep(2)
        for username in usernames:
            memory.append(bh.account_memory(f"{prefix}{username}")[0])
            cpu_start.append(account_cpu(uids[username]))
        before = sum(account_cpu(uid) for uid in uids.values())
        time.sleep(args.idle)
        idle = (sum(account_cpu(uid) for uid in uids.values()) - before) / args.idle
        hub_pss = hub_side_pss(hub)
        proxy_pid = int((hub.state_dir / "proxy.pid").read_text().strip())
        proxy_pss = pid_pss(proxy_pid)
        hub.stop_all(usernames)
        bh.stop_hub(hub)
        report(args, memory, cpu_start, idle, hub_pss, proxy_pss)
    finally:
        bh.cleanup(prefix, root)


def report(args, memory, cpu_start, idle, hub_pss, proxy_pss) -> None:
    pss = statistics.median(memory)
    cpu = statistics.median(cpu_start)
    idle_per = idle / args.trainees
    print(f"trainees measured: {args.trainees} (2 cores, {os.cpu_count()} CPUs seen)")
    print(f"memory per active trainee, PSS median (MiB): {pss:.1f}  (max {max(memory):.1f})")
    print(f"CPU to start a server and run the sample code, median (s): {cpu:.2f}")
    print(f"CPU while idle, per trainee (% of one core): {100 * idle_per:.2f}")
    print(f"hub PSS (MiB, with its server template): {hub_pss:.1f}")
    print(f"proxy PSS (MiB): {proxy_pss:.1f}")
    print(f"memory per trainee, each (MiB): {', '.join(f'{m:.1f}' for m in memory)}")
    print()
    print("trainees per machine (docs/capacity.md: 2 GiB + hub and proxy kept free, 1.5 x the")
    print("measured PSS per trainee for workbook data; starts per minute the cores absorb)")
    per = 1.5 * pss
    for gib, cores in ((8, 2), (16, 4), (24, 2), (32, 8), (64, 16)):
        by_memory = int((gib * 1024 - 2048 - hub_pss - proxy_pss) // per)
        starts = int(cores * 60 // cpu)
        print(f"  {gib:3d} GiB, {cores:2d} cores: {by_memory:4d} trainees; "
              f"{starts:4d} server starts per minute")  # fmt: skip


if __name__ == "__main__":
    main()
