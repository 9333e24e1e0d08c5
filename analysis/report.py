"""The grouped report as data: reach, co-assessment, co-design and co-commissioning, protected.

`build_model` turns a tally into a JSON-ready dict in which every figure has already passed
disclosure control: a hidden figure is the string "<10" (below the threshold) or "c" (hidden
so that a "<10" cannot be worked out). The renderers in `analysis.render` only lay this out,
so no output format can show more than the model holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.campaigns.schema import OTHER, PREFER_NOT, CampaignSpec
from bot.db import Database, run
from bot.services import audit

from analysis.contract import VOICE
from analysis.disclosure import noise
from analysis.findings import build_findings
from analysis.inputs import read_baseline, read_weights
from analysis.priority import order, ranks, weighted_mean
from analysis.reading import ALL, NOT_ASKED, count_responses, iter_responses, load_context, opened, snapshot
from analysis.stats import MEAN_DECIMALS, SHARE_DECIMALS, wilson
from analysis.summary import Line, Protected, ProtectedQuestion, ReachLine, protect_all
from analysis.tally import ALL_KEY, INVITE_DIM, LANGUAGE_DIM, NO_INVITE, RowKey, Tally, rank_need, tally
from analysis.weighting import CAP, Weights, kish_effective_size, population_weights, solidarity_weights

QUOTES = 8  # quotes shown per group and language; never more than the threshold (see _quotes)
WORDS = 10
COASSESSMENT_TYPES = ("rating", "yesno", "choice", "multi")
COCOMMISSIONING_TYPES = ("budget", "rank")

Figure = int | float | str | None  # a number, a marker ("<10", "c"), or None when not applicable


def _figure(value: int | float | None, marker: str) -> Figure:
    if value is not None:
        return value
    return marker or None


def language_name(code: str, lang: str) -> str:
    """A language code as a name in the report's language ("so" -> "Somali"), or the code itself."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name(Locale.parse(lang))
    except (ValueError, TypeError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:] if name else code


class Labels:
    """Texts in the report's language for questions, options, dimensions and groups."""

    def __init__(self, spec: CampaignSpec, lang: str) -> None:
        self.spec, self.lang = spec, lang

    def text(self, texts: Mapping[str, str] | None) -> str:
        return self.spec.text(dict(texts) if texts else None, self.lang)

    def dimension(self, did: str) -> str:
        if not did:
            return "Everyone"
        if did == INVITE_DIM:
            return "Invite link"
        if did == LANGUAGE_DIM:
            return "Language"
        return self.text(self.spec.dimension(did).text)

    def group(self, did: str, gid: str) -> str:
        if gid == ALL:
            return "Everyone"
        if gid == PREFER_NOT:
            return "Preferred not to say"
        if gid == NOT_ASKED:
            return "Not asked (stopped before)"
        if did == LANGUAGE_DIM:
            return language_name(gid, self.lang)
        if did == INVITE_DIM or not did:
            return gid
        for o in self.spec.dimension(did).options:
            if o.id == gid:
                return self.text(o.text)
        return gid

    def question(self, qid: str) -> str:
        return self.text(self.spec.question(qid).text)

    def scale_ends(self, qid: str) -> list[str] | None:
        """A rating's end labels as participants saw them ("Very hard", "Very easy"), if it has any."""
        labels = self.spec.question(qid).labels
        if not labels:
            return None
        return list(labels.get(self.lang) or labels.get(self.spec.languages[0]) or []) or None

    def option(self, qid: str, option: str) -> str:
        q = self.spec.question(qid)
        if q.type == "rating":
            return option
        if q.type == "yesno":
            return {"yes": "Yes", "no": "No"}.get(option, option)
        if option == OTHER:
            return "Something else"
        if option == VOICE:
            return "Voice note"
        for o in q.options or []:
            if o.id == option:
                return self.text(o.text)
        return option


def _reach_row(line: ReachLine, labels: Labels) -> dict[str, Any]:
    return {
        "group": line.group, "label": labels.group(line.dimension, line.group),
        "started": _figure(line.started, line.suppressed),
        "completed": _figure(line.completed, line.completed_suppressed),
        "completion": _figure(line.completion, line.completed_suppressed or line.suppressed),
        "sample_share": _figure(line.sample_share, line.suppressed) if line.population_share is not None else None,
        "population_share": line.population_share,
        "ratio": _figure(line.ratio, line.suppressed) if line.population_share is not None else None,
        "flag": line.flag,
    }


