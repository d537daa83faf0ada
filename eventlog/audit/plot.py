"""`audit --plot FILE.png|.svg`: requests per window over time against the limit, 429s marked.

matplotlib is an optional extra (`pip install '.[plot]'`): without it `check_plot_path` says so
in one line before any work is done. The curve is the audit's own exact counts, thinned to the
fullest window starting in each of ~2000 slices of time, so a peak is never smoothed away.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from eventlog.errors import ChledgerError

if TYPE_CHECKING:
    from eventlog.audit.run import AuditData

__all__ = ["PlotUnavailable", "check_plot_path", "write_plot", "FORMATS"]

FORMATS = (".png", ".svg")


class PlotUnavailable(ChledgerError):
    """The plot can't be drawn: matplotlib is missing, or the file type is not one we draw."""


def check_plot_path(path: str) -> None:
    if not path.lower().endswith(FORMATS):
        raise PlotUnavailable(f"--plot draws .png or .svg files, not {path!r}")
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable("--plot needs matplotlib, which is not installed: "
                              "pip install 'chledger[plot]' (or pip install matplotlib)")


def _when(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc)


def write_plot(path: str, data: "AuditData") -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    profile = data.stats.profile
    fig, ax = plt.subplots(figsize=(11, 4.5))
    try:
        if profile:
            ax.step([_when(w.start) for w in profile], [w.count for w in profile], where="post",
                    linewidth=0.9, label=f"requests in the {data.window:g} s window starting then")
        ax.axhline(data.limit, color="tab:red", linestyle="--", linewidth=1,
                   label=f"limit ({data.limit})")
        if data.cooldowns:
            ax.scatter([_when(c.at) for c in data.cooldowns], [data.limit] * len(data.cooldowns),
                       marker="v", color="black", zorder=3, label="429 / 403")
        peak = max([w.count for w in profile] + [data.limit])
        ax.set_ylim(0, peak * 1.1)  # room above the limit line, so it is never on the frame
        ax.set_ylabel("requests per window")
        ax.set_xlabel("time (UTC)")
        ax.set_title(f"Requests per {data.window:g} s window: {data.database}")
        ax.legend(loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
