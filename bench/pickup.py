"""How much a large feed costs per run: the first pickup, and the next one with nothing new.

    python bench/pickup.py [--megabytes 51] [--json FILE]

Makes a project whose source is one RSS file of about the given size (entries shaped like
a wire service's: title, link, guid, date, a paragraph of HTML), then runs the real
`digest items --json` (pickup, then every item listed) twice as subprocesses, timing each and
reading its peak memory (`wait4`), and a third pickup alone in a subprocess (`pickup_only`).
The second run finds nothing new: before issue 15 it cost as much as the first (the file was
parsed and every stored item tagged again); now the unchanged file is not read and nothing is
tagged, and what remains is listing the items.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = (
    "<p>Authorities in Guatemala and Honduras said on Tuesday that returnees arriving on "
    "charter flights would receive reintegration support, while migrant workers waiting at "
    "the border described long queues and scarce shelter. &amp; more to follow.</p>"
)


def write_feed(path: Path, megabytes: float) -> int:
    entries = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>')
        out.write("<title>Wire</title><link>https://wire.example.org/</link>")
        while out.tell() < megabytes * 1_000_000:
            out.write(
                f"<item><title>Story {entries}: returnees and migrant workers in the region"
                f"</title><link>https://wire.example.org/{entries}</link>"
                f"<guid>wire-{entries}</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
                f"<description><![CDATA[{PARAGRAPH * 3}]]></description></item>\n"
            )
            entries += 1
        out.write("</channel></rss>\n")
    return entries


PICKUP_ONLY = """
from digest.clock import utcnow
from digest.send import pick_up
from digest.settings import load_settings
from digest.state import State
from digest.taxonomy import load_taxonomy

settings = load_settings("digest.yaml")
with State(settings.state) as state:
    pick_up(settings, state, load_taxonomy(settings.taxonomy), utcnow())
"""


def timed_run(project: Path, command: list[str] | None = None) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command or [sys.executable, "-m", "digest", "items", "--json", "--config", "digest.yaml"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"digest items failed: {process.stderr.read().decode() if process.stderr else ''}"
        )
    return {"seconds": round(elapsed, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=51.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-pickup-") as folder:
        project = Path(folder)
        shutil.copytree(ROOT / "templates", project / "templates")
        shutil.copy(ROOT / "subscribers.yaml", project / "subscribers.yaml")
        (project / "items").mkdir()
        entries = write_feed(project / "items" / "wire.rss", args.megabytes)
        size = (project / "items" / "wire.rss").stat().st_size
        (project / "digest.yaml").write_text("sources: [items]\n")
        print(f"[bench] feed of {size / 1e6:.1f} MB, {entries:,} entries")
        first = timed_run(project)
        print(f"[bench] first run: {first['seconds']} s, peak {first['peak_rss_mb']} MB")
        second = timed_run(project)
        print(f"[bench] second run (nothing new): {second['seconds']} s, "
              f"peak {second['peak_rss_mb']} MB")  # fmt: skip
        pickup_only = timed_run(project, [sys.executable, "-c", PICKUP_ONLY])
        print(f"[bench] a pickup alone (nothing new): {pickup_only['seconds']} s, "
              f"peak {pickup_only['peak_rss_mb']} MB")  # fmt: skip
    figures = {
        "feed_mb": round(size / 1e6, 1),
        "entries": entries,
        "first": first,
        "second": second,
        "pickup_only": pickup_only,
        "second_over_first": round(second["seconds"] / first["seconds"], 3),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg()[0],
        },
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