def _reach(t: Tally, p: Protected, dims: Sequence[str], labels: Labels,
           baseline: Mapping[str, Mapping[str, float]], baseline_source: str) -> dict[str, Any]:
    overall = p.reach[ALL_KEY]
    out: dict[str, Any] = {"overall": _reach_row(overall, labels), "dimensions": [],
                           "baseline_source": baseline_source}
    for d in (d for d in dims if d):
        rows = [_reach_row(p.reach[(d, g)], labels) for g in _groups(t, p, d)]
        out["dimensions"].append({
            "id": d, "title": labels.dimension(d), "has_baseline": bool(baseline.get(d)),
            "named_a_group": p.known.get(d), "share_base": p.share_base.get(d, "named a group"),
            "under_represented": [r["label"] for r in rows if r["flag"] == "under-represented"],
            "rows": rows,
        })
    invites = []
    partner = {code: name for code, name in t.ctx.invites.values()}
    for g in t.dimension_rows(INVITE_DIM):
        row = _reach_row(p.reach[(INVITE_DIM, g)], labels)
        row["partner"] = partner.get(g, "") if g != NO_INVITE else ""
        invites.append(row)
    out["invites"] = invites
    out["languages"] = [_reach_row(p.reach[(LANGUAGE_DIM, g)], labels) for g in t.dimension_rows(LANGUAGE_DIM)]
    return out


def _groups(t: Tally, p: Protected, d: str) -> list[str]:
    """A dimension's rows in reading order, without a "not asked" row nobody is in (it says nothing)."""
    return [g for g in t.dimension_rows(d)
            if not (g == NOT_ASKED and p.reach.get((d, g)) is not None and p.reach[(d, g)].started == 0)]


def _keys(t: Tally, p: Protected, d: str) -> list[RowKey]:
    """A dimension's rows and everyone; "" (no dimension answered yet) is everyone alone."""
    if not d:
        return [ALL_KEY]
    return [*((d, g) for g in _groups(t, p, d)), ALL_KEY]


def _gap(rows: list[dict[str, Any]], field: str, decimals: int) -> dict[str, Any] | None:
    """The highest and the lowest group on a published figure, and the difference between them."""
    shown = [r for r in rows if r["group"] != ALL and isinstance(r.get(field), int | float)
             and r["group"] not in (PREFER_NOT, NOT_ASKED)]
    if len(shown) < 2:
        return None
    hi = max(shown, key=lambda r: r[field])
    lo = min(shown, key=lambda r: r[field])
    return {"field": field, "highest": hi["label"], "highest_value": hi[field], "lowest": lo["label"],
            "lowest_value": lo[field], "gap": round(hi[field] - lo[field], decimals)}


def _coassessment(t: Tally, p: Protected, dims: Sequence[str], labels: Labels) -> list[dict[str, Any]]:
    out = []
    for qid, pq in p.questions.items():
        q = pq.question
        if q.type not in COASSESSMENT_TYPES:
            continue
        section = {"question": qid, "text": labels.question(qid), "type": q.type,
                   "options": [{"option": o, "label": labels.option(qid, o)} for o in pq.options],
                   "scale": q.rating_scale if q.type == "rating" else None,
                   "scale_labels": labels.scale_ends(qid) if q.type == "rating" else None, "dimensions": []}
        for d in dims:
            rows = []
            for key in _keys(t, p, d):
                head = pq.line(key)
                row: dict[str, Any] = {"group": key[1], "label": labels.group(key[0], key[1]),
                                       "n": _figure(head.n, head.suppressed), "distribution": []}
                for o in pq.options:
                    ln = pq.line(key, o)
                    row["distribution"].append({"option": o, "n": _figure(ln.n, ln.suppressed),
                                                "share": _figure(ln.share, ln.suppressed)})
                if q.type == "rating":
                    row["mean"] = _figure(head.mean, head.suppressed or "c")
                    row["ci_low"] = _figure(head.ci_low, head.suppressed or "c")
                    row["ci_high"] = _figure(head.ci_high, head.suppressed or "c")
                elif q.type == "yesno":
                    yes = pq.line(key, "yes")
                    if yes.n is not None and head.n:
                        est = wilson(yes.n, head.n)
                        assert est is not None
                        row["yes_share"] = round(est.value, SHARE_DECIMALS)
                        row["ci_low"] = round(est.low, SHARE_DECIMALS)
                        row["ci_high"] = round(est.high, SHARE_DECIMALS)
                    else:
                        marker = yes.suppressed or head.suppressed or "c"
                        row["yes_share"] = row["ci_low"] = row["ci_high"] = marker
                rows.append(row)
            dim = {"id": d, "title": labels.dimension(d), "rows": rows}
            if q.type == "rating":
                dim["gap"] = _gap(rows, "mean", MEAN_DECIMALS)
            elif q.type == "yesno":
                dim["gap"] = _gap(rows, "yes_share", SHARE_DECIMALS)
            else:
                gaps = []
                for i, o in enumerate(pq.options):
                    flat = [{"group": r["group"], "label": r["label"], "share": r["distribution"][i]["share"]}
                            for r in rows]
                    g = _gap(flat, "share", SHARE_DECIMALS)
                    if g:
                        gaps.append({**g, "option": labels.option(qid, o)})
                dim["gap"] = max(gaps, key=lambda g: g["gap"]) if gaps else None
            section["dimensions"].append(dim)
        out.append(section)
    return out


