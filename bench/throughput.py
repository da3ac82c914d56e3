"""Throughput of `digest send` over real SMTP, against the wire's own limit.

    python bench/throughput.py --subscribers 100000 --json bench/results/100k.json

It generates a project with N synthetic subscribers, starts Postfix's `smtp-sink` on loopback,
runs the real `python -m digest send --json` against it and times it; then, in the same run,
`smtp-source` pushes messages of the same average size over the same number of reused
connections into the same sink. It prints digests per second for both, their ratio and the
peak RSS of the digest process. `smtp-sink` and `smtp-source` come from Debian's `postfix`
package, fetched with `apt-get download` and unpacked with `dpkg -x` into the cache folder:
Postfix is never installed or started.

With `--state postgresql --hosts H` the same project is then sent over a throwaway PostgreSQL
server on this machine, by one host and by H hosts at once, each with its own smtp-sink
(`multihost.py`), and compared with the SQLite run.

Exit codes: 0 done, 1 the digest run failed or the sink did not get every message, 3 the
Postfix tools could not be had (no apt, no network).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_CACHE = BENCH / ".cache"
EXIT_FAILED, EXIT_NO_TOOLS = 1, 3
SINK_BACKLOG = "1000"
SAMPLE = 300  # subscribers of the project whose dry run sizes the first wire runs


class BenchError(Exception):
    """The benchmark could not run; the message says why and what to do."""

    exit_code = EXIT_FAILED


class ToolsUnavailable(BenchError):
    exit_code = EXIT_NO_TOOLS


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- smtp-sink and smtp-source from Debian's postfix package ---------------------------------


@dataclass
class Tools:
    sink: Path
    source: Path
    env: dict[str, str]
    version: str


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _download_postfix(folder: Path) -> Path:
    """`apt-get download postfix` into `folder`; updates the package lists once if needed."""
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise ToolsUnavailable(
                f"'{tool}' not found: the benchmark fetches smtp-sink and smtp-source from "
                "Debian's postfix package (apt-get download postfix; dpkg -x)",
            )
    result = _run(["apt-get", "download", "postfix"], cwd=folder)
    if result.returncode != 0:
        log("apt-get download postfix failed; updating the package lists and trying again")
        update = _run(["apt-get", "update", "-qq"])
        if update.returncode != 0:
            raise ToolsUnavailable(
                "apt-get download postfix failed, and so did apt-get update "
                f"(root is needed for it):\n{_tail(result.stderr)}\n{_tail(update.stderr)}"
            )
        result = _run(["apt-get", "download", "postfix"], cwd=folder)
        if result.returncode != 0:
            raise ToolsUnavailable(f"apt-get download postfix failed:\n{_tail(result.stderr)}")
    debs = sorted(folder.glob("postfix_*.deb"))
    if not debs:
        raise ToolsUnavailable(f"apt-get download postfix left no postfix_*.deb in {folder}")
    return debs[-1]


def ensure_tools(cache: Path) -> Tools:
    """smtp-sink and smtp-source unpacked in `cache/postfix`, fetched the first time."""
    root = cache / "postfix"
    sink, source = root / "usr/sbin/smtp-sink", root / "usr/sbin/smtp-source"
    if not (sink.is_file() and source.is_file()):
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="postfix-", dir=cache))
        try:
            log(f"fetching smtp-sink and smtp-source (apt-get download postfix) into {cache}")
            deb = _download_postfix(work)
            unpacked = work / "root"
            result = _run(["dpkg", "-x", str(deb), str(unpacked)])
            if result.returncode != 0:
                raise ToolsUnavailable(f"dpkg -x {deb.name} failed:\n{_tail(result.stderr)}")
            (unpacked / "VERSION").write_text(deb.name + "\n")
            try:  # atomic, so two benchmarks starting at once do not see half a folder
                unpacked.rename(root)
            except OSError:
                if not sink.is_file():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    libs = root / "usr/lib/postfix"
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(libs), os.environ.get("LD_LIBRARY_PATH", "")) if p
    )
    if shutil.which("ldd"):
        for binary in (sink, source):
            linked = subprocess.run(
                ["ldd", str(binary)], env=env, capture_output=True, text=True, check=False
            )
            missing = [line.strip() for line in linked.stdout.splitlines() if "not found" in line]
            if missing:
                raise ToolsUnavailable(
                    f"{binary} needs libraries that are missing: {', '.join(missing)} "
                    f"(delete {root} to fetch the package again)"
                )
    version_file = root / "VERSION"
    version = version_file.read_text().strip() if version_file.is_file() else "postfix"
    return Tools(sink, source, env, version)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """`smtp-sink -c` on 127.0.0.1: throws messages away and counts them as they arrive."""

    def __init__(self, tools: Tools, port: int) -> None:
        self.port = port
        self.count = 0
        self.first_at: float | None = None  # first message after watch(), and the last one
        self.last_at: float | None = None
        self.base = 0
        self.lock = threading.Lock()
        args = [str(tools.sink), "-c"]
        if os.geteuid() == 0:  # smtp-sink refuses to run as root without a user to switch to
            args += ["-u", "nobody"]
        args += [f"127.0.0.1:{port}", SINK_BACKLOG]
        self.process = subprocess.Popen(
            args, env=tools.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=pinned("peers"),
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True, name="sink-counter")
        self.reader.start()
        self._wait_until_listening()

    def _read(self) -> None:
        assert self.process.stdout is not None
        fd, pending = self.process.stdout.fileno(), b""
        while chunk := os.read(fd, 65536):
            # "sess=2 quit=1 mesg=1234\r" once for every message, session end and QUIT
            pending += chunk
            *records, pending = pending.split(b"\r")
            for record in reversed(records):
                _, found, value = record.rpartition(b"mesg=")
                if found:
                    self._update(int(value))
                    break

    def _update(self, count: int) -> None:
        now = time.perf_counter()
        with self.lock:
            if count != self.count:
                self.count = count
                if count > self.base:
                    if self.first_at is None:
                        self.first_at = now
                    self.last_at = now

    def watch(self) -> int:
        """Start timing arrivals from now on; returns the count so far."""
        with self.lock:
            self.base, self.first_at, self.last_at = self.count, None, None
            return self.count

    def wait_for(self, count: int, timeout: float = 5.0) -> int:
        """The count once it reaches `count` (the counter thread may lag a moment)."""
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise BenchError(f"smtp-sink exited at start ({self.process.returncode}): {error}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"smtp-sink did not listen on 127.0.0.1:{self.port} within 10 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants (digest may start worker
    processes: the machine has to hold them all at once), every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb = 0  # the largest sum seen
        self.peak_processes = 0
        self.max_process_kb = 0  # the largest single process (its own high-water mark)
        self.process_kb: dict[int, int] = {}  # each process's high-water mark, by pid
        self.roles: dict[int, str] = {}  # send | worker | resource tracker, by pid
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self.thread.start()

    def _tree(self) -> list[int]:
        pids, found = [self.pid], []
        while pids:
            pid = pids.pop()
            found.append(pid)
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError, ValueError):  # the process just ended
                    pids.extend(int(c) for c in children.read_text().split())
        return found

    def _run(self) -> None:
        while not self.done.wait(self.interval):
            total, count = 0, 0
            for pid in self._tree():
                fields = _status_kb(pid, ("VmRSS", "VmHWM"))
                if fields:
                    total += fields.get("VmRSS", 0)
                    self.max_process_kb = max(self.max_process_kb, fields.get("VmHWM", 0))
                    self.process_kb[pid] = max(self.process_kb.get(pid, 0), fields.get("VmHWM", 0))
                    # read again each time: a process just forked shows its parent's command
                    # (and memory) until it execs, as the resource tracker does
                    self.roles[pid] = _role(pid, self.pid)
                    count += 1
            self.peak_kb = max(self.peak_kb, total)
            self.peak_processes = max(self.peak_processes, count)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def _role(pid: int, parent: int) -> str:
    """What a process of the tree is: `digest send` itself, a worker, or multiprocessing's
    resource tracker."""
    if pid == parent:
        return "send"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return "resource tracker" if b"resource_tracker" in command else "worker"


def _status_kb(pid: int, names: tuple[str, ...]) -> dict[str, int]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    result = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in names:
            result[name] = int(value.split()[0])
    return result


# -- the two measured runs ------------------------------------------------------------------


@dataclass
class DigestRun:
    seconds: float
    exit_code: int
    cpu_seconds: float
    peak_rss_mb: float  # the process and its workers together, at their largest
    max_process_rss_mb: float  # the largest single process
    process_peaks_mb: list[float]  # each process's own high-water mark, largest first
    process_roles: list[str]  # what each of those processes is: send, worker, resource tracker
    processes: int  # the digest process and its workers, at most at once
    sent: int
    failed: int
    skipped: int
    sink_received: int
    first_message_s: float | None  # from start to the first message at the sink
    steady_per_s: float | None  # between the first and the last message at the sink
    avg_message_bytes: int
    avg_items: float
    max_items: int
    picked_up: int
    report: dict[str, Any] = field(repr=False, default_factory=dict)


def sample_message_bytes(config: Path, workdir: Path) -> int:
    """The average message size of a small project like the measured one, from `digest send
    --dry-run`: the size smtp-source uses before the measured run, which is yet to tell."""
    result = subprocess.run(
        [sys.executable, "-m", "digest", "send", "--config", str(config), "--dry-run", "--json"],
        cwd=workdir, env=_digest_env(), capture_output=True, text=True,
    )  # fmt: skip
    try:
        report = _summary(result.stdout)
        return int(report["messages"]["bytes"] / report["would_send"])
    except (ValueError, KeyError, ZeroDivisionError) as exc:
        raise BenchError(
            f"the sample dry run exited {result.returncode}:\n{_tail(result.stderr)}"
        ) from exc


def _digest_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update({"DIGEST_BENCH_TOKEN_SECRET": "bench-secret", "NO_COLOR": "1", "COLUMNS": "200"})
    return env


# `--pin`: the sending host on the first CPU, what it talks to (smtp-sink, PostgreSQL) on the
# others, as if the relay and the database were machines of their own. Empty: no pinning.
PINNED: dict[str, set[int]] = {}


def pinned(role: str) -> Callable[[], None] | None:
    """A `preexec_fn` putting a new process on the CPUs of `role` ("sender" or "peers")."""
    cpus = PINNED.get(role)
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def pin_tree(pid: int, role: str) -> None:
    """Put a running process and its children on the CPUs of `role` (new children inherit)."""
    cpus = PINNED.get(role)
    if not cpus:
        return
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if int(entry.name) == pid or parent == pid:
                os.sched_setaffinity(int(entry.name), cpus)
        except (ValueError, OSError):
            continue


def run_digest(
    config: Path, sink: Sink, subscribers: int, profile: Path | None, workdir: Path
) -> DigestRun:
    """`python -m digest send --json` as a subprocess, timed, its memory sampled."""
    env = _digest_env()
    command = [sys.executable, "-m", "digest", "send", "--config", str(config), "--json"]
    if profile is not None:
        command = [*py_spy_command(profile), *command]
    out_path, err_path = workdir / "send.json", workdir / "send.err"
    base = sink.watch()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=out, stderr=err, preexec_fn=pinned("sender")
        )
        done = threading.Event()
        progress = threading.Thread(
            target=_report_progress, args=(sink, base, subscribers, started, done), daemon=True
        )
        progress.start()
        memory = TreeMemory(process.pid)
        try:
            # wait4: this child's rusage (with the workers it waited for), not the sink's
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
        except BaseException:  # Ctrl-C: do not leave digest sending into a stopped sink
            process.terminate()
            process.wait()
            raise
        finally:
            done.set()
            memory.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    try:
        report = _summary(out_path.read_text(errors="replace"))
    except ValueError as exc:
        raise BenchError(
            f"digest send exited {process.returncode} without its JSON summary:\n{_tail(stderr)}"
        ) from exc
    sent = int(report.get("sent", 0))
    received = sink.wait_for(base + sent) - base
    first_at, last_at = sink.first_at, sink.last_at
    steady = None
    if first_at is not None and last_at is not None and last_at > first_at and received > 1:
        steady = (received - 1) / (last_at - first_at)
    return DigestRun(
        seconds=seconds,
        exit_code=process.returncode,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        # Sampled from /proc, not wait4's ru_maxrss: that one also holds the high-water mark
        # this script had when it started digest (the child is a copy of it until exec), so
        # a large generated list showed up as a gigabyte "in one process" of digest.
        peak_rss_mb=memory.peak_kb / 1024,
        max_process_rss_mb=memory.max_process_kb / 1024,
        process_peaks_mb=sorted(
            (round(kb / 1024, 1) for kb in memory.process_kb.values()), reverse=True
        ),  # fmt: skip
        process_roles=[
            memory.roles.get(pid, "?")
            for pid, _ in sorted(memory.process_kb.items(), key=lambda p: -p[1])
        ],
        processes=memory.peak_processes,
        sent=sent,
        failed=int(report.get("failed", 0)),
        skipped=int(report.get("skipped", 0)),
        sink_received=received,
        first_message_s=(first_at - started) if first_at is not None else None,
        steady_per_s=steady,
        # over every message (the per-subscriber rows hold only the first 10,000)
        avg_message_bytes=round(report["messages"]["bytes"] / sent) if sent else 0,
        avg_items=report["messages"]["items"] / sent if sent else 0.0,
        max_items=report["messages"]["max_items"],
        picked_up=int(report.get("picked_up", {}).get("new", 0)),
        report={k: v for k, v in report.items() if k != "subscribers"},
    )


def _summary(output: str) -> dict[str, Any]:
    """digest's JSON summary; py-spy, when profiling, writes lines of its own around it."""
    start, end = output.find("{"), output.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the output")
    return json.loads(output[start : end + 1])


