"""`audit --plot FILE.png|.svg`: requests per window over time against the limit, 429s marked.

matplotlib is an optional extra (`pip install '.[plot]'`): without it `check_plot_path` says so
in one line before any work is done, as it does for a file type we don't draw or a folder that
isn't there: an audit of a big ledger takes seconds, and should not be lost to its plot. The
curve is the audit's own exact counts, thinned to the fullest window starting in each of ~2000
slices of time, so a peak is never smoothed away.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timezone

from eventlog.audit.findings import Findings
from eventlog.errors import PlotUnavailable

__all__ = ["PlotUnavailable", "check_plot_path", "write_plot", "FORMATS", "PROFILE_BINS"]

FORMATS = (".png", ".svg")
PROFILE_BINS = 2000  # points on the curve: finer than a screen shows, few enough to draw fast


def check_plot_path(path: str) -> None:
    """Raise `PlotUnavailable` unless `write_plot` can draw to `path`."""
    if not path.lower().endswith(FORMATS):
        raise PlotUnavailable(f"--plot draws .png or .svg files, not {path!r}")
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable("--plot needs matplotlib, which is not installed: "
                              "pip install 'chledger[plot]' (or pip install matplotlib)")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise PlotUnavailable(f"--plot {path}: there is no folder {folder}")


def _when(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc)


def write_plot(path: str, findings: Findings) -> None:
    """Draw the windows of `findings` (collected with `profile_bins`) to `path`."""
    # Imported here, not at the top: matplotlib is an optional extra, and importing it costs
    # ~0.4 s that an audit without --plot should not pay.
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    profile = findings.stats.profile
    limit, window = findings.limit, findings.window
    fig, ax = plt.subplots(figsize=(11, 4.5))
    try:
        if profile:
            ax.step([_when(w.start) for w in profile], [w.count for w in profile], where="post",
                    linewidth=0.9, label=f"requests in the {window:g} s window starting then")
        ax.axhline(limit, color="tab:red", linestyle="--", linewidth=1, label=f"limit ({limit})")
        if findings.cooldowns:
            ax.scatter([_when(c.at) for c in findings.cooldowns], [limit] * len(findings.cooldowns),
                       marker="v", color="black", zorder=3, label="429 / 403")
        peak = max([w.count for w in profile] + [limit])
        ax.set_ylim(0, peak * 1.1)  # room above the limit line, so it is never on the frame
        ax.set_ylabel("requests per window")
        ax.set_xlabel("time (UTC)")
        ax.set_title(f"Requests per {window:g} s window: {findings.database}")
        ax.legend(loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        try:
            fig.savefig(path)
        except OSError as exc:  # e.g. no permission, the disk full
            raise PlotUnavailable(f"--plot could not write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
