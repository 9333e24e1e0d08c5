"""Laying out the report model as one self-contained HTML file, an A4 PDF, Markdown, or JSON.

The HTML has no external resources at all (styles inline, charts as inline SVG), so it opens
offline, can be e-mailed, and prints on A4: the findings first (two pages at most), the detail
as an appendix. The PDF is that page printed by WeasyPrint with the same print stylesheet.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from html import escape
from typing import Any

from analysis import charts
from analysis.findings import build_findings, dimension_name, plain, scale_ends
from analysis.report import language_name
from analysis.summary import UNDER_REPRESENTED

CSS = """
:root { --ink:#1b1b1b; --muted:#5b5b5b; --line:#dddddd; --accent:#0072B2; --flag:#b34700; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans Arabic", Arial, sans-serif;
       color: var(--ink); max-width: 1100px; margin: 0 auto; padding: 24px; line-height: 1.45; }
h1 { font-size: 1.8rem; margin-bottom: .2rem; } h2 { border-bottom: 3px solid var(--accent);
  padding-bottom: .2rem; margin-top: 2.5rem; } h3 { margin-top: 1.8rem; } h4 { margin: 1.2rem 0 .4rem; }
.meta, .note { color: var(--muted); } .note { font-size: .9rem; }
nav ol { columns: 2; } nav a { color: var(--accent); }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: start; } thead th { background: #f4f6f8; }
tr.all td { font-weight: 600; background: #fafafa; }
.hidden { color: var(--muted); font-style: italic; white-space: nowrap; }
.flag { color: var(--flag); font-weight: 600; } .differs { background: #fff3d6; font-weight: 600; }
.top { font-weight: 700; } .chart { width: 100%; height: auto; max-width: 900px; display: block; }
.callout { border-inline-start: 4px solid var(--accent); background: #f4f8fb; padding: .6rem .9rem; margin: .8rem 0; }
.callout.warn { border-color: var(--flag); background: #fff6ef; }
blockquote { margin: .3rem 0; padding: .3rem .8rem; border-inline-start: 3px solid var(--line);
  unicode-bidi: plaintext; }
.words span { display: inline-block; background: #eef4fa; border-radius: 3px; padding: 0 .4rem; margin: 0 .2rem .2rem 0; }
.block { break-inside: avoid; }
.legend { border: 1px solid var(--line); padding: .4rem .8rem; font-size: .9rem; margin: .8rem 0; }
.legend b { font-family: ui-monospace, monospace; }
.caption { color: var(--muted); font-size: .85rem; margin: .2rem 0 .8rem; max-width: 900px; }
#findings h2 { margin-top: 1.2rem; } #findings h3 { margin: 1rem 0 .3rem; font-size: 1.05rem; }
#findings ul { margin: .2rem 0 .6rem; padding-inline-start: 1.2rem; } #findings li { margin: .25rem 0; }
#findings blockquote { font-style: italic; } #findings li.quote { list-style: none; } #findings td, #findings th { text-align: start; }
#appendix > h2 { border-bottom-width: 6px; }
@page { size: A4; margin: 12mm 14mm 14mm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #5b5b5b; } }
@media print {
  body { padding: 0; max-width: none; font-size: 9pt; line-height: 1.3; } nav { display: none; }
  h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.2rem; } h3 { font-size: 11pt; margin-top: 1rem; }
  h4 { font-size: 9.5pt; } h2, h3, h4 { break-after: avoid; }
  #findings { font-size: 9.5pt; } #findings table { font-size: 8.5pt; }
  #appendix { break-before: page; } section.part { break-before: auto; }
  table { font-size: 8pt; margin: .3rem 0 .6rem; } th, td { padding: .1rem .4rem; }
  .chart { max-width: 125mm; break-inside: avoid; } .callout { padding: .3rem .6rem; margin: .4rem 0; }
  /* Blocks may break between a chart and its table (each stays whole), so pages fill up. */
  .block { break-inside: auto; } #findings li { break-inside: avoid; }
  .caption { font-size: 7.5pt; } tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _by(d: dict[str, Any]) -> str:
    """A section heading: "By community" (the dimension's id in words, not its question), or
    "Everyone" when no group dimension is answered yet."""
    return f"By {dimension_name(d)}" if d["id"] else d["title"]


def _t(text: Any) -> str:
    """A text from the campaign (in the report's language): isolated, its direction from its own letters.

    The page itself is left to right, since the report's own wording is English; `<bdi>` keeps an
    Arabic or Persian label from reordering the English sentence around it, and the sentence
    from reordering the label.
    """
    return f"<bdi>{escape(str(text))}</bdi>"


def _by_html(d: dict[str, Any]) -> str:
    return escape(_by(d))


def _asked(d: dict[str, Any]) -> str:
    """The group question as people were asked it, beside a heading that names the dimension."""
    return f' <small class="meta">(asked: “{_t(d["title"])}”)</small>' if d["id"] else ""


def _whole(v: Any) -> str:
    """An effective sample size: a whole number (its decimals mean nothing to a reader)."""
    return f"{round(v):,}" if _is_num(v) else count(v)


def _agree(schemes: list[str]) -> str:
    """What agreeing orders means, naming only the orders that are shown."""
    names = {"unweighted": "unweighted", "population": "population-weighted", "solidarity": "solidarity"}
    shown = [names[s] for s in schemes]
    text = (" and ".join(shown) if len(shown) == 2 else ", ".join(shown[:-1]) + " and " + shown[-1])
    text = f"The {text} orders agree."
    if "solidarity" not in schemes:
        text += " Give need weights with --weights for the solidarity order."
    return text


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# How a hidden figure is shown. A count below the threshold keeps "<10" (it reads truly: fewer
# than 10 people); everything else hidden, shares, averages and ranges above all, shows "[c]",
# a mark that cannot be read as a value ("<10" in a per cent column read as "under 10 %"). The
# codes follow the UK Government Statistical Service's guidance on symbols in tables.
HIDDEN = "[c]"


def mark(v: Any, is_count: bool = False) -> str:
    """The mark for a hidden figure: "<10" for a count below the threshold, else "[c]"."""
    return str(v) if is_count and str(v).startswith("<") else HIDDEN


def legend(k: int) -> str:
    """The marks, explained once (HTML)."""
    return (f'<p class="legend">Marks in the tables: <b>&lt;{k}</b> a count of fewer than {k} people, '
            f"hidden to protect them · <b>{HIDDEN}</b> a figure hidden to protect small groups (a share, "
            f"average or count that rests on fewer than {k} people, or would let one be worked out "
            "from the totals) · <b>–</b> does not apply.</p>")


def _hidden(v: Any, is_count: bool = False) -> str:
    # <bdi> so that "<10" never turns into "10>" next to right-to-left text.
    return (f'<span class="hidden" title="hidden to protect small groups"><bdi dir="ltr">'
            f"{escape(mark(v, is_count))}</bdi></span>")


def count(v: Any) -> str:
    return f"{v:,}" if _is_num(v) else _hidden(v, is_count=True) if v else "–"


def share(v: Any) -> str:
    return f"{v:.1%}" if _is_num(v) else _hidden(v) if v else "–"


def mean(v: Any, digits: int = 1) -> str:
    return f"{v:.{digits}f}" if _is_num(v) else _hidden(v) if v else "–"


def _table(head: list[str], rows: list[tuple[list[str], str]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    for cells, cls in rows:
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out.extend(f"<td>{c}</td>" for c in cells)
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _row_class(row: dict[str, Any]) -> str:
    return "all" if row["group"] == "(all)" else ""


def _reach_html(m: dict[str, Any]) -> str:
    r = m["reach"]
    o = r["overall"]
    out = ['<section class="part" id="reach"><h2>1. Who took part</h2>',
           f'<p>{count(o["started"])} people started; {count(o["completed"])} finished '
           f'({share(o["completion"])}).</p>']
    for d in r["dimensions"]:
        out.append(f'<div class="block"><h3>{_by_html(d)}{_asked(d)}</h3>')
        if d["under_represented"]:
            names = ", ".join(_t(x) for x in d["under_represented"])
            out.append(f'<p class="callout warn"><span class="flag">Under-represented:</span> {names}. '
                       "Their share among respondents is below "
                       f"{UNDER_REPRESENTED:.0%} of their share in the population: reach them through "
                       "partners they trust before drawing conclusions.</p>")
        head = ["Group", "Started", "Finished", "Completion"]
        if d["has_baseline"]:
            head += ["Share of respondents", "Share of population", "Representation", ""]
        rows = []
        for row in d["rows"]:
            cells = [_t(row["label"]), count(row["started"]), count(row["completed"]), share(row["completion"])]
            if d["has_baseline"]:
                flag = row["flag"]
                cells += [share(row["sample_share"]), share(row["population_share"]), mean(row["ratio"], 2),
                          '<span class="flag">under-represented</span>' if flag == "under-represented"
                          else escape(flag if flag == "unknown" else "")]
            rows.append((cells, ""))
        out.append(_table(head, rows))
        if d["has_baseline"]:
            out.append('<p class="caption">Representation: the group\'s share of respondents ÷ its share of '
                       f"the population; 1.00 = as in the population, below {UNDER_REPRESENTED:.2f} = "
                       "under-represented.</p>")
        if d["has_baseline"] and d.get("share_base") == "asked":
            out.append('<p class="note">Shares of respondents are of everyone asked this question, those who '
                       "preferred not to say included: how many named a group is hidden, since with the "
                       "total it would give away a small number.</p>")
        if d["has_baseline"]:
            chart_rows = [(row["label"], row["ratio"] if _is_num(row["ratio"]) else None, row["flag"],
                           row["ratio"] if not _is_num(row["ratio"]) else None)
                          for row in d["rows"] if row["population_share"] is not None]
            out.append(charts.representation(chart_rows, f"Representation {_by(d).lower()}", UNDER_REPRESENTED))
        out.append("</div>")
    out.append('<div class="block"><h3>Invite links and partners</h3>')
    out.append(_table(["Link", "Partner", "Started", "Finished", "Completion"],
                      [([escape(x["group"]), escape(x.get("partner", "")), count(x["started"]),
                         count(x["completed"]), share(x["completion"])], "") for x in r["invites"]]))
    out.append('</div><div class="block"><h3>Languages</h3>')
    out.append(_table(["Language", "Started", "Finished", "Completion"],
                      [([_t(x["label"]), count(x["started"]), count(x["completed"]), share(x["completion"])], "")
                       for x in r["languages"]]))
    out.append('</div><div class="block"><h3>Voice notes</h3><p class="note">People who chose to hear the '
               'questions as voice notes (🔊 or /listen): the reach to people who do not read.</p>')
    out.append(_table(["", "Started", "Finished", "Completion"],
                      [([escape(x["group"].capitalize()), count(x["started"]), count(x["completed"]),
                         share(x["completion"])], "") for x in r.get("listening", [])]))
    out.append("</div></section>")
    return "".join(out)


def _gap_text(gap: dict[str, Any] | None, fmt: Callable[[Any], str]) -> str:
    if not gap:
        return '<p class="note">Too few groups with published figures to compare.</p>'
    what = f' choosing “{_t(gap["option"])}”' if "option" in gap else ""
    if not gap["gap"]:
        return (f'<p class="callout">No gap between groups{what}: every group with a published figure '
                f'gave {fmt(gap["highest_value"])}.</p>')
    return (f'<p class="callout">Gap between groups{what}: <b>{fmt(gap["gap"])}</b> — highest '
            f'{_t(gap["highest"])} ({fmt(gap["highest_value"])}), lowest {_t(gap["lowest"])} '
            f'({fmt(gap["lowest_value"])}).</p>')


def rating_options(sec: dict[str, Any]) -> list[str]:
    """A rating's options with the meaning of its ends: "1 = Very hard", "2", ..., "5 = Very easy"."""
    low, high = scale_ends(sec)
    labels = [str(o["label"]) for o in sec["options"]]
    if labels:
        labels[0] = f"{labels[0]} = {low}"
        labels[-1] = f"{labels[-1]} = {high}"
    return labels


def mean_heading(sec: dict[str, Any]) -> str:
    """"Mean (1 = Very hard, 5 = Very easy)": a mean can be read only with its scale's ends."""
    low, high = scale_ends(sec)
    return f"Mean (1 = {low}, {sec['scale']} = {high})"


INTERVAL_CAPTION = ("Each dot is a group's {what}; the line through it is its likely range (a 95 % confidence "
                    "interval): where the true figure for the whole group probably lies. Few answers give a wide "
                    "range; a range that meets the end of the scale stops there, so its line may run one way only. "
                    "Groups whose ranges overlap may not really differ.")


RANGE_LINE = ("“Likely range”: where the whole group's {what} probably lies (a 95 % confidence interval); few "
              "answers give a wide range, and groups whose ranges overlap may not really differ.")


def _coassessment_html(m: dict[str, Any]) -> str:
    out = ['<section class="part" id="coassessment"><h2>2. How the service worked, group by group</h2>']
    for sec in m["coassessment"]:
        out.append(f'<h3>{_t(sec["text"])} <small class="meta">({escape(sec["question"])}, {sec["type"]})</small></h3>')
        option_labels = (rating_options(sec) if sec["type"] == "rating" else [o["label"] for o in sec["options"]])
        colours = (charts.rating_colours(len(option_labels)) if sec["type"] == "rating"
                   else list(charts.QUALITATIVE))
        for d in sec["dimensions"]:
            out.append(f'<div class="block"><h4>{_by_html(d)}</h4>')
            if sec["type"] != "multi":
                bars = [charts.Bar(r["label"], [x["share"] if _is_num(x["share"]) else None for x in r["distribution"]],
                                   None if _is_num(r["n"]) else str(r["n"])) for r in d["rows"]]
                out.append(charts.stacked_bars(bars, option_labels, colours, f'{sec["text"]} {_by(d).lower()}',
                                               "hidden to protect small groups"))
            if sec["type"] == "rating":
                rows = [(r["label"], r["mean"] if _is_num(r["mean"]) else None,
                         r["ci_low"] if _is_num(r["ci_low"]) else None,
                         r["ci_high"] if _is_num(r["ci_high"]) else None,
                         None if _is_num(r["mean"]) else str(r["mean"])) for r in d["rows"]]
                overall = next((r["mean"] for r in d["rows"] if r["group"] == "(all)" and _is_num(r["mean"])), None)
                out.append(charts.means(rows, 1, sec["scale"], f'Mean {sec["text"]} {_by(d).lower()}', overall,
                                        end_labels=scale_ends(sec)))
                out.append(f'<p class="caption">{escape(INTERVAL_CAPTION.format(what="average rating"))} '
                           "The dashed line is everyone's average.</p>")
                out.append(_gap_text(d["gap"], lambda v: mean(v)))
            elif sec["type"] == "yesno":
                rows = [(r["label"], r["yes_share"] if _is_num(r["yes_share"]) else None,
                         r["ci_low"] if _is_num(r["ci_low"]) else None,
                         r["ci_high"] if _is_num(r["ci_high"]) else None,
                         None if _is_num(r["yes_share"]) else str(r["yes_share"])) for r in d["rows"]]
                out.append(charts.means(rows, 0, 1, f'Share answering yes {_by(d).lower()}', percent=True))
                out.append(f'<p class="caption">{escape(INTERVAL_CAPTION.format(what="share answering yes"))}</p>')
                out.append(_gap_text(d["gap"], share))
            else:
                out.append(_gap_text(d["gap"], share))
            head = ["Group", "Answers", *[_t(x) for x in option_labels]]
            if sec["type"] == "rating":
                head += [escape(mean_heading(sec)), "Likely range"]
            if sec["type"] == "yesno":
                head += ["Share yes", "Likely range"]
            rows_html = []
            for r in d["rows"]:
                cells = [_t(r["label"]), count(r["n"])]
                cells += [f'{count(x["n"])}<br><small>{share(x["share"])}</small>' if _is_num(x["n"]) else count(x["n"])
                          for x in r["distribution"]]
                if sec["type"] == "rating":
                    ci = (f'{mean(r["ci_low"])}–{mean(r["ci_high"])}' if _is_num(r["ci_low"]) else mean(r["ci_low"]))
                    cells += [mean(r["mean"]), ci]
                if sec["type"] == "yesno":
                    ci = (f'{share(r["ci_low"])}–{share(r["ci_high"])}' if _is_num(r["ci_low"]) else share(r["ci_low"]))
                    cells += [share(r["yes_share"]), ci]
                rows_html.append((cells, _row_class(r)))
            out.append(_table(head, rows_html))
            out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _codesign_html(m: dict[str, Any]) -> str:
    lang = m["campaign"]["language"]
    out = ['<section class="part" id="codesign"><h2>3. Ideas and pain points, in people\'s own words</h2>',
           '<p class="note">Answers are shown as written (contact details were removed when they were '
           "given). Groups and languages with fewer answers than the threshold are not quoted.</p>"]
    for sec in m["codesign"]:
        out.append(f'<h3>{_t(sec["text"])} <small class="meta">({escape(sec["question"])})</small></h3>')
        for d in sec["dimensions"]:
            out.append(f'<h4>{_by_html(d)}</h4>')
            head = ["Group", "Answers", "Written"] + (["Voice notes"] if sec["voice"] else [])
            rows = [([_t(r["label"]), count(r["answers"]), count(r["written"])]
                     + ([count(r["voice_notes"])] if sec["voice"] else []), _row_class(r)) for r in d["rows"]]
            out.append(_table(head, rows))
            for r in d["rows"]:
                if not r["words"] and not r["quotes"]:
                    continue
                out.append(f'<div class="block"><h4>{_t(r["label"])}</h4>')
                if r["words"]:
                    words = "".join(f'<span dir="auto">{escape(w)}' + (f" <small>{n}</small>" if n else "") + "</span>"
                                    for w, n in r["words"])
                    out.append(f'<p class="words">Frequent words: {words}</p>')
                for block in r["quotes"]:
                    out.append(f'<p class="note">In {_t(language_name(block["language"], lang))}:</p>')
                    out.extend(f'<blockquote lang="{escape(q["language"], quote=True)}" dir="auto">'
                               f'{escape(q["text"])}</blockquote>' for q in block["texts"])
                out.append("</div>")
    out.append("</section>")
    return "".join(out)


RELIABLE = ("“As reliable as N equally weighted answers”: weighting makes some people count more than "
            "others, so a weighted order rests on fewer answers than it seems (Kish's effective sample size); "
            "the further N falls below the number of answers, the more it rests on a few people.")


def measure(sec: dict[str, Any]) -> str:
    """What a priority score is, in one line, without "Borda"."""
    if sec["type"] == "budget":
        return ("Figures: the average share of each person's coins given to the option (everyone's coins "
                "count the same, however many they spent).")
    pick = sec.get("pick") or len(sec["options"])
    places = ", ".join(f"{pick - i} for a {_ordinal(i + 1)} choice" for i in range(min(pick, 3)))
    more = ", and so on" if pick > 3 else ""
    return f"Figures: average points, {places}{more}, 0 when not chosen; higher means wanted more."


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


SCHEME_TITLES = {"unweighted": "Everyone equal", "population": "Weighted to the population",
                 "solidarity": "Solidarity (need) weighted"}


def _cocommissioning_html(m: dict[str, Any]) -> str:
    w = m["weighting"]
    out = ['<section class="part" id="cocommissioning"><h2>4. Priorities for co-commissioning</h2>',
           '<p class="note">The overall order is shown three ways: every respondent equal; weighted so that '
           "groups count as in the population; and weighted towards those in greatest need (solidarity). "
           "Where the orders differ is the point: it shows whose priorities an unweighted count would "
           "bury.</p>"]
    if w["solidarity"] is None:
        out.append('<p class="callout">No need weights were given, so the solidarity order is not shown. '
                   "Give them with <code>--weights FILE.csv</code> (columns dimension,group,weight).</p>")
    if not w["population"]["dimensions"]:
        out.append('<p class="callout">No baseline to weight to, so the population order is not shown. '
                   "Add population shares to the campaign's baseline or give <code>--baseline FILE.csv</code>.</p>")
    for sec in m["cocommissioning"]:
        out.append(f'<h3>{_t(sec["text"])} <small class="meta">({escape(sec["question"])})</small></h3>')
        out.append(f'<p class="caption">{escape(measure(sec))}</p>')
        fmt = share if sec["type"] == "budget" else (lambda v: mean(v, 2))
        ov = sec["overall"]
        if ov is None:
            out.append('<p class="note">Fewer answers than the threshold: no overall order.</p>')
        else:
            head = ["Option"] + [f'{SCHEME_TITLES[s]}<br><small>as reliable as {_whole(ov["effective_size"][s])} '
                                 "equally weighted answers</small>" for s in ov["schemes"]]
            rows = []
            for r in ov["options"]:
                cells = [_t(r["label"])]
                for s in ov["schemes"]:
                    cells.append(f'{fmt(r[s])} <small>(#{r[s + "_rank"]})</small>')
                rows.append((cells, "differs" if r["differs"] else ""))
            out.append('<div class="block">' + _table(head, rows))
            for ch in ov["top_changes"]:
                out.append(f'<p class="callout warn">{escape(SCHEME_TITLES[ch["scheme"]])}: the top priority '
                           f'changes from “{_t(ch["from"])}” to “{_t(ch["to"])}”.</p>')
            if not ov["orders_differ"] and len(ov["schemes"]) > 1:
                out.append(f'<p class="note">{_agree(ov["schemes"])}</p>')
            if len(ov["schemes"]) > 1:
                out.append(f'<p class="caption">{escape(RELIABLE)}</p>')
            out.append("</div>")
        labels = [o["label"] for o in sec["options"]]
        for d in sec["dimensions"]:
            out.append(f'<div class="block"><h4>{_by_html(d)}</h4>')
            out.append(charts.heatmap([r["label"] for r in d["rows"]], labels,
                                      [[r["scores"][o["option"]] for o in sec["options"]] for r in d["rows"]],
                                      f'{sec["text"]} by {d["title"]}', percent=sec["type"] == "budget"))
            rows = []
            for r in d["rows"]:
                cells = [_t(r["label"]), count(r["n"])]
                for o in sec["options"]:
                    v = fmt(r["scores"][o["option"]])
                    cells.append(f'<span class="top">{v}</span>' if r["top"] == o["option"] else v)
                rows.append((cells, _row_class(r)))
            out.append(_table(["Group", "Answers", *[_t(x) for x in labels]], rows))
            out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _method_html(m: dict[str, Any]) -> str:
    k = m["campaign"]["min_group_size"]
    w = m["weighting"]
    pop = w["population"]
    items = [f"<li><b>&lt;{k}</b>: a count of fewer than {k} people, hidden to protect them.</li>",
             f"<li><b>{HIDDEN}</b>: any other hidden figure: a share, average or range that rests on fewer "
             f"than {k} people, or a count hidden so that a '&lt;{k}' cannot be worked out from the totals.</li>"]
    out = ['<section class="part" id="method"><h2>How to read this report</h2><ul>', *items, "</ul>",
           f"<p>Every count, share, mean and chart bar resting on fewer than {k} people is hidden, and "
           "enough other figures are hidden with it that no hidden figure can be worked out by "
           "subtracting published ones from totals. Means are given to one decimal and shares to one "
           "decimal of a per cent for the same reason.</p>",
           "<p>Likely ranges are 95 % confidence intervals: Student's t for average ratings, Wilson's score "
           "interval for yes-shares. A wide range means few answers: compare groups with care.</p>"]
    if pop["dimensions"]:
        missing = "; ".join(f'{escape(d)}: {", ".join(_t(g) for g in gs)}' for d, gs in pop["missing"].items())
        out.append(f'<p>Population weights: raking to the baseline ({escape(pop["source"])}) on '
                   f'{escape(", ".join(pop["dimensions"]))}, with weightipy. Effective sample size (Kish): '
                   f'{_whole(pop["effective_size"])}.'
                   + (f" Groups with no respondents cannot be weighted up: {missing}." if missing else "")
                   + f' Weights are capped at {pop["cap"]:g} times the average, so that a handful of people '
                   "cannot carry the result"
                   + ("; these groups stay below their population share even so: "
                      + "; ".join(f'{escape(d)}: {", ".join(_t(g) for g in gs)}' for d, gs in pop["short"].items())
                      if pop["short"] else "") + "."
                   + (f' {escape(pop["note"])}.' if pop["note"] else "") + "</p>")
    if w["solidarity"]:
        weights = "; ".join(f"{escape(d)}: " + ", ".join(f"{_t(g)} ×{v:g}" for g, v in ws.items())
                            for d, ws in w["solidarity"]["weights"].items())
        out.append(f"<p>Solidarity weights: population weights times need weights ({weights}); a person "
                   "in several weighted groups gets the product. Effective sample size: "
                   f'{_whole(w["solidarity"]["effective_size"])}.</p>')
    out.append("</section>")
    return "".join(out)


def _sentence_html(sentence: list[Any]) -> str:
    out = []
    for part in sentence:
        if isinstance(part, str):
            out.append(escape(part))
        elif "quote" in part:
            out.append(f'<blockquote lang="{escape(part["language"], quote=True)}" dir="auto">'
                       f'{escape(part["quote"])}</blockquote>')
        else:
            out.append(_t(part["t"]))
    return "".join(out)


def _findings_html(m: dict[str, Any]) -> str:
    """The opening findings: who took part and who is missing, ratings with their meaning, each
    group's top priorities, what people said most. Two A4 pages at most."""
    f = m.get("findings") or build_findings(m)
    k = m["campaign"]["min_group_size"]
    out = ['<section id="findings"><h2>Findings</h2>',
           f'<p class="note">The main results in plain words. Every figure here is in the tables of the appendix; '
           f"figures resting on fewer than {k} people are never shown.</p>"]
    for sec in f["sections"]:
        out.append(f'<div class="block"><h3>{escape(sec["title"])}</h3><ul>')
        out.extend(f'<li class="quote">{_sentence_html(s)}</li>' if len(s) == 1 and "quote" in s[0]
                   else f"<li>{_sentence_html(s)}</li>" for s in sec["sentences"])
        out.append("</ul>")
        table = f["top_priorities"]
        if sec["id"] == "priorities" and table:
            head = ["Group", *[f"First choice: {_t(q)}" for q in table["questions"]]]
            rows = [([f'{_t(r["label"])} <small class="meta">({escape(r["dimension"])})</small>',
                      *[_t(x) if x else _hidden(HIDDEN) for x in r["tops"]]], "") for r in table["rows"]]
            out.append(_table(head, rows))
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def render_html(m: dict[str, Any], appendix: bool = True) -> str:
    """The report as one self-contained HTML page: the findings, then (unless `appendix` is
    False) the detail group by group and how to read it."""
    c = m["campaign"]
    title = escape(c["title"] or c["id"])
    lang = escape(c["language"], quote=True)
    parts = [f'<!doctype html><html lang="en" dir="ltr"><head>'
             f'<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{title} — report by group</title><style>{CSS}</style></head><body>",
             f'<header><h1 lang="{lang}" dir="auto">{title}</h1>',
             f'<p class="meta">{escape(c["service"] or "")} · campaign {escape(c["id"])} · generated '
             f'{escape(c["generated_at"])}</p>', legend(c["min_group_size"]), "</header>",
             '<nav><ol><li><a href="#findings">Findings</a></li><li><a href="#reach">Who took part</a></li>'
             '<li><a href="#coassessment">How the service worked, group by group</a></li><li><a href="#codesign">'
             'Ideas and pain points</a></li><li><a href="#cocommissioning">Priorities</a></li><li><a href="#method">'
             "How to read this report</a></li></ol></nav>" if appendix else "",
             *([f'<p class="callout">Nobody has named a group for {escape(", ".join(c["unanswered_dimensions"]))} '
                'yet, so those questions are left out of the tables.</p>'] if c.get("unanswered_dimensions") else []),
             _findings_html(m)]
    if appendix:
        parts += ['<div id="appendix"><h2>Appendix: the detail, group by group</h2>',
                  _reach_html(m), _coassessment_html(m), _codesign_html(m), _cocommissioning_html(m),
                  _method_html(m), "</div>"]
    parts.append("</body></html>")
    return "".join(parts)


class PdfUnavailable(RuntimeError):
    """WeasyPrint or the system libraries it draws text with (Pango) are not installed."""


def render_pdf(m: dict[str, Any], appendix: bool = True) -> bytes:
    """The report as an A4 PDF: the HTML page printed by WeasyPrint with its print stylesheet.

    The charts are SVG with their text kept as text, so Pango shapes Arabic and Persian labels
    as the browser does; headings become the PDF's bookmarks.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: the Pango libraries are missing
        raise PdfUnavailable(
            "a PDF needs WeasyPrint and the Pango library (pip install weasyprint; on Debian or Ubuntu "
            "apt-get install libpango-1.0-0 libpangoft2-1.0-0)") from exc
    html = render_html(m, appendix=appendix)
    return bytes(weasyprint.HTML(string=html, base_url=None).write_pdf())


def _md_interval(row: dict[str, Any], kind: str) -> str:
    """"low–high", or the one mark of a hidden interval (not "<10–<10")."""
    if not _is_num(row["ci_low"]):
        return _md(row["ci_low"], kind)
    return f"{_md(row['ci_low'], kind)}–{_md(row['ci_high'], kind)}"


def _md(v: Any, kind: str = "count") -> str:
    if not _is_num(v):
        return mark(v, is_count=kind == "count") if v else "–"
    if kind == "share":
        return f"{v:.1%}"
    if kind == "mean":
        return f"{v:.1f}"
    if kind == "points":
        return f"{v:.2f}"
    return f"{v:,}"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def clean(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(clean(h) for h in head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(clean(c) for c in r) + " |" for r in rows), ""]


def render_markdown(m: dict[str, Any]) -> str:
    """The report as Markdown tables (no charts), for wikis and e-mails."""
    c = m["campaign"]
    k = c["min_group_size"]
    out = [f"# {c['title']}", "", f"Campaign `{c['id']}` · generated {c['generated_at']}", "",
           f"Marks in the tables: `<{k}` a count of fewer than {k} people, hidden to protect them · `{HIDDEN}` a "
           f"figure hidden to protect small groups (a share, average or count that rests on fewer than {k} "
           "people, or would let one be worked out from the totals) · `–` does not apply.", ""]
    if c.get("unanswered_dimensions"):
        out += [f"Nobody has named a group for {', '.join(c['unanswered_dimensions'])} yet; left out.", ""]
    f = m.get("findings") or build_findings(m)
    out += ["## Findings", ""]
    for sec in f["sections"]:
        out += [f"### {sec['title']}", ""]
        out += [f"* {plain(x)}" for x in sec["sentences"]] + [""]
        table = f["top_priorities"]
        if sec["id"] == "priorities" and table:
            out += _md_table(["Group", *[f"First choice: {q}" for q in table["questions"]]],
                             [[f"{x['label']} ({x['dimension']})", *[y or HIDDEN for y in x["tops"]]]
                              for x in table["rows"]])
    out += ["# Appendix: the detail, group by group", ""]
    r = m["reach"]
    out += ["## 1. Who took part", "",
            f"{_md(r['overall']['started'])} started, {_md(r['overall']['completed'])} finished.", ""]
    for d in r["dimensions"]:
        out += [f"### {_by(d)} (asked: “{d['title']}”)", ""]
        if d["under_represented"]:
            out += [f"**Under-represented:** {', '.join(d['under_represented'])}", ""]
        out += [f"Representation: the group's share of respondents ÷ its share of the population; 1.00 = as in "
                f"the population, below {UNDER_REPRESENTED:.2f} = under-represented.", ""]
        out += _md_table(["Group", "Started", "Finished", "Completion", "Representation", "Flag"],
                         [[x["label"], _md(x["started"]), _md(x["completed"]), _md(x["completion"], "share"),
                           _md(x["ratio"], "points") if x["ratio"] is not None else "–", x["flag"]]
                          for x in d["rows"]])
    out += ["### Invite links and partners", ""]
    out += _md_table(["Link", "Partner", "Started", "Finished"],
                     [[x["group"], x.get("partner", ""), _md(x["started"]), _md(x["completed"])] for x in r["invites"]])
    out += ["### Voice notes (people who chose to hear the questions)", ""]
    out += _md_table(["", "Started", "Finished"],
                     [[x["group"].capitalize(), _md(x["started"]), _md(x["completed"])] for x in r.get("listening", [])])
    out += ["## 2. How the service worked, group by group", ""]
    for sec in m["coassessment"]:
        out += [f"### {sec['text']} ({sec['question']})", ""]
        labels = rating_options(sec) if sec["type"] == "rating" else [o["label"] for o in sec["options"]]
        if sec["type"] in ("rating", "yesno"):
            out += [RANGE_LINE.format(what="average rating" if sec["type"] == "rating" else "share answering yes"), ""]
        for d in sec["dimensions"]:
            extra = ([mean_heading(sec), "Likely range"] if sec["type"] == "rating"
                     else ["Share yes", "Likely range"] if sec["type"] == "yesno" else [])
            rows = []
            for x in d["rows"]:
                cells = [x["label"], _md(x["n"])] + [_md(y["share"], "share") for y in x["distribution"]]
                if sec["type"] == "rating":
                    cells += [_md(x["mean"], "mean"), _md_interval(x, "mean")]
                if sec["type"] == "yesno":
                    cells += [_md(x["yes_share"], "share"), _md_interval(x, "share")]
                rows.append(cells)
            out += [f"{_by(d)}:", ""] + _md_table(["Group", "Answers", *labels, *extra], rows)
            if d["gap"]:
                g = d["gap"]
                kind = "mean" if g["field"] == "mean" else "share"
                out += [f"Gap: {_md(g['gap'], kind)} (highest {g['highest']}, lowest {g['lowest']})." if g["gap"]
                        else f"No gap between groups: every group with a published figure gave "
                             f"{_md(g['highest_value'], kind)}.", ""]
    out += ["## 3. Ideas and pain points, in people's own words", ""]
    for sec in m["codesign"]:
        out += [f"### {sec['text']} ({sec['question']})", ""]
        for d in sec["dimensions"]:
            out += [f"{_by(d)}:", ""]
            out += _md_table(["Group", "Answers", "Written", "Voice notes"],
                             [[x["label"], _md(x["answers"]), _md(x["written"]), _md(x["voice_notes"])] for x in d["rows"]])
            for x in d["rows"]:
                if x["words"]:
                    out += [f"**{x['label']}** — frequent words: "
                            + ", ".join(f"{w} ({n})" if n else w for w, n in x["words"]), ""]
                for block in x["quotes"]:
                    out += [f"*{x['label']}, in {language_name(block['language'], m['campaign']['language'])}:*", ""]
                    out += [f"> {q['text']}" for q in block["texts"]] + [""]
    out += ["## 4. Priorities for co-commissioning", ""]
    for sec in m["cocommissioning"]:
        kind = "share" if sec["type"] == "budget" else "points"
        out += [f"### {sec['text']} ({sec['question']})", "", measure(sec), ""]
        ov = sec["overall"]
        if ov:
            head = ["Option"] + [f"{SCHEME_TITLES[s]} (as reliable as {_whole_md(ov['effective_size'][s])} equally "
                                 "weighted answers)" for s in ov["schemes"]]
            out += _md_table(head, [[("**" + x["label"] + "**") if x["differs"] else x["label"]]
                                    + [f"{_md(x[s], kind)} (#{x[s + '_rank']})" for s in ov["schemes"]]
                                    for x in ov["options"]])
            out += [f"Top priority changes ({SCHEME_TITLES[ch['scheme']]}): {ch['from']} → {ch['to']}." for ch in ov["top_changes"]]
            out += ["", RELIABLE, ""] if len(ov["schemes"]) > 1 else [""]
        labels = [o["label"] for o in sec["options"]]
        for d in sec["dimensions"]:
            out += [f"{_by(d)}:", ""]
            out += _md_table(["Group", "Answers", *labels],
                             [[x["label"], _md(x["n"])] + [_md(x["scores"][o["option"]], kind) for o in sec["options"]]
                              for x in d["rows"]])
    return "\n".join(out) + "\n"


def _whole_md(v: Any) -> str:
    return f"{round(v):,}" if _is_num(v) else mark(v, is_count=True)


def _no_nan(value: Any) -> Any:
    """A figure nobody's answer supports (a mean of no coins) is NaN in the model; JSON has no
    NaN, and readers of the file expect null for "no figure"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def render_json(m: dict[str, Any]) -> str:
    """The report model itself, as indented JSON (hidden figures are the strings "<10" and "c";
    a figure that no answer supports is null)."""
    return json.dumps(_no_nan(m), ensure_ascii=False, indent=2, allow_nan=False)