def _report_progress(
    sink: Sink, base: int, total: int, started: float, done: threading.Event
) -> None:
    """A line every 15 seconds on long runs, so a slow run is not mistaken for a stuck one."""
    while not done.wait(15):
        arrived = sink.count - base
        elapsed = time.perf_counter() - started
        log(f"digest send: {arrived:,}/{total:,} at the sink after {elapsed:.0f} s")


def py_spy_command(output: Path) -> list[str]:
    """py-spy sampling digest and its worker processes into collapsed stacks (`--format raw`)."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise BenchError("--profile needs py-spy: pip install py-spy")
    return [found, "record", "--subprocesses", "--rate", "50", "--format", "raw",
            "--output", str(output), "--"]  # fmt: skip


def summarise_profile(path: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """The functions with the most samples on their own ("self"), and digest's functions with
    the most samples with what they call ("total": the stages), as percentages of all samples
    of every thread and process."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_function(f) for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        for name in {f for f in frames if "(digest/" in f}:
            total[name] = total.get(name, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n

    def ranked(table: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / samples, 1)) for name, n in best]

    return {"self": ranked(own), "total": ranked(total)} if samples else {"self": [], "total": []}


def _function(frame: str) -> str:
    """'send (digest/pipeline.py:298)' -> 'send (digest/pipeline.py)'."""
    head, sep, tail = frame.rpartition(":")
    return f"{head})" if sep and tail.rstrip(")").isdigit() else frame