def _quotes(entries: list[Any], k: int, by_language: bool = True) -> list[dict[str, Any]]:
    """Quotes per language with at least k answers, the rest pooled if they reach k together.

    Exactly min(QUOTES, k) quotes are shown per block, so the number shown never tells how
    many a language had; blocks below the threshold are not shown at all. Without
    `by_language` every quote is one block (two blocks would say "at least 2k").
    """
    per_block = min(QUOTES, k)
    by_lang: dict[str, list[Any]] = defaultdict(list)
    for e in entries:
        by_lang[e.language if by_language else "all languages"].append(e)
    blocks = []
    pooled: list[Any] = []
    for lang in sorted(by_lang, key=lambda la: (-len(by_lang[la]), la)):
        items = by_lang[lang]
        if len(items) >= k:
            chosen = sorted(items, key=lambda e: e.order)[:per_block]
            blocks.append({"language": lang, "texts": [{"language": e.language, "text": e.text} for e in chosen]})
        else:
            pooled.extend(items)
    if len(pooled) >= k:
        chosen = sorted(pooled, key=lambda e: e.order)[:per_block]
        blocks.append({"language": "other languages",
                       "texts": [{"language": e.language, "text": e.text} for e in chosen]})
    return blocks


def _codesign(t: Tally, p: Protected, dims: Sequence[str], labels: Labels) -> list[dict[str, Any]]:
    texts_by: dict[tuple[str, RowKey], list[Any]] = defaultdict(list)
    for e in t.texts:
        for key in e.rows:
            texts_by[(e.question, key)].append(e)
    out = []
    for qid, pq in p.questions.items():
        q = pq.question
        if q.type != "text":
            continue
        section = {"question": qid, "text": labels.question(qid), "voice": q.voice, "dimensions": []}
        for d in dims:
            rows = []
            for key in _keys(t, p, d):
                head, written = pq.line(key), pq.line(key, "text")
                voice = pq.line(key, VOICE) if q.voice else None
                row = {"group": key[1], "label": labels.group(key[0], key[1]),
                       "answers": _figure(head.n, head.suppressed),
                       "written": _figure(written.n, written.suppressed),
                       "voice_notes": _figure(voice.n, voice.suppressed) if voice else None,
                       "words": [], "quotes": []}
                # Quotes and words need at least k written answers. When that count is hidden only
                # to protect another cell ("c"), it is still at least k, so quoting tells nothing
                # new; the words then go without their counts, which would bound the hidden one.
                if written.n is not None or written.suppressed == "c":
                    counter = t.words.get((qid, key))
                    if counter is not None:
                        row["words"] = [[w, n if written.n is not None else None]
                                        for w, n in counter.frequent(p.k, WORDS)]
                # Quotes only under a published group of at least 2k written answers ("c" is k or
                # more, so quoting there tells nothing new about the count): a quote is
                # never labelled with a hidden group, and street addresses cannot be found reliably
                # in our languages (no kept library does it offline), so a small group, where an
                # address or a detail would point at one person, is not quoted (rule 6).
                cell = t.questions[qid].rows.get(key)
                if ((written.n is not None or written.suppressed == "c") and head.n is not None
                        and cell is not None and cell.counts.get("text", 0) >= 2 * p.k):
                    row["quotes"] = _quotes(texts_by.get((qid, key), []), p.k)
                rows.append(row)
            section["dimensions"].append({"id": d, "title": labels.dimension(d), "rows": rows})
        out.append(section)
    return out


