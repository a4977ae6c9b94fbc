"""The README's results gallery matches the committed FULL results and figures (`lutnb.nb.gallery`)."""
import json

import pytest

from lutnb.files import repo_root
from lutnb.nb import gallery


def test_readme_gallery_is_current():
    text = (repo_root() / "README.md").read_text()
    block = gallery.readme_block(text)
    assert block is not None, "README.md has no gallery block"
    assert block == gallery.render(), "README gallery is stale: run `python tools/gallery.py`"


def test_every_committed_figure_has_its_full_results():
    assert gallery.orphan_figures() == []


def _provenance(**kw):
    return {"mode": "FULL", "commit": "0123456789abcdef", "dirty": False, "date_utc": "2026-12-02T12:00:00+00:00",
            "command": "python -m lutnb.reproduce --full --allow-cpu --only 03", "wall_seconds": 600.0,
            "seeds": [0, 1, 2], "machine": {"cpu": "Test CPU", "cpu_count": 2, "gpus": []}, **kw}


def test_render_reads_numbers_from_the_results(tmp_path):
    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "fig10_accuracy_vs_bits.png").write_bytes(b"png")
    summary = [{"model": "digits_cnn", "metric": m, "v": v, "c": c, "bits": b, "fp32_mean": 98.5,
                "lut_mean": acc, "seeds": 3} for m, v, c, b, acc in
               (("l2", 4, 16, 1.0, 97.25), ("l1", 4, 16, 1.0, 96.5), ("l2", 8, 16, 0.5, 90.125))]
    ref = {"03_accuracy_vs_bits": {"summary": summary, "provenance": _provenance()}}
    text = gallery.render(ref, figs)
    assert "at 1 bit (v=4, c=16) l2 97.25 %, l1 96.50 %" in text
    assert "lowest 90.12 % at 0.50 bit (l2, v=8, c=16)" in text
    assert "commit `0123456789`" in text and "10 min on 2 x Test CPU (no GPU)" in text
    assert "![accuracy vs equivalent bits per (v, c) and metric](figures/fig10_accuracy_vs_bits.png)" in text
    # notebooks without FULL results say so instead of showing numbers
    assert "no FULL result committed yet" in text and "not run FULL here" in text
    assert "fig08_lutboost_stages" not in text


def test_orphans_and_smoke_results_are_not_evidence(tmp_path):
    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "fig10_accuracy_vs_bits.png").write_bytes(b"png")
    (figs / "fig99_unknown.png").write_bytes(b"png")
    refdir = tmp_path / "ref"
    refdir.mkdir()
    (refdir / "03_accuracy_vs_bits.json").write_text(json.dumps({"smoke": True}))  # no FULL provenance
    ref = gallery.load_reference(refdir)
    assert ref == {}
    assert gallery.orphan_figures(figs, ref) == ["fig10_accuracy_vs_bits.png", "fig99_unknown.png"]


def test_update_readme_needs_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(ValueError, match="gallery:start"):
        gallery.update_readme(readme, "block\n")
    readme.write_text(f"# x\n{gallery.START}\nold\n{gallery.END}\nrest\n")
    assert gallery.update_readme(readme, "new\n") is True
    assert readme.read_text() == f"# x\n{gallery.START}\nnew\n{gallery.END}\nrest\n"
    assert gallery.update_readme(readme, "new\n") is False