@dataclass
class WireRun:
    messages: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def run_wire(
    tools: Tools,
    sink: Sink,
    connections: int,
    size: int,
    limit: int,
    min_seconds: float,
    runs: int,
) -> list[WireRun]:
    """smtp-source over `connections` reused connections (-d -s), messages of `size` bytes,
    `runs` times: as many messages as take `min_seconds` (at most `limit`; a short probe sizes
    the run). The machine is shared, so one run alone can be unlucky."""
    count = min(limit, 2000)
    while True:
        seconds = _source(tools, sink, connections, size, count)
        if seconds >= min_seconds or count >= limit:
            break
        count = min(limit, math.ceil(count * 1.2 * min_seconds / max(seconds, 0.01)))
    done = [WireRun(count, seconds)]
    while len(done) < runs:
        done.append(WireRun(count, _source(tools, sink, connections, size, count)))
    return done


def _source(tools: Tools, sink: Sink, connections: int, size: int, count: int) -> float:
    """Seconds smtp-source takes to send `count` messages, each counted by the sink."""
    before = sink.count
    command = [
        str(tools.source), "-d", "-s", str(connections), "-m", str(count), "-l", str(size),
        "-f", "digest@example.org", "-t", "sink@example.org", f"127.0.0.1:{sink.port}",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(
        command, env=tools.env, capture_output=True, text=True, preexec_fn=pinned("sender")
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"smtp-source exited {result.returncode}:\n{_tail(result.stderr)}")
    arrived = sink.wait_for(before + count) - before
    if arrived != count:
        raise BenchError(f"smtp-source sent {count} messages, the sink counted {arrived}")
    return seconds


# -- the report ------------------------------------------------------------------------------


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far, by kind (user, nice, system, idle, iowait, irq, softirq,
    steal), from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time the host gave to other machines between two `cpu_ticks` (on a
    shared virtual machine it slows both runs, and not always alike)."""
    if before is None or after is None:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(spent[7] / sum(spent), 3) if sum(spent) else None


def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus": usable,
        "cpu_model": model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and whether digest/ had changes not committed yet."""
    if shutil.which("git") is None:
        return {"commit": None, "uncommitted_changes": None}
    head = _run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT)
    changes = _run(["git", "status", "--porcelain", "--", "digest"], cwd=ROOT)
    if head.returncode != 0:
        return {"commit": None, "uncommitted_changes": None}
    return {"commit": head.stdout.strip(), "uncommitted_changes": bool(changes.stdout.strip())}


