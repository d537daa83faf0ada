"""`--plot`: drawn with matplotlib when it is installed, one clear line when it is not."""

from __future__ import annotations

import importlib.util

import pytest

from eventlog.audit import plot as audit_plot
from eventlog.audit.run import run_audit
from test_audit_support import AuditLedger


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


def audit_with_plot(book, target) -> int:
    return run_audit(book.path, since=None, until=None, limit=None, window=None, as_json=False,
                     plot=str(target))


def test_without_matplotlib_a_clear_message_and_no_audit(book, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert audit_with_plot(book, tmp_path / "w.png") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == ("chledger: --plot needs matplotlib, which is not installed: "
                                    "pip install 'chledger[plot]' (or pip install matplotlib)")
    assert not (tmp_path / "w.png").exists()


def test_only_png_and_svg(book, tmp_path, capsys):
    assert audit_with_plot(book, tmp_path / "w.jpg") == 2
    assert "draws .png or .svg" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                    reason="matplotlib is the optional [plot] extra and is not installed here")
@pytest.mark.parametrize("name, magic", [("w.png", b"\x89PNG"), ("w.svg", b"<?xml")])
def test_the_plot_is_written(book, tmp_path, capsys, name, magic):
    target = tmp_path / name
    assert audit_with_plot(book, target) == 1  # 4 requests in 10 s against a limit of 3
    assert target.read_bytes().startswith(magic)
    assert f"plot written to {target}" in capsys.readouterr().out
    if name.endswith(".svg"):
        text = target.read_text()
        assert "limit (3)" in text and "429 / 403" in text


def test_formats_are_what_the_help_promises():
    assert audit_plot.FORMATS == (".png", ".svg")