def _round_scores(values: np.ndarray, q_type: str) -> list[float]:
    decimals = SHARE_DECIMALS if q_type == "budget" else MEAN_DECIMALS + 1
    return [round(float(v), decimals) for v in values]


def _cocommissioning(t: Tally, p: Protected, dims: Sequence[str], labels: Labels,
                     population: Weights, solidarity: Weights | None) -> list[dict[str, Any]]:
    out = []
    for qid, pq in p.questions.items():
        q = pq.question
        if q.type not in COCOMMISSIONING_TYPES:
            continue
        measure = "mean share of coins" if q.type == "budget" else "mean Borda points"
        section: dict[str, Any] = {
            "question": qid, "text": labels.question(qid), "type": q.type, "measure": measure,
            "pick": rank_need(q) if q.type == "rank" else None,
            "options": [{"option": o, "label": labels.option(qid, o)} for o in pq.options],
            "dimensions": [], "overall": None}
        for d in dims:
            rows = []
            for key in _keys(t, p, d):
                head = pq.line(key)
                scores: dict[str, Figure] = {}
                for o in pq.options:
                    ln: Line = pq.line(key, o)
                    value = ln.share if q.type == "budget" else ln.mean
                    scores[o] = _figure(value, ln.suppressed or head.suppressed or "c")
                shown = {o: v for o, v in scores.items() if isinstance(v, int | float)}
                top = order(shown)[0] if len(shown) == len(scores) and shown else None
                rows.append({"group": key[1], "label": labels.group(key[0], key[1]),
                             "n": _figure(head.n, head.suppressed), "scores": scores, "top": top})
            section["dimensions"].append({"id": d, "title": labels.dimension(d), "rows": rows})
        section["overall"] = _overall(t, p, pq, labels, population, solidarity)
        out.append(section)
    return out


def _overall(t: Tally, p: Protected, pq: ProtectedQuestion, labels: Labels, population: Weights,
             solidarity: Weights | None) -> dict[str, Any] | None:
    """The order of the options three ways: everyone equal, as the population, and by need."""
    q = pq.question
    if pq.line(ALL_KEY).n is None:
        return None  # fewer answers than the threshold in total
    idx, matrix = t.priority_matrix(q.id)
    everyone = t.questions[q.id].rows.get(ALL_KEY)
    # Effective sample sizes are whole numbers: "177.0 people" reads as a false precision.
    sizes: dict[str, int | str] = {"unweighted": int(pq.line(ALL_KEY).n or 0)}
    withheld: list[str] = []
    # Every order carries the cell key method's noise, one to two people's worth (as the
    # "(all)" row's figures do), so two reports a person apart do not give that person's answer.
    # A weighted order's effective size, beside published group figures, would let a hidden
    # group's count be solved (Kish's n is a function of the group counts): it is shown only when
    # every group it weights by is published for this question ("c" otherwise, and the scheme is
    # listed in "withheld"); the weighted scores themselves carry noise as above.
    key = everyone.key if everyone is not None else 0
    most = 1.0 if q.type == "budget" else float(max(rank_need(q), 1))

    def noisy(name: str, values: np.ndarray, n_eff: float) -> np.ndarray:
        scale = most / max(n_eff, 1.0)
        return np.asarray([v + scale * noise((everyone.keys.get(o, 0) if everyone else 0) + i, f"{name} score")
                           for i, (o, v) in enumerate(zip(pq.options, values, strict=True))])

    schemes: dict[str, np.ndarray] = {"unweighted": noisy("unweighted", weighted_mean(matrix), len(idx))}
    weighted_dims = [d for d in population.dimensions if d]
    rows = [pq.lines.get(((d, g), "")) for d in weighted_dims for g in t.ctx.group_ids(d)]
    all_shown = all(ln is None or ln.n is not None for ln in rows)
    for name, weights in (("population", population if population.dimensions else None),
                          ("solidarity", solidarity)):
        if weights is None:
            continue
        w = weights.values[idx]
        n_eff = kish_effective_size(w)
        schemes[name] = noisy(name, weighted_mean(matrix, w), n_eff)
        if all_shown:
            sizes[name] = max(round(n_eff) + noise(key, f"{name} size"), 0)
        else:
            sizes[name] = "c"  # type: ignore[assignment]
            withheld.append(name)
    options = []
    rank_of = {name: ranks(dict(zip(pq.options, vals, strict=True))) for name, vals in schemes.items()}
    for i, o in enumerate(pq.options):
        row: dict[str, Any] = {"option": o, "label": labels.option(q.id, o)}
        for name, vals in schemes.items():
            row[name] = _round_scores(vals, q.type)[i]
            row[f"{name}_rank"] = rank_of[name][o]
        row["differs"] = len({rank_of[name][o] for name in schemes}) > 1
        options.append(row)
    options.sort(key=lambda r: (r["unweighted_rank"], pq.options.index(r["option"])))
    changes = []
    for name in schemes:
        if name == "unweighted":
            continue
        first_u = order(dict(zip(pq.options, schemes["unweighted"], strict=True)))[0]
        first_w = order(dict(zip(pq.options, schemes[name], strict=True)))[0]
        if first_u != first_w:
            changes.append({"scheme": name, "from": labels.option(q.id, first_u),
                            "to": labels.option(q.id, first_w)})
    return {"schemes": list(schemes), "effective_size": sizes, "options": options, "withheld": withheld,
            "orders_differ": any(r["differs"] for r in options), "top_changes": changes}