def _pinning(pinned: dict[str, list[int]] | None) -> str:
    if not pinned:
        return ""
    return (f"; digest send and smtp-source on CPU {pinned['sender']}, smtp-sink and "
            f"PostgreSQL on CPU {pinned['peers']} (--pin)")  # fmt: skip


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result["machine"]
    table = Table(title="digest send vs smtp-source, same sink, same connections",
                  title_justify="left", show_header=False)  # fmt: skip
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("machine", f"{m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}, "
                    f"load {m['load_average_at_start'][0]} at start"
                    + _pinning(result.get("pinned"))),
        ("subscribers", f"{result['subscribers']:,} ({result['profiles']:,} distinct profiles; "
                        f"languages: {result.get('languages', 'en')})"),
        ("connections", str(result["connections"])),
        ("items", f"{result['items_total']} picked up; {result['avg_items_per_digest']:.1f} "
                  f"per digest on average, {result['max_items_per_digest']} at most"),
        ("avg message", f"{result['avg_message_bytes']:,} bytes"),
        ("digest send", f"{result['digests_per_s']:,.0f} digests/s: {result['sent']:,} in "
                        f"{result['digest_seconds']:.1f} s, {result['cpu_seconds']:.1f} s CPU"),
        ("  first message", _seconds(result["first_message_s"])),
        ("  steady rate", _rate(result["steady_digests_per_s"])),
        ("smtp-source", f"{result['wire_per_s']:,.0f} messages/s: "
                        f"{result['wire_messages']:,} in {result['wire_seconds']:.1f} s "
                        f"(the median of {_runs(result['wire_runs_before_per_s'])} before "
                        f"and {_runs(result['wire_runs_after_per_s'])} after)"),
        ("ratio", f"{result['ratio']:.2f} (goal: at least 0.5)"),
        ("host steal", _steal(result)),
        ("peak RSS", f"{result['peak_rss_mb']:.0f} MB (goal: under 300 MB), "
                     f"{_processes(result)}"),
        ("total", f"{result['total_seconds']:.1f} s for the whole benchmark"),
    ]  # fmt: skip
    for name, value in rows + _postgresql_rows(result):
        table.add_row(name, value)
    console = Console(width=120)
    console.print(table)
    if result.get("profile"):
        hot = Table(title="py-spy: % of all samples (every thread and process)",
                    title_justify="left")  # fmt: skip
        hot.add_column("self", justify="right")
        hot.add_column("function")
        hot.add_column("total", justify="right")
        hot.add_column("function (with what it calls)")
        own, total = result["profile"]["self"], result["profile"]["total"]
        for index in range(max(len(own), len(total))):
            a = own[index] if index < len(own) else ("", "")
            b = total[index] if index < len(total) else ("", "")
            hot.add_row(str(a[1]), a[0], str(b[1]), b[0])
        console.print(hot)


