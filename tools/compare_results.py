"""Compare two results/ folders value by value: `python tools/compare_results.py OLD_DIR NEW_DIR`.

For a refactor that must not change numbers: every results JSON is walked key by key; differences in
timing fields (seconds, times, throughput measured on this machine) are counted apart from all the others,
which are listed. Exit status 1 when a non-timing value differs or a file is missing on one side.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lutnb.nb.results import differences, is_timing


def compare(old: Path, new: Path, show: int = 40) -> int:
    names = sorted({p.name for p in old.glob("*.json")} | {p.name for p in new.glob("*.json")})
    status = 0
    for name in names:
        if not (old / name).exists() or not (new / name).exists():
            print(f"{name}: only in {'new' if not (old / name).exists() else 'old'}")
            status = 1
            continue
        diffs = differences(json.loads((old / name).read_text()), json.loads((new / name).read_text()))
        other = [d for d in diffs if not is_timing(d[0])]
        print(f"{name}: {len(diffs) - len(other)} timing values differ, {len(other)} other values differ")
        for path, a, b in other[:show]:
            print(f"    {'.'.join(map(str, path))}: {str(a)[:70]} -> {str(b)[:70]}")
        status |= bool(other)
    return status


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--show", type=int, default=40, help="non-timing differences listed per file")
    args = ap.parse_args()
    sys.exit(compare(args.old, args.new, args.show))