def build_model(t: Tally, p: Protected, *, dims: Sequence[str], lang: str,
                baseline: Mapping[str, Mapping[str, float]], baseline_source: str,
                need: Mapping[str, Mapping[str, float]] | None) -> dict[str, Any]:
    """The whole report as JSON-ready data; every figure already protected."""
    spec = t.ctx.spec
    labels = Labels(spec, lang)
    unanswered = [d for d in dims if d not in t.answered_dimensions()]
    # With no group answered yet, the sections still show everyone's figures.
    dims = [d for d in dims if d not in unanswered] or [""]
    all_dims = t.ctx.dimension_ids()
    groups = {d: t.ctx.group_ids(d) for d in all_dims}
    population = population_weights(t.memberships, all_dims, baseline, groups)
    solidarity = (solidarity_weights(population, t.memberships, all_dims, need) if need else None)
    # Kish's n is a function of the group counts: published with the cell key method's noise,
    # and only while every group it weights by is published (else it would solve a hidden one).
    everyone = t.reach.get(ALL_KEY, [0, 0, 0, 0])[2]
    groups_shown = all(p.reach[(d, g)].started is not None for d in population.dimensions if d
                       for g in groups.get(d, []) if (d, g) in p.reach)

    def eff(size: float, what: str) -> int | str:
        return max(round(size) + noise(everyone, what), 0) if groups_shown else "c"

    weighting: dict[str, Any] = {
        "population": {"dimensions": population.dimensions,
                       "effective_size": eff(population.effective_size, "population size"),
                       "missing": {d: [labels.group(d, g) for g in gs] for d, gs in population.missing.items()},
                       "short": {d: [labels.group(d, g) for g in gs] for d, gs in population.short.items()},
                       "cap": CAP,
                       "converged": population.converged, "note": population.note,
                       "source": baseline_source},
        "solidarity": None if solidarity is None else {
            "weights": {d: {labels.group(d, g): w for g, w in ws.items()} for d, ws in (need or {}).items()},
            "effective_size": eff(solidarity.effective_size, "solidarity size")},
    }
    if t.responses < p.k:
        # Kish's n on a handful of people would itself be a count below the threshold.
        weighting["population"]["effective_size"] = f"<{p.k}"
        if weighting["solidarity"]:
            weighting["solidarity"]["effective_size"] = f"<{p.k}"
    return {
        "campaign": {"id": spec.id, "title": labels.text(spec.title), "service": spec.service,
                     "mode": spec.mode, "languages": list(spec.languages), "language": lang,
                     "min_group_size": p.k, "dimensions": list(dims),
                     "unanswered_dimensions": [labels.dimension(d) for d in unanswered],
                     "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "legend": {f"<{p.k}": f"fewer than {p.k} people: hidden to protect them",
                   "c": f"hidden so that a '<{p.k}' figure cannot be worked out from the totals"},
        "reach": _reach(t, p, dims, labels, baseline, baseline_source),
        "coassessment": _coassessment(t, p, dims, labels),
        "codesign": _codesign(t, p, dims, labels),
        "cocommissioning": _cocommissioning(t, p, dims, labels, population, solidarity),
        "weighting": weighting,
    }