def _postgresql_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    shared = result.get("postgresql")
    if not shared:
        return []
    rows = []
    for label, run in shared.items():
        if not isinstance(run, dict):
            continue
        rows.append((label.replace("_", " "),
                     f"{run['digests_per_s']:,.0f} digests/s: {run['sent']:,} in "
                     f"{run['seconds']:.1f} s (per host {run['per_host_sent']}), first message "
                     f"{_seconds(run['first_message_s'])[6:]}, {run['peak_rss_mb']:.0f} MB, "
                     f"{run['rows_written_per_message']} rows and "
                     f"{run['commits_per_message']} commits per message; CPU "
                     f"{run['cpu_ms_per_message']:.2f} ms per message, of which the server "
                     f"{run['server_cpu_ms_per_message']:.2f}"))  # fmt: skip
    rows.append(("postgresql/sqlite", f"{shared['postgresql_vs_sqlite']:.2f} for one host "
                                      "(goal: at least 0.85); SQLite's CPU "
                                      f"{shared['sqlite_cpu_ms_per_message']:.2f} ms per "
                                      "message"))  # fmt: skip
    return rows


def _runs(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates) + " messages/s"


def _processes(result: dict[str, Any]) -> str:
    if result["processes"] <= 1:
        return "one process"
    each = ", ".join(
        f"{role} {mb:.0f}"
        for mb, role in zip(result["process_peaks_mb"], result["process_roles"], strict=True)
    )
    return (f"{result['processes']} processes together; the largest "
            f"{result['max_process_rss_mb']:.0f} MB (each at its peak: {each} MB)")  # fmt: skip


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"after {value:.1f} s (start-up, pickup, first render)"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} digests/s from the first message to the last"


