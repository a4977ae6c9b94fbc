"""`python -m lutnb.reproduce`: the notebook runner (`lutnb.nb.reproduce`; `--help` lists its options)."""
from __future__ import annotations

from .nb.reproduce import main

if __name__ == "__main__":
    raise SystemExit(main())
