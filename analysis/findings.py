"""The report's opening findings in plain words, built from the protected report model alone.

Findings read only figures the model already publishes (every one has passed disclosure
control), so they cost nothing at a million answers and can never show more than the tables.
A sentence is a list of parts: plain English strings (the report's own words) and `{"t": text}`
for a text from the campaign (a question, group or option, in the report's language), which the
HTML isolates so that an Arabic label cannot reorder the English sentence around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Part = str | dict[str, str]
Sentence = list[Part]

EVERYONE = "(all)"
NOT_A_GROUP = {EVERYONE, "prefer_not_to_say", "(not asked)"}
QUOTES = 3  # quotes in the findings; the appendix has the rest
QUOTE_CHARS = 220
WORDS = 6
SIDE = 0.4  # a mean in the lowest or highest 40 % of the scale is "nearer" that end


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def t(text: Any) -> dict[str, str]:
    """A campaign text (isolated in HTML)."""
    return {"t": str(text)}


def dimension_name(d: dict[str, Any]) -> str:
    """A group dimension in a word or two ("community", "age"): its id, not its question."""
    return str(d["id"]).replace("_", " ").replace("-", " ") if d.get("id") else "everyone"


def people(v: Any, noun: str = " people") -> str:
    """A protected count in words: "1,234 people", "fewer than 10 people", "a hidden number of people"
    (without a noun: "1,234", "fewer than 10", "hidden")."""
    if _num(v):
        return f"{v:,}{noun}"
    if isinstance(v, str) and v.startswith("<"):
        return f"fewer than {v[1:]}{noun}"
    return f"a hidden number of{noun}" if noun else "hidden"


def percent(v: float) -> str:
    return f"{v:.0%}".replace("%", " %")


def _join(items: Sequence[Sentence], last: str = "and") -> Sentence:
    out: Sentence = []
    for i, item in enumerate(items):
        if i:
            out.append(f" {last} " if i == len(items) - 1 else ", ")
        out += item
    return out


def _group(row: dict[str, Any], d: dict[str, Any]) -> Sentence:
    return [t(row["label"]), f" ({dimension_name(d)})"]


def _groups(dimensions: Iterable[dict[str, Any]]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for d in dimensions:
        if not d.get("id"):
            continue
        for row in d["rows"]:
            if row["group"] not in NOT_A_GROUP:
                yield d, row


def _everyone(dimensions: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for d in dimensions:
        for row in d["rows"]:
            if row["group"] == EVERYONE:
                return row
    return None


def _extremes(dimensions: Sequence[dict[str, Any]], field: str, fmt: Any) -> Sentence:
    """" Lowest: X 2.1; highest: Y 3.4." over every group with a published figure."""
    shown = [(d, r) for d, r in _groups(dimensions) if _num(r.get(field))]
    if len(shown) < 2:
        return []
    lo = min(shown, key=lambda dr: dr[1][field])
    hi = max(shown, key=lambda dr: dr[1][field])
    if lo[1][field] == hi[1][field]:
        return [" Every group with a published figure gave about the same."]
    return [" Lowest: ", *_group(lo[1], lo[0]), f" {fmt(lo[1][field])}; highest: ", *_group(hi[1], hi[0]),
            f" {fmt(hi[1][field])}."]


def scale_ends(section: dict[str, Any]) -> tuple[str, str]:
    """What the lowest and the highest rating mean, as participants saw them (or plain words)."""
    ends = section.get("scale_labels") or []
    if len(ends) >= 2 and ends[0] and ends[-1]:
        return str(ends[0]), str(ends[-1])
    return "lowest", "highest"


def _took_part(m: dict[str, Any]) -> list[Sentence]:
    reach = m["reach"]
    o = reach["overall"]
    k = m["campaign"]["min_group_size"]
    out: list[Sentence] = []
    if not _num(o["started"]):
        return [[f"Fewer than {k} people have taken part so far: too few to report anything without "
                 "putting them at risk."]]
    line: Sentence = [f"{o['started']:,} people started the survey and {people(o['completed'])} finished it"]
    line.append(f" ({percent(o['completion'])})." if _num(o["completion"]) else ".")
    out.append(line)
    for d in reach["dimensions"]:
        name = dimension_name(d)
        if not d["has_baseline"]:
            nobody = [[t(r["label"])] for r in d["rows"] if r["group"] not in NOT_A_GROUP and r["started"] == 0]
            if nobody:
                out.append([f"By {name}, nobody took part from ", *_join(nobody), "."])
            continue
        missing: list[Sentence] = []
        for r in d["rows"]:
            if r["flag"] != "under-represented":
                continue
            pop = percent(r["population_share"]) if _num(r["population_share"]) else None
            if r["started"] == 0:
                detail = f"nobody took part, against {pop} of the population"
            elif _num(r["sample_share"]):
                detail = f"{percent(r['sample_share'])} of those who answered, against {pop} of the population"
            else:
                detail = f"{people(r['started'])}, against {pop} of the population"
            missing.append([t(r["label"]), f" ({detail})"])
        if missing:
            out.append([f"By {name}, too few answers came from ", *_join(missing),
                        ". Reach them through partners they trust before drawing conclusions."])
        else:
            out.append([f"By {name}, every group took part at least four-fifths as much as its share of "
                        "the population."])
    no_baseline = [dimension_name(d) for d in reach["dimensions"] if not d["has_baseline"]]
    if no_baseline:
        out.append([f"There are no population figures for {' or '.join(no_baseline)}, so who is missing "
                    "there cannot be judged."])
    languages = [[t(x["label"]), f" ({people(x['started'], '')})"] for x in reach["languages"]
                 if x["started"] != 0]
    if len(languages) > 1:
        out.append(["People answered in ", *_join(languages), "."])
    return out


def _service(m: dict[str, Any]) -> list[Sentence]:
    out: list[Sentence] = []
    for sec in m["coassessment"]:
        everyone = _everyone(sec["dimensions"])
        if everyone is None:
            continue
        q: Sentence = ["“", t(sec["text"]), "” "]
        if sec["type"] == "rating":
            low, high = scale_ends(sec)
            scale = sec["scale"]
            if not _num(everyone.get("mean")):
                out.append([*q, "Too few answers to give an average."])
                continue
            mean = everyone["mean"]
            where = (mean - 1) / max(scale - 1, 1)
            meaning: Sentence = (["nearer “", t(low), "”"] if where < SIDE else ["nearer “", t(high), "”"]
                                 if where > 1 - SIDE else ["about half-way between the two"])
            out.append([*q, f"On a scale from 1 “", t(low), f"” to {scale} “", t(high),
                        f"”, people gave {mean:.1f} on average: ", *meaning, ".",
                        *_extremes(sec["dimensions"], "mean", lambda v: f"{v:.1f}")])
        elif sec["type"] == "yesno":
            if not _num(everyone.get("yes_share")):
                out.append([*q, "Too few answers to give a share."])
                continue
            out.append([*q, f"{percent(everyone['yes_share'])} said yes.",
                        *_extremes(sec["dimensions"], "yes_share", percent)])
        else:
            shares = [(o, x["share"]) for o, x in zip(sec["options"], everyone["distribution"], strict=True)
                      if _num(x["share"])]
            shares.sort(key=lambda ox: -ox[1])
            if not shares:
                continue
            top: list[Sentence] = [[t(o["label"]), f" ({percent(s)})"] for o, s in shares[:3]]
            several = " (people could choose several)" if sec["type"] == "multi" else ""
            line = [*q, f"Chosen most often{several}: ", *_join(top, "then"), "."]
            gaps = [d["gap"] for d in sec["dimensions"] if d.get("gap")]
            if gaps:
                g = max(gaps, key=lambda g: g["gap"])
                line += [" The biggest difference between groups: “", t(g["option"]), "”, chosen by ",
                         percent(g["highest_value"]), " of ", t(g["highest"]), " against ",
                         percent(g["lowest_value"]), " of ", t(g["lowest"]), "."]
            out.append(line)
    return out


SCHEME_WORDS = {"population": "Weighted so that groups count as in the population",
                "solidarity": "Weighted towards those in greatest need"}


def _priorities(m: dict[str, Any]) -> tuple[list[Sentence], dict[str, Any] | None]:
    out: list[Sentence] = []
    sections = [s for s in m["cocommissioning"] if s.get("overall")]
    for sec in sections:
        ov = sec["overall"]
        first = [[t(r["label"])] for r in ov["options"][:3]]
        out.append(["“", t(sec["text"]), "” Everyone counted equally: ", *_join(first, "then"), "."]
                   + [x for ch in ov["top_changes"]
                      for x in (f" {SCHEME_WORDS[ch['scheme']]}, “", t(ch["to"]), "” comes first instead.")])
    rows = []
    for d in (sections[0]["dimensions"] if sections else []):
        for r in d["rows"]:
            if r["group"] in NOT_A_GROUP or not d.get("id"):
                continue
            tops = []
            for sec in sections:
                row = next((x for dd in sec["dimensions"] if dd["id"] == d["id"] for x in dd["rows"]
                            if x["group"] == r["group"]), None)
                label = next((o["label"] for o in sec["options"] if row and o["option"] == row["top"]), None)
                tops.append(label)
            if any(tops):
                rows.append({"dimension": dimension_name(d), "label": r["label"], "tops": tops})
    table = {"questions": [s["text"] for s in sections], "rows": rows} if rows else None
    return out, table


def _said(m: dict[str, Any]) -> list[Sentence]:
    out: list[Sentence] = []
    for sec in m["codesign"]:
        everyone = _everyone(sec["dimensions"])
        if everyone is None or not _num(everyone["answers"]):
            continue
        line: Sentence = ["“", t(sec["text"]), f"” {everyone['answers']:,} people answered"]
        if sec["voice"] and _num(everyone.get("voice_notes")) and everyone["voice_notes"]:
            line.append(f", {people(everyone['voice_notes'], '')} of them by voice note")
        line.append(".")
        if everyone["words"]:
            words = [[t(w)] for w, _ in everyone["words"][:WORDS]]
            line += [" Words used most: ", *_join(words), "."]
        out.append(line)
        quotes = [q for block in everyone["quotes"] for q in block["texts"]]
        for q in sorted(quotes, key=lambda q: len(q["text"]) > QUOTE_CHARS)[:QUOTES]:
            text = q["text"] if len(q["text"]) <= QUOTE_CHARS else q["text"][:QUOTE_CHARS].rsplit(" ", 1)[0] + "…"
            out.append([{"quote": text, "language": q["language"]}])  # type: ignore[list-item]
    return out


def build_findings(m: dict[str, Any]) -> dict[str, Any]:
    """The findings of a report model: sections of plain sentences and each group's top priorities."""
    priorities, table = _priorities(m)
    sections = [
        {"id": "took-part", "title": "Who took part, and who is missing", "sentences": _took_part(m)},
        {"id": "service", "title": "How the service worked", "sentences": _service(m)},
        {"id": "priorities", "title": "What people want done first", "sentences": priorities},
        {"id": "said", "title": "What people said most", "sentences": _said(m)},
    ]
    o = m["reach"]["overall"]
    return {"took_part": {"started": o["started"], "completed": o["completed"], "completion": o["completion"]},
            "sections": [s for s in sections if s["sentences"] or (s["id"] == "priorities" and table)],
            "top_priorities": table}


def plain(sentence: Sentence) -> str:
    """A sentence as plain text (Markdown, the terminal)."""
    out = []
    for part in sentence:
        if isinstance(part, str):
            out.append(part)
        elif "quote" in part:
            out.append(f"“{part['quote']}”")
        else:
            out.append(part["t"])
    return "".join(out)
