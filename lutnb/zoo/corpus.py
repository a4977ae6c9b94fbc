"""Real English sentences from text that ships with what lutnb installs (no download), by source.

The MiniLM experiments calibrate on one source and measure on another (a held-out *source*, not a held-out
split of the same text), so that a recipe that only learns one kind of text shows it. Sources:

- ``pydoc``: the Python Language Reference topics bundled with every CPython (``pydoc_data.topics``),
- ``stdlib``: docstrings of the Python standard library's own modules, classes and functions,
- ``packages``: docstrings of installed scientific packages (numpy, scipy, pandas, scikit-learn, matplotlib),
- ``datasets``: scikit-learn's dataset descriptions (``sklearn/datasets/descr/*.rst``: plants, wines, houses,
  diabetes, faces, newsgroups...),
- ``licenses``: the license texts installed packages ship (``*.dist-info/LICENSE*``).

Docstrings are read with `ast` from the source files (nothing is imported). Each text is cleaned of
reStructuredText markup, split into sentences, filtered (6-50 words, mostly letters, no code) and
de-duplicated; the order is deterministic (sorted files), so the same installation gives the same corpus.
Texts differ between Python and package versions: every result records the source and its size.
"""
from __future__ import annotations

import ast
import random
import re
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SOURCES = ("pydoc", "stdlib", "packages", "datasets", "licenses")
PACKAGES = ("numpy", "scipy", "pandas", "sklearn", "matplotlib")

_ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")      # :func:`name <target>` -> name
_TICKS = re.compile(r"`+([^`]*)`+_?")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_CODEY = re.compile(r"[_=<>{}\[\]\\|#@$^~]|\.\.\.|::|\b\w+\.\w+\(|\w\(\)|https?:|\bself\b|\bNone\b|\bTrue\b"
                    r"|\w \: \w|---|\w\.\w")


@dataclass(frozen=True)
class Corpus:
    """Sentences of one source, the files they came from and the settings that made them."""

    source: str
    sentences: list
    n_documents: int

    def summary(self) -> dict:
        words = [len(s.split()) for s in self.sentences]
        return {"source": self.source, "sentences": len(self.sentences), "documents": self.n_documents,
                "mean_words": sum(words) / max(len(words), 1)}


def clean(text: str) -> str:
    """Plain text from reST-ish documentation: roles, back-ticks and emphasis removed, lines joined."""
    text = _ROLE.sub(r"\1", text)
    text = _TICKS.sub(r"\1", text)
    text = re.sub(r"\*\*?([^*]+)\*\*?", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def is_sentence(s: str) -> bool:
    """A prose sentence: 6-50 words, starts upper-case, ends . ! ?, >= 85 % letters, nothing code-like."""
    words = s.split()
    if not 6 <= len(words) <= 50 or not s[0].isupper() or s[-1] not in ".!?":
        return False
    if _CODEY.search(s):
        return False
    chars = [ch for ch in s if not ch.isspace()]
    return sum(ch.isalpha() for ch in chars) >= 0.85 * len(chars)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (paragraphs split on blank lines first, so headings do not glue on)."""
    out = []
    text = re.sub(r"^.*\n\s*[-=~^]{3,}\s*$", "\n", text, flags=re.M)  # section heading + underline
    for para in re.split(r"\n\s*\n", text):
        if para.lstrip().startswith((">>>", "..", "    ")):  # doctest, directive, literal block
            continue
        out.extend(p.strip() for p in _SPLIT.split(clean(para)))
    return [s for s in out if is_sentence(s)]


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError):
        return []
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef,
                                                                  ast.AsyncFunctionDef))]
    return [d for d in (ast.get_docstring(n) for n in nodes) if d]


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "pydoc_data", "lib2to3", "ensurepip"}
    return sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts))


def _package_files(packages=PACKAGES) -> list[Path]:
    import importlib.util

    files = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        files += sorted(p for p in root.rglob("*.py") if not {"tests", "test", "testing"} & set(p.parts))
    return files


def _documents(source: str) -> list[str]:
    if source == "pydoc":
        from pydoc_data.topics import topics

        return [topics[k] for k in sorted(topics)]
    if source in ("stdlib", "packages"):
        files = _stdlib_files() if source == "stdlib" else _package_files()
        return [d for f in files for d in _docstrings(f)]
    site = Path(sysconfig.get_paths()["purelib"])
    if source == "datasets":
        return [p.read_text(encoding="utf-8") for p in sorted(site.glob("sklearn/datasets/descr/*.rst"))]
    if source == "licenses":
        return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(site.glob("*.dist-info/LICEN[CS]E*"))
                if p.is_file()]
    raise ValueError(f"source={source!r}: use one of {SOURCES}")


@lru_cache(maxsize=None)
def load_corpus(source: str) -> Corpus:
    """Every distinct sentence of ``source`` (one of `SOURCES`), in a deterministic order; cached per process
    (parsing the package docstrings takes about a minute). Do not modify the returned list."""
    docs = _documents(source)
    seen, out = set(), []
    for d in docs:
        for s in split_sentences(d):
            key = s.lower()
            if key not in seen:
                seen.add(key)
                out.append(s)
    if not out:
        raise RuntimeError(f"source {source!r} gave no sentences on this installation ({len(docs)} documents)")
    return Corpus(source, out, len(docs))


def sample_sentences(sources, n: int | None = None, seed: int = 0, exclude=()) -> list[str]:
    """Up to ``n`` sentences drawn (seeded) from the union of ``sources``, none of them in ``exclude``."""
    if isinstance(sources, str):
        sources = [sources]
    banned = {s.lower() for s in exclude}
    pool, seen = [], set()
    for src in sources:
        for s in load_corpus(src).sentences:
            if s.lower() not in banned and s.lower() not in seen:
                seen.add(s.lower())
                pool.append(s)
    rng = random.Random(seed)
    rng.shuffle(pool)
    return pool if n is None else pool[:n]
