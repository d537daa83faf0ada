"""`--plot`: drawn with matplotlib when it is installed, one clear line when it can't be."""

from __future__ import annotations

import importlib.util

import pytest

from eventlog.audit import audit, plot as audit_plot, summary, to_json
from eventlog.errors import AuditError, PlotUnavailable
from support.audit_ledger import AuditLedger

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is the optional [plot] extra and is not installed here")


@pytest.fixture
def book(tmp_path):
    b = AuditLedger(tmp_path / "plot.db")
    b.at(0).worker_started(limit=3, window=10)
    b.sends([1, 2, 3, 4, 20, 21])
    b.at(22).queue("hot")
    b.at(22).send("hot")
    b.at(22.1).rate_limited("hot", cooldown=5)
    yield b
    b.close()


def test_without_matplotlib_a_clear_message_and_no_audit(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    # A database that isn't there: the plot is refused first, before any work.
    with pytest.raises(PlotUnavailable) as caught:
        audit(str(tmp_path / "absent.db"), plot=str(tmp_path / "w.png"))
    assert str(caught.value) == ("--plot needs matplotlib, which is not installed: "
                                 "pip install 'chledger[plot]' (or pip install matplotlib)")
    assert isinstance(caught.value, AuditError) and caught.value.exit_code == 2
    assert not (tmp_path / "w.png").exists()


def test_only_png_and_svg(book, tmp_path, run_cli):
    with pytest.raises(PlotUnavailable, match="draws .png or .svg"):
        audit(book.path, plot=str(tmp_path / "w.jpg"))
    result = run_cli("audit", "--db", book.path, "--plot", tmp_path / "w.jpg")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"chledger: --plot draws .png or .svg files, not {str(tmp_path / 'w.jpg')!r}\n"


@needs_matplotlib
def test_a_folder_that_is_not_there_is_refused_before_the_audit(tmp_path, run_cli):
    target = tmp_path / "no-such-folder" / "w.png"
    result = run_cli("audit", "--db", tmp_path / "absent.db", "--plot", target)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"chledger: --plot {target}: there is no folder {target.parent}\n"


@needs_matplotlib
@pytest.mark.parametrize("name, magic", [("w.png", b"\x89PNG"), ("w.svg", b"<?xml")])
def test_the_plot_is_written(book, tmp_path, name, magic):
    target = tmp_path / name
    assert audit(book.path, plot=str(target)).exit_code == 1  # 4 requests in 10 s against a limit of 3
    assert target.read_bytes().startswith(magic)
    if name.endswith(".svg"):
        text = target.read_text()
        assert "limit (3)" in text and "429 / 403" in text


@needs_matplotlib
def test_the_command_says_where_the_plot_went_after_the_summary_not_in_json(book, tmp_path, run_cli):
    target = tmp_path / "w.png"
    text = run_cli("audit", "--db", book.path, "--plot", target)
    assert (text.returncode, text.stderr) == (1, "")
    assert text.stdout == summary(audit(book.path)) + f"\nplot written to {target}\n"
    assert target.read_bytes().startswith(b"\x89PNG")
    target.unlink()
    as_json = run_cli("audit", "--db", book.path, "--plot", target, "--json")
    assert (as_json.returncode, as_json.stderr) == (1, "")
    assert as_json.stdout == to_json(audit(book.path)) + "\n"  # JSON alone: stays parseable
    assert target.read_bytes().startswith(b"\x89PNG")


def test_formats_are_what_the_help_promises():
    assert audit_plot.FORMATS == (".png", ".svg")
