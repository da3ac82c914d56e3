"""`bench/throughput.py --state postgresql --hosts H`: the same project sent over a PostgreSQL
state, by one host and then by H hosts at once, each `digest send` with its own smtp-sink.

The PostgreSQL server is a throwaway cluster on this machine (Debian's server binaries, as
the tests start it: tests/postgres.py), with its default durability (fsync on); digest itself
turns synchronous commits off for a send's bookkeeping (see `State.relax_durability`). Each
measured run gets a new empty database, so every subscriber has a digest to send.

A "host" here is a process tree of its own on this machine: its own settings file (its own
relay: the sink's port), the same subscribers, items and database. Two hosts on two cores
cannot beat one; what the figures show is whether the database is the bottleneck.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import throughput as tp

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class HostRun:
    hosts: int
    seconds: float  # from the first start to the last exit
    sent: int
    failed: int
    per_host_sent: list[int]
    sink_received: int
    first_message_s: float | None
    peak_rss_mb: float  # all processes of all hosts together
    process_peaks_mb: list[tuple[str, float]]  # each process's own high-water mark, with its role
    cpu_seconds: float
    exit_codes: list[int]


@contextlib.contextmanager
def start_cluster() -> Iterator[Any]:
    sys.path.insert(0, str(ROOT))
    from tests.postgres import PASSWORD, Cluster, binaries

    if binaries() is None:
        raise tp.ToolsUnavailable("PostgreSQL's initdb and pg_ctl are not installed")
    os.environ["DIGEST_STATE_PASSWORD"] = PASSWORD
    with Cluster.start(fast=False, settings=("shared_buffers=128MB",)) as cluster:
        tp.pin_tree(int((cluster.data / "postmaster.pid").read_text().split()[0]), "peers")
        yield cluster


def host_config(project_config: Path, host: int, port: int, url: str) -> Path:
    """digest.yaml for host `host`: its own relay (port), the shared database."""
    text = project_config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^state: .*$", f"state: {url}", text)
    text = re.sub(r"(?m)^(    port: )\d+$", rf"\g<1>{port}", text)
    path = project_config.with_name(f"digest-pg-host{host}.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def run_hosts(
    tools: tp.Tools, project_config: Path, url: str, hosts: int, workdir: Path
) -> HostRun:
    """H `digest send` processes at once, each with its own smtp-sink; timed together."""
    sinks = [tp.Sink(tools, tp.free_port()) for _ in range(hosts)]
    try:
        configs = [host_config(project_config, n, s.port, url) for n, s in enumerate(sinks)]
        bases = [s.watch() for s in sinks]
        env = tp._digest_env()
        started = time.perf_counter()
        processes, outputs = [], []
        for n, config in enumerate(configs):
            out = (workdir / f"host{n}.json").open("wb")
            err = (workdir / f"host{n}.err").open("wb")
            command = [sys.executable, "-m", "digest", "send", "--config", str(config), "--json"]
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=workdir,
                    env=env,
                    stdout=out,
                    stderr=err,
                    preexec_fn=tp.pinned("sender"),
                )  # fmt: skip
            )
            outputs.append((out, err))
            time.sleep(0.2)  # the first opens the run; the others join it
        memories = [tp.TreeMemory(p.pid) for p in processes]
        usage_cpu, codes = 0.0, []
        for process in processes:
            _, status, usage = os.wait4(process.pid, 0)
            usage_cpu += usage.ru_utime + usage.ru_stime
            codes.append(os.waitstatus_to_exitcode(status))
        seconds = time.perf_counter() - started
        for memory in memories:
            memory.stop()
        for out, err in outputs:
            out.close()
            err.close()
        reports = [_report(workdir, n) for n in range(hosts)]
        sent = [int(r.get("sent", 0)) for r in reports]
        received = sum(s.wait_for(b + n) - b for s, b, n in zip(sinks, bases, sent, strict=True))
        firsts = [s.first_at - started for s in sinks if s.first_at is not None]
        return HostRun(
            hosts=hosts,
            seconds=seconds,
            sent=sum(sent),
            failed=sum(int(r.get("failed", 0)) for r in reports),
            per_host_sent=sent,
            sink_received=received,
            first_message_s=min(firsts) if firsts else None,
            peak_rss_mb=sum(m.peak_kb for m in memories) / 1024,
            process_peaks_mb=[
                (m.roles.get(pid, "?"), round(kb / 1024, 1))
                for m in memories
                for pid, kb in sorted(m.process_kb.items(), key=lambda p: -p[1])
            ],
            cpu_seconds=usage_cpu,
            exit_codes=codes,
        )
    finally:
        for sink in sinks:
            sink.stop()


def _report(workdir: Path, host: int) -> dict[str, Any]:
    try:
        return tp._summary((workdir / f"host{host}.json").read_text(errors="replace"))
    except ValueError as exc:
        err = (workdir / f"host{host}.err").read_text(errors="replace")
        raise tp.BenchError(f"host {host} gave no JSON summary:\n{tp._tail(err)}") from exc


def server_cpu_seconds(cluster: Any) -> float:
    """CPU the PostgreSQL server used so far: the postmaster, the backends it reaped (its
    children's times) and those still running."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def server_writes(cluster: Any, database: str) -> dict[str, int]:
    """Rows the database wrote during the runs (pg_stat_database), for writes per message."""
    row = cluster.sql(
        "SELECT tup_inserted, tup_updated, tup_deleted, xact_commit FROM pg_stat_database "
        f"WHERE datname = '{database}'"
    ).strip()
    inserted, updated, deleted, commits = (int(v) for v in row.split("|"))
    return {"inserted": inserted, "updated": updated, "deleted": deleted, "commits": commits}


def measure(tools: tp.Tools, project_config: Path, hosts: int, workdir: Path) -> dict[str, Any]:
    """One host on PostgreSQL, then `hosts` hosts, each on a new database of one cluster."""
    result: dict[str, Any] = {}
    load = os.getloadavg()
    with start_cluster() as cluster:
        runs = [(1, "postgresql_1_host")] + ([(hosts, f"postgresql_{hosts}_hosts")] * (hosts > 1))
        for count, label in runs:
            name = label  # one database per measured run
            url = cluster.create_database(name)
            tp.log(f"digest send on PostgreSQL, {count} host(s)")
            server_before = server_cpu_seconds(cluster)
            run = run_hosts(tools, project_config, url, count, workdir)
            server_cpu = server_cpu_seconds(cluster) - server_before
            time.sleep(1.0)  # the statistics collector catches up
            writes = server_writes(cluster, name)
            if any(run.exit_codes) or run.sent == 0:
                raise tp.BenchError(f"{label}: exit codes {run.exit_codes}, sent {run.sent}")
            result[label] = {
                "digests_per_s": round(run.sent / run.seconds, 1),
                "seconds": round(run.seconds, 2),
                "sent": run.sent,
                "per_host_sent": run.per_host_sent,
                "sink_received": run.sink_received,
                "first_message_s": None if run.first_message_s is None else round(
                    run.first_message_s, 2),
                "peak_rss_mb": round(run.peak_rss_mb, 1),
                "process_peaks_mb": run.process_peaks_mb,  # (role, MB), each host's largest first
                "cpu_seconds": round(run.cpu_seconds, 1),
                "server_cpu_seconds": round(server_cpu, 1),
                "cpu_ms_per_message": round(1000 * (run.cpu_seconds + server_cpu) / run.sent, 3),
                "server_cpu_ms_per_message": round(1000 * server_cpu / run.sent, 3),
                "database_rows_written": writes,
                "rows_written_per_message": round(
                    (writes["inserted"] + writes["updated"] + writes["deleted"]) / run.sent, 2),
                "commits_per_message": round(writes["commits"] / run.sent, 3),
            }  # fmt: skip
    result["load_average_before"] = [round(v, 2) for v in load]
    return result
