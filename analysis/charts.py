"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG.

SVG keeps the report one self-contained file that prints sharply; text stays text
(`svg.fonttype = none`), so the browser shapes Arabic and Persian labels correctly, which
matplotlib itself cannot. Each chart is laid out left to right (`direction="ltr"`): in a
right-to-left context `text-anchor="end"` would flip, and Arabic group names would run over the
bars. Charts only ever receive figures that passed disclosure control.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import matplotlib as mpl
from matplotlib.figure import Figure

# Okabe and Ito's palette: distinguishable with the common colour-vision deficiencies.
QUALITATIVE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
HIDDEN = "#d9d9d9"
FLAG = "#D55E00"
RC = {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True, slots=True)
class Bar:
    """One group's bar: shares per option (None = hidden), the hidden remainder, or a marker."""

    label: str
    shares: Sequence[float | None]
    marker: str | None = None  # set when the whole bar is hidden ("<10" or "c")


def hidden_note(marker: str | None) -> str:
    """What a chart writes for a hidden figure: a word, never "<10" alone, which on a per cent or
    rating axis reads as a value ("under 10 %")."""
    return "hidden" + (f" ({marker} people)" if marker and marker.startswith("<") else "")


def rating_colours(n: int) -> list[str]:
    """Low ratings warm, high ratings cool (red-blue rather than red-green, for colour blindness)."""
    cmap = mpl.colormaps["RdYlBu"]
    return [mpl.colors.to_hex(cmap(0.1 + 0.8 * i / max(n - 1, 1))) for i in range(n)]


def _svg(fig: Figure, title: str) -> str:
    buf = io.StringIO()
    with mpl.rc_context(RC):
        fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # Scale with the page; the viewBox keeps the proportions.
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                 rf'<svg\1 class="chart" role="img" direction="ltr" aria-label="{escape(title, quote=True)}"', svg, count=1)
    return svg


def _figure(rows: int, width: float = 7.2) -> Figure:
    with mpl.rc_context(RC):
        return Figure(figsize=(width, 1.0 + 0.26 * max(rows, 1)), layout="constrained")


def _rows_in_view(ax, rows: int) -> None:  # type: ignore[no-untyped-def]
    """Every row inside the axes, with half a row to spare: a row with no bar (a hidden figure,
    shown only as text) is not in matplotlib's autoscale, and the last one sat on the x axis."""
    ax.set_ylim(-0.6, max(rows, 1) - 0.4)


# Labels written over the chart sit on a white box above the reference lines, so a line that
# runs through one never strikes it out.
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.8, "alpha": 1}
LABEL_Z = 5


def stacked_bars(bars: Sequence[Bar], option_labels: Sequence[str], colours: Sequence[str], title: str,
                 hidden_label: str) -> str:
    """One horizontal bar per group, split by option; hidden parts grey and hatched."""
    with mpl.rc_context(RC):
        fig = _figure(len(bars))
        ax = fig.subplots()
        ys = list(range(len(bars)))[::-1]
        used_hidden = False
        for y, bar in zip(ys, bars, strict=True):
            if bar.marker:
                ax.text(0.005, y, hidden_note(bar.marker), va="center", ha="left", color="#555555")
                continue
            left = 0.0
            for i, share in enumerate(bar.shares):
                if share is None or share <= 0:
                    continue
                ax.barh(y, share, left=left, color=colours[i % len(colours)], edgecolor="white",
                        linewidth=0.5, label=option_labels[i])
                if share >= 0.07:
                    ax.text(left + share / 2, y, f"{share:.0%}", va="center", ha="center", fontsize=7,
                            color="black")
                left += share
            rest = 1.0 - left
            if rest > 0.001 and any(s is None for s in bar.shares):
                ax.barh(y, rest, left=left, color=HIDDEN, hatch="///", edgecolor="white", linewidth=0.5)
                used_hidden = True
        ax.set_yticks(ys, [b.label for b in bars])
        _rows_in_view(ax, len(bars))
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        handles = [mpl.patches.Patch(color=colours[i % len(colours)], label=label)
                   for i, label in enumerate(option_labels)]
        if used_hidden:
            handles.append(mpl.patches.Patch(facecolor=HIDDEN, hatch="///", label=hidden_label))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
                   frameon=False, fontsize=8)
        return _svg(fig, title)