# -- the command -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Throughput of `digest send` over SMTP against smtp-source on loopback.",
        epilog="Example: python bench/throughput.py --subscribers 20000 --json out.json",
    )
    parser.add_argument(
        "--subscribers",
        type=int,
        default=100_000,
        metavar="N",
        help="synthetic subscribers, one digest each (default 100000)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=2,
        metavar="C",
        help="SMTP connections for both runs (default 2)",
    )
    parser.add_argument(
        "--items-per-digest",
        type=float,
        default=20.0,
        metavar="K",
        help="items in the average digest; sets how many items are generated",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        metavar="DIR",
        help="where the postfix tools are kept (default bench/.cache)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated project (settings, items, subscribers, state)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the generated data")
    parser.add_argument(
        "--mixed-languages",
        nargs="?",
        const="by-region",
        choices=("by-region", "independent"),
        help="readers in English, Spanish and French, each also taking English news: "
        "by-region (the default) as the regions they follow make likely, or independent "
        "(5:4:1 whatever they follow)",
    )
    parser.add_argument(
        "--wire-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="run smtp-source for at least this long, up to N messages",
    )
    parser.add_argument(
        "--wire-runs",
        type=int,
        default=3,
        metavar="R",
        help="smtp-source runs on each side of the digest run; the median of all counts "
        "(default 3)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="sample digest and its workers with py-spy, write the collapsed "
        "stacks here and print the hot spots (the figures are then not "
        "comparable)",
    )
    parser.add_argument(
        "--state",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: also send over a throwaway PostgreSQL server, with one host and "
        "with --hosts hosts (each its own smtp-sink), after the SQLite run",
    )
    parser.add_argument(
        "--hosts", type=int, default=2, metavar="H", help="hosts for --state postgresql"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="digest send and smtp-source on the first CPU, smtp-sink and PostgreSQL on the "
        "others: as if the relay and the database had machines of their own",
    )
    args = parser.parse_args(argv)
    if args.hosts < 1:
        parser.error("--hosts must be at least 1")
    if args.subscribers < 1:
        parser.error("--subscribers must be at least 1")
    if args.wire_runs < 1:
        parser.error("--wire-runs must be at least 1")
    if not 1 <= args.connections <= 64:
        parser.error("--connections must be 1-64 (digest's own limit)")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least 2 CPUs")
        PINNED.update(sender={cpus[0]}, peers=set(cpus[1:]))
    return args


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    machine = machine_info()
    tools = ensure_tools(args.cache.resolve())
    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    sink = None
    try:
        sys.path.insert(0, str(ROOT))  # the generator tags items with this checkout's digest
        from generate import build_project

        port = free_port()
        log(f"generating {args.subscribers:,} subscribers and items in {workdir}")
        generating = time.perf_counter()
        project = _in_child(
            build_project, workdir / "project", args.subscribers, port, args.connections,
            items_per_digest=args.items_per_digest, seed=args.seed,
            mixed_languages=args.mixed_languages,
        )  # fmt: skip
        log(
            f"generated in {time.perf_counter() - generating:.1f} s: {project.items_total} items "
            f"({project.items_generated} generated), about "
            f"{project.expected_items_per_digest:.1f} per digest expected"
        )
        sample = build_project(
            workdir / "sample", SAMPLE, port, args.connections,
            items_per_digest=args.items_per_digest, seed=args.seed,
        )  # fmt: skip
        guess = sample_message_bytes(sample.config, workdir)
        sink = Sink(tools, port)
        log(f"smtp-sink on 127.0.0.1:{port}; smtp-source first, with {guess:,}-byte messages "
            f"(the average of a {SAMPLE}-subscriber dry run)")  # fmt: skip
        ticks_before_wire = cpu_ticks()
        wire_before = run_wire(
            tools, sink, args.connections, guess, args.subscribers,
            args.wire_seconds, args.wire_runs,
        )  # fmt: skip
        log(f"running digest send ({args.connections} connections)")
        ticks = cpu_ticks()
        digest = run_digest(
            project.config, sink, args.subscribers,
            args.profile.resolve() if args.profile else None, workdir,
        )  # fmt: skip
        ticks_after_digest = cpu_ticks()
        if digest.exit_code != 0 or digest.sent == 0:
            stderr = (workdir / "send.err").read_text(errors="replace")
            raise BenchError(
                f"digest send exited {digest.exit_code} (sent {digest.sent}, failed "
                f"{digest.failed}, aborted: {digest.report.get('aborted')}):\n{_tail(stderr)}"
            )
        log(
            f"digest send: {digest.sent:,} sent in {digest.seconds:.1f} s; "
            f"smtp-source with {digest.avg_message_bytes:,}-byte messages"
        )
        shared = None
        if args.state == "postgresql":
            import multihost

            shared = multihost.measure(tools, project.config, args.hosts, workdir)
        wire_after = run_wire(
            tools, sink, args.connections, digest.avg_message_bytes, args.subscribers,
            args.wire_seconds, args.wire_runs,
        )  # fmt: skip
        ticks_after_wire = cpu_ticks()
        # Both sides of the digest run: the host's share of the CPU changes from minute to
        # minute, and the wire measured on one side only can come out high or low.
        wire_runs = wire_before + wire_after
        wire = sorted(wire_runs, key=lambda r: r.per_s)[len(wire_runs) // 2]  # the median
        digests_per_s = digest.sent / digest.seconds
        result = {
            "subscribers": args.subscribers,
            "connections": args.connections,
            "digests_per_s": round(digests_per_s, 1),
            "wire_per_s": round(wire.per_s, 1),
            "ratio": round(digests_per_s / wire.per_s, 3) if wire.per_s else 0.0,
            "peak_rss_mb": round(digest.peak_rss_mb, 1),
            "max_process_rss_mb": round(digest.max_process_rss_mb, 1),
            "process_peaks_mb": digest.process_peaks_mb,
            "process_roles": digest.process_roles,
            "processes": digest.processes,
            "avg_message_bytes": digest.avg_message_bytes,
            "sent": digest.sent,
            "failed": digest.failed,
            "skipped": digest.skipped,
            "sink_received": digest.sink_received,
            "digest_seconds": round(digest.seconds, 2),
            "cpu_seconds": round(digest.cpu_seconds, 2),
            "first_message_s": _round(digest.first_message_s, 2),
            "steady_digests_per_s": _round(digest.steady_per_s, 1),
            "wire_messages": wire.messages,
            "wire_seconds": round(wire.seconds, 2),
            "wire_runs_per_s": [round(r.per_s, 1) for r in wire_runs],
            "wire_runs_before_per_s": [round(r.per_s, 1) for r in wire_before],
            "wire_runs_after_per_s": [round(r.per_s, 1) for r in wire_after],
            "wire_message_bytes_before": guess,
            "steal_share_digest": steal_share(ticks, ticks_after_digest),
            "steal_share_wire_before": steal_share(ticks_before_wire, ticks),
            "steal_share_wire_after": steal_share(ticks_after_digest, ticks_after_wire),
            "avg_items_per_digest": round(digest.avg_items, 2),
            "max_items_per_digest": digest.max_items,
            "items_total": project.items_total,
            "items_generated": project.items_generated,
            "profiles": project.profiles,
            "languages": args.mixed_languages or "en",
            "profile": summarise_profile(args.profile) if args.profile else None,
            "postfix": tools.version,
            "digest_version": code_version(),
            "machine": machine,
            "pinned": {role: sorted(cpus) for role, cpus in PINNED.items()},
            "total_seconds": round(time.perf_counter() - began, 1),
        }
        if shared is not None:
            one = shared["postgresql_1_host"]["digests_per_s"]
            shared["postgresql_vs_sqlite"] = round(one / digests_per_s, 3)
            shared["sqlite_cpu_ms_per_message"] = round(1000 * digest.cpu_seconds / digest.sent, 3)
            result["postgresql"] = shared
        return result
    finally:
        if sink is not None:
            sink.stop()
        if args.keep:
            log(f"kept the project, its state and digest's JSON summary in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _in_child(function: Any, *args: Any, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)` in a process of its own. Generating a million subscribers
    takes about a gigabyte, which this process would keep as its high-water mark, and that
    mark would be the first thing the kernel counts against digest when it starts (see
    `run_digest`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args, **kwargs).result()


def _steal(result: dict[str, Any]) -> str:
    shares = [result.get(f"steal_share_{phase}") for phase in ("wire_before", "digest",
                                                               "wire_after")]  # fmt: skip
    if None in shares:
        return "not known (no /proc/stat)"
    before, digest, after = shares
    return (f"{before:.0%} of CPU time during smtp-source before, {digest:.0%} during digest "
            f"send, {after:.0%} during smtp-source after (taken by the host for other "
            "machines)")  # fmt: skip


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = benchmark(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        log(f"figures written to {args.json}")
    if result["sink_received"] != result["sent"] or result["failed"]:
        print(
            f"error: digest reported {result['sent']} sent and {result['failed']} failed, "
            f"the sink received {result['sink_received']}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
