"""Time classifying N bounce mails read from a Maildir and moved to cur/ (default 10,000).

    python bench/bounces.py [--count 10000] [--json]

The mails are the committed samples (Postfix-generated and written) and, when flufl.bounce
4.0 is installed, its real-world corpus, repeated to N files in a temporary Maildir's new/.
Timed: reading each file, classify(), fingerprint(), and the move to cur/ (what
`digest bounces` does per mail, less the state, which is the lead's). Goal: under 30 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bounce_accuracy import sample_paths  # noqa: E402

from digest.bounces import MaildirSource, classify, fingerprint  # noqa: E402


def samples() -> list[bytes]:
    found = []
    for folder in sample_paths().values():
        if folder is not None:
            found += [
                p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".eml", ".txt")
            ]
    return [s for s in found if s]


def run(count: int) -> dict[str, float | int]:
    mails = samples()
    with tempfile.TemporaryDirectory(prefix="digest-bounce-bench-") as tmp:
        box = Path(tmp)
        for sub in ("new", "cur", "tmp"):
            (box / sub).mkdir()
        for index in range(count):
            (box / "new" / f"{index:06d}.bench").write_bytes(mails[index % len(mails)])
        kinds: dict[str, int] = {}
        started = time.perf_counter()
        source = MaildirSource(box)
        for identifier, data in source:
            result = classify(data)
            fingerprint(data)
            kinds[result.kind] = kinds.get(result.kind, 0) + 1
            source.mark_done(identifier)
        elapsed = time.perf_counter() - started
        moved = len(list((box / "cur").iterdir()))
    return {
        "mails": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed),
        "moved_to_cur": moved,
        "distinct_samples": len(mails),
        **kinds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.count)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['mails']} mails in {result['seconds']} s ({result['per_second']}/s), "
            f"{result['moved_to_cur']} moved to cur/, from {result['distinct_samples']} samples; "
            f"kinds: "
            + ", ".join(
                f"{k} {v}"
                for k, v in result.items()
                if k in ("bounce", "complaint", "auto-reply", "other")
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
