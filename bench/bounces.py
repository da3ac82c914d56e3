"""Time N bounce mails (default 10,000) through the real `digest bounces`, and classifying alone.

    python bench/bounces.py [--count 10000] [--subscribers 5000] [--json]

The mails are the committed samples (Postfix-generated and written) and, when flufl.bounce
4.0 is installed, its real-world corpus, repeated to N files in the bounces Maildir's new/ of
a generated project. Each copy is made distinct (its own Received line, so none is the same
mail twice) and 4 in 5 carry a Delivered-To of a real VERP address of a delivery in the
project's state (`--subscribers` subscribers, one digest each), so they are attributed,
recorded, and suppress or count their subscriber as a real mailbox's would.

- "digest bounces": the command itself, `python -m digest bounces` in a process of its own
  (start-up included): read, classify, fingerprint, attribute, record in the state, apply
  the policy, write the suppression journal, move each mail to cur/. Goal: under 30 s.
- "classify only": reading, classify(), fingerprint() and the move to cur/, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bounce_accuracy import sample_paths  # noqa: E402

from digest.bounces import MaildirSource, classify, fingerprint, verp_address  # noqa: E402
from digest.state import State  # noqa: E402

SECRET = "bench-bounce-secret"
RETURN_PATH = "bounces@example.org"


def samples() -> list[bytes]:
    found = []
    for folder in sample_paths().values():
        if folder is not None:
            found += [
                p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".eml", ".txt")
            ]
    return [s for s in found if s]


def _maildir(path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def make_project(root: Path, subscribers: int) -> list[str]:
    """A project whose state holds one sent digest per subscriber; their VERP addresses."""
    for name in ("templates", "items"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "subscribers.yaml", root / "subscribers.yaml")
    (root / "digest.yaml").write_text(
        "sender: Regional Migration Digest <digest@example.org>\n"
        f"bounces: {{return_path: {RETURN_PATH}}}\n"
    )
    now = datetime.now(UTC)
    emails = [f"reader{n:06d}@example.net" for n in range(subscribers)]
    with State(root / ".digest" / "state.db") as state:
        run = state.start_run("manual", now)
        ids = state.begin_deliveries(
            run, [(e, f"<d{n}@example.org>", ["item"]) for n, e in enumerate(emails)], now, {}
        )
    return [
        verp_address(RETURN_PATH, email, delivery_id, SECRET.encode())
        for email, (delivery_id, _) in zip(emails, ids, strict=True)
    ]


def fill(box: Path, count: int, mails: list[bytes], verp: list[str]) -> None:
    for index in range(count):
        head = f"Received: from relay{index}.bench.test by mx.example.org\n"
        if verp and index % 5:
            head += f"Delivered-To: {verp[index % len(verp)]}\n"
        (box / "new" / f"{index:06d}.bench").write_bytes(head.encode() + mails[index % len(mails)])


def run_command(count: int, subscribers: int) -> dict[str, object]:
    """The real `digest bounces` over `count` mails in the project's default mailbox."""
    mails = samples()
    with tempfile.TemporaryDirectory(prefix="digest-bounce-bench-") as tmp:
        root = Path(tmp)
        verp = make_project(root, subscribers)
        box = _maildir(root / "bounces")
        fill(box, count, mails, verp)
        env = {**os.environ, "DIGEST_TOKEN_SECRET": SECRET}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "digest", "bounces", "--config", str(root / "digest.yaml")],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"digest bounces failed:\n{done.stdout}\n{done.stderr}")
        moved = len(list((box / "cur").iterdir()))
        summary = done.stdout.strip().splitlines()[-1]
    return {
        "mails": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed),
        "moved_to_cur": moved,
        "subscribers": subscribers,
        "summary": summary,
    }


def run_classify(count: int) -> dict[str, object]:
    """Reading, classifying and moving only, in this process (no state)."""
    mails = samples()
    with tempfile.TemporaryDirectory(prefix="digest-bounce-bench-") as tmp:
        box = _maildir(Path(tmp))
        fill(box, count, mails, [])
        kinds: dict[str, int] = {}
        started = time.perf_counter()
        source = MaildirSource(box)
        for identifier, data in source:
            result = classify(data)
            fingerprint(data)
            kinds[result.kind] = kinds.get(result.kind, 0) + 1
            source.mark_done(identifier)
        elapsed = time.perf_counter() - started
    return {
        "mails": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed),
        "distinct_samples": len(mails),
        **kinds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=5_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "digest_bounces": run_command(args.count, args.subscribers),
        "classify_only": run_classify(args.count),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    command, alone = result["digest_bounces"], result["classify_only"]
    print(
        f"digest bounces: {command['mails']} mails in {command['seconds']} s "
        f"({command['per_second']}/s, process start included), {command['moved_to_cur']} "
        f"moved to cur/, {command['subscribers']} subscribers in the state\n"
        f"  {command['summary']}"
    )
    print(
        f"classify only: {alone['mails']} mails in {alone['seconds']} s "
        f"({alone['per_second']}/s) from {alone['distinct_samples']} samples; kinds: "
        + ", ".join(
            f"{k} {v}"
            for k, v in alone.items()
            if k in ("bounce", "complaint", "auto-reply", "other")
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