ReportFormat = Literal["html", "md", "json", "pdf"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("html", "md", "json", "pdf")


async def report_model_async(database: Database | str, campaign: str, *, by: str | None = None,
                             baseline: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                             weights: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                             lang: str | None = None, progress: Callable[[int], None] | None = None,
                             on_total: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The protected report model; see `build_report` for the arguments."""
    async with opened(database) as db:
        async with db.engine.connect() as conn:
            ctx = await load_context(conn, campaign)
            total = await count_responses(conn, campaign)
        ctx.check_dimension(by)
        ctx.check_language(lang)
        if isinstance(baseline, str | Path):
            base, source = read_baseline(Path(baseline), ctx), Path(baseline).name
        elif baseline is not None:
            base, source = {d: dict(s) for d, s in baseline.items()}, "given shares"
        else:
            base, source = ctx.baseline, "the campaign's baseline"
        need = read_weights(Path(weights), ctx) if isinstance(weights, str | Path) else (
            {d: dict(w) for d, w in weights.items()} if weights is not None else None)
        if on_total is not None:
            on_total(total)
        async with snapshot(db) as conn:
            t = await tally(ctx, iter_responses(conn, ctx), progress)
    protected = protect_all(t, base)
    dims = [by] if by else ctx.dimension_ids()
    model = build_model(t, protected, dims=dims, lang=lang or ctx.spec.languages[0], baseline=base,
                        baseline_source=source, need=need)
    model["findings"] = build_findings(model)  # from the protected figures alone
    return model


def render(model: dict[str, Any], format: ReportFormat = "html") -> str | bytes:  # noqa: A002
    """The model laid out: text for html, md and json, the bytes of an A4 document for pdf."""
    from analysis.render import render_html, render_json, render_markdown, render_pdf

    if format == "pdf":
        return render_pdf(model)
    if format == "html":
        return render_html(model)
    if format == "md":
        return render_markdown(model)
    if format == "json":
        return render_json(model)
    raise ValueError(f"unknown report format {format!r}; use one of {', '.join(REPORT_FORMATS)}")


async def build_report_async(database: Database | str, campaign: str, path: str | Path,
                             format: ReportFormat | None = None, **options: Any) -> dict[str, Any]:  # noqa: A002
    """Write the report; see `build_report`."""
    path = Path(path)
    fmt: ReportFormat = format or {".md": "md", ".json": "json", ".pdf": "pdf"}.get(  # type: ignore[assignment]
        path.suffix.lower(), "html")
    model = await report_model_async(database, campaign, **options)
    text = render(model, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if isinstance(text, bytes):
        partial.write_bytes(text)
    else:
        partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    async with opened(database) as db, db.session() as session:
        await audit.record(session, audit.cli_actor(), "report", campaign, format=fmt, file=path.name,
                           by=options.get("by"), baseline=_source(options.get("baseline")),
                           weights=_source(options.get("weights")))
        await session.commit()
    return model


def _source(value: Any) -> str | None:
    """How a baseline or weights were given, for the audit trail (a file name, or "given")."""
    if value is None:
        return None
    return Path(value).name if isinstance(value, str | Path) else "given"


def build_report(database: Database | str, campaign: str, path: str | Path,
                 format: ReportFormat | None = None, *, by: str | None = None,  # noqa: A002
                 baseline: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                 weights: str | Path | Mapping[str, Mapping[str, float]] | None = None,
                 lang: str | None = None) -> dict[str, Any]:
    """Write the grouped report (HTML, PDF, Markdown or JSON) and return its model.

    Args:
        database: a database URL or a `bot.db.Database`.
        campaign: the campaign id.
        path: the file to write; `.md`, `.json` and `.pdf` choose those formats unless `format` is given.
        format: "html" (one self-contained page with charts), "pdf" (A4, findings first), "md" or "json".
        by: one group dimension instead of all.
        baseline: population shares, as a CSV file (dimension,group,share) or a mapping
            {dimension: {group: share}}; defaults to the campaign's baseline.
        weights: need weights for the solidarity order, as a CSV file (dimension,group,weight)
            or a mapping.
        lang: the language of question and group texts (default: the campaign's first).

    Returns:
        The report model: every figure protected, hidden ones as "<10" or "c".
    """
    return run(build_report_async(database, campaign, path, format, by=by, baseline=baseline,
                                  weights=weights, lang=lang))
