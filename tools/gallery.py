"""Rewrite the README's results gallery from the committed FULL results: `python tools/gallery.py`.

`--check` only compares (exit 1 when the README is stale, printing the first differing lines). The block sits
between `<!-- gallery:start -->` and `<!-- gallery:end -->`; `lutnb.nb.gallery` renders it."""
from __future__ import annotations

import argparse
import difflib
import sys

from lutnb.files import repo_root
from lutnb.nb import gallery


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 if the README is stale")
    args = ap.parse_args(argv)
    readme = repo_root() / "README.md"
    block = gallery.render()
    orphans = gallery.orphan_figures()
    if orphans:
        print("figures without a FULL results file of their notebook: " + ", ".join(orphans), file=sys.stderr)
    if args.check:
        old = gallery.readme_block(readme.read_text()) or ""
        if old != block:
            diff = list(difflib.unified_diff(old.splitlines(), block.splitlines(), "README", "rendered", lineterm=""))
            print("\n".join(diff[:40]), file=sys.stderr)
            return 1
        return 1 if orphans else 0
    changed = gallery.update_readme(readme, block)
    print(f"README gallery {'rewritten' if changed else 'already up to date'} "
          f"({len(gallery.load_reference())} notebooks with FULL results)")
    return 1 if orphans else 0


if __name__ == "__main__":
    raise SystemExit(main())