def means(rows: Sequence[tuple[str, float | None, float | None, float | None, str | None]], low: float,
          high: float, title: str, overall: float | None = None, percent: bool = False,
          end_labels: tuple[str, str] | None = None) -> str:
    """Each group's mean (or share) with its 95 % interval; hidden groups say so.

    `end_labels`: what the lowest and highest rating mean ("Very hard", "Very easy"), written
    under the axis's end ticks, so that a mean of 2.8 can be read.
    """
    with mpl.rc_context(RC):
        fig = _figure(len(rows))
        ax = fig.subplots()
        ys = list(range(len(rows)))[::-1]
        for y, (_, value, lo, hi, marker) in zip(ys, rows, strict=True):
            if value is None:
                ax.text(low, y, f" {hidden_note(marker)}", va="center", ha="left", color="#555555")
                continue
            # A range past the end of the scale stops at it (the caption says so), as the axis does.
            err = ([[value - max(lo, low)], [min(hi, high) - value]] if lo is not None and hi is not None
                   else None)
            ax.errorbar(value, y, xerr=err, fmt="o", color=QUALITATIVE[0], ecolor="#555555", capsize=3)
        if overall is not None:
            ax.axvline(overall, color="#999999", linestyle="--", linewidth=1)
        ax.set_yticks(ys, [r[0] for r in rows])
        _rows_in_view(ax, len(rows))
        ax.set_xlim(low, high)
        if percent:
            ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
        elif end_labels:
            ticks = list(range(int(low), int(high) + 1))
            names = [str(x) for x in ticks]
            names[0] = f"{names[0]}\n{end_labels[0]}"
            names[-1] = f"{names[-1]}\n{end_labels[1]}"
            ax.set_xticks(ticks, names)
        ax.grid(axis="x", color="#eeeeee")
        return _svg(fig, title)


def representation_figure(rows: Sequence[tuple[str, float | None, str, str | None]], title: str,
                          threshold: float) -> Figure:
    """The representation chart as a matplotlib figure (`representation` draws it as SVG)."""
    with mpl.rc_context(RC):
        fig = _figure(len(rows))
        ax = fig.subplots()
        ys = list(range(len(rows)))[::-1]
        top = max([r[1] for r in rows if r[1] is not None] + [1.5])
        for y, (_, ratio, flag, marker) in zip(ys, rows, strict=True):
            colour = FLAG if flag == "under-represented" else QUALITATIVE[0]
            if ratio is None:
                note = hidden_note(marker)
                note += ": under-represented" if flag == "under-represented" else ""
                ax.text(0.02, y, note, va="center", ha="left", color=colour, bbox=LABEL_BOX, zorder=LABEL_Z)
                continue
            ax.barh(y, ratio, color=colour)
            ax.text(ratio + 0.02, y, f"{ratio:.2f}", va="center", fontsize=7, bbox=LABEL_BOX, zorder=LABEL_Z)
        ax.axvline(1.0, color="#555555", linewidth=1, zorder=2)
        ax.axvline(threshold, color=FLAG, linewidth=1, linestyle=":", zorder=2)
        ax.set_yticks(ys, [r[0] for r in rows])
        _rows_in_view(ax, len(rows))
        ax.set_xlim(0, top * 1.15)
        ax.set_xlabel(f"share of respondents ÷ share of the population (1 = as in the population, "
                      f"under-represented below the dotted line at {threshold:g})", wrap=True)
        return fig


def representation(rows: Sequence[tuple[str, float | None, str, str | None]], title: str,
                   threshold: float) -> str:
    """Representation ratio per group (1 = as in the population); flagged groups in orange."""
    return _svg(representation_figure(rows, title, threshold), title)


def heatmap(row_labels: Sequence[str], col_labels: Sequence[str],
            values: Sequence[Sequence[float | str | None]], title: str, percent: bool) -> str:
    """Priorities per group: darker is higher; each row's top option is outlined."""
    with mpl.rc_context(RC):
        fig = _figure(len(row_labels), width=max(5.0, 1.6 + 1.3 * len(col_labels)))
        ax = fig.subplots()
        numbers = [[v if isinstance(v, int | float) else float("nan") for v in row] for row in values]
        finite = [v for row in numbers for v in row if v == v]
        vmax = max(finite) if finite else 1.0
        ax.imshow(numbers, cmap="Blues", vmin=0, vmax=vmax or 1.0, aspect="auto")
        for i, row in enumerate(values):
            shown = [v for v in row if isinstance(v, int | float)]
            best = max(shown) if shown and len(shown) == len(row) else None
            for j, v in enumerate(row):
                if isinstance(v, int | float):
                    text = f"{v:.0%}" if percent else f"{v:.2f}"
                    dark = vmax and v / vmax > 0.6
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color="white" if dark else "black",
                            fontweight="bold" if best is not None and v == best else "normal")
                else:
                    ax.add_patch(mpl.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, color=HIDDEN))
                    ax.text(j, i, str(v or ""), ha="center", va="center", fontsize=8, color="#555555")
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=20, ha="right")
        ax.set_yticks(range(len(row_labels)), row_labels)
        ax.spines[:].set_visible(False)
        return _svg(fig, title)
