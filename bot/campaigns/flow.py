"""Pure rules of a pass through a campaign: which question comes next, what an answer may hold."""

from __future__ import annotations

import unicodedata
from typing import Any

from bot.campaigns.schema import OTHER, CampaignSpec, Question

MAX_TEXT_ANSWER = 2000
# Letters and symbols that draw nothing, though Unicode files them as letters or symbols: the
# Hangul fillers and the blank Braille pattern are how people send "empty" messages.
BLANK_SIGNS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_text(text: str) -> bool:
    """Whether `text` shows anything: not only spaces, format and control characters (zero-width
    spaces, direction marks, word joiners, byte-order marks), combining marks or blank signs."""
    return any(unicodedata.category(ch)[0] not in "ZCM" and ch not in BLANK_SIGNS for ch in text)


class InvalidAnswer(ValueError):
    """An answer value that does not fit its question (a bug or a forged update, never stored)."""


def chosen_values(q: Question, value: Any) -> set[str]:
    """The values of an answer that a `show_if` can match."""
    if not isinstance(value, dict):
        return set()
    if q.type in {"rating", "yesno"}:
        return {str(value.get("value"))}
    if q.type == "choice":
        return {value["option"]} if "option" in value else set()
    if q.type == "multi":
        return set(value.get("options", []))
    return set()


def _show_if_holds(spec: CampaignSpec, q: Question, answers: dict[str, Any], undecided: bool) -> bool:
    """Every named earlier answer includes a listed value; with `undecided`, a named question not
    answered yet counts as fitting if it may itself be asked."""
    if not q.show_if:
        return True
    for ref, wanted in q.show_if.items():
        try:
            target = spec.question(ref)
        except KeyError:
            return False
        if ref not in answers and undecided:
            if not _show_if_holds(spec, target, answers, undecided):
                return False
            continue
        if ref not in answers or answers[ref] is None:
            return False
        want = {"yes" if w is True else "no" if w is False else str(w) for w in wanted}
        if not chosen_values(target, answers[ref]) & want:
            return False
    return True


def is_visible(spec: CampaignSpec, q: Question, answers: dict[str, Any]) -> bool:
    """A question with show_if is asked only if every named earlier answer includes a listed value."""
    return _show_if_holds(spec, q, answers, undecided=False)


def may_be_asked(spec: CampaignSpec, q: Question, answers: dict[str, Any]) -> bool:
    """Visible now, or hidden only by a show_if whose question is not answered yet."""
    return _show_if_holds(spec, q, answers, undecided=True)


def visible_questions(spec: CampaignSpec, answers: dict[str, Any]) -> list[Question]:
    return [q for q in spec.questions if is_visible(spec, q, answers)]


def first_unanswered(spec: CampaignSpec, answered: dict[str, Any]) -> Question | None:
    """Where a returning participant continues. `answered` maps question id to value (None = skipped)."""
    for q in spec.questions:
        if not is_visible(spec, q, answered):
            continue
        if q.id not in answered:
            return q
    return None


def next_question(spec: CampaignSpec, current: str | None, answers: dict[str, Any]) -> Question | None:
    ids = [q.id for q in spec.questions]
    start = ids.index(current) + 1 if current in ids else 0
    for q in spec.questions[start:]:
        if is_visible(spec, q, answers):
            return q
    return None


def previous_question(spec: CampaignSpec, current: str, answers: dict[str, Any]) -> Question | None:
    ids = [q.id for q in spec.questions]
    end = ids.index(current) if current in ids else len(ids)
    for q in reversed(spec.questions[:end]):
        if is_visible(spec, q, answers):
            return q
    return None


def progress(spec: CampaignSpec, current: str, answers: dict[str, Any]) -> tuple[int, int]:
    """(position, total) of `current`, e.g. (2, 6), among the questions that are or may still be asked.

    Questions behind an undecided show_if count, so the total only shrinks as answers rule them
    out ("4/7" never turns into "5/8"), unless the participant goes back and changes an answer.
    """
    ids = [q.id for q in spec.questions if q.id == current or may_be_asked(spec, q, answers)]
    return ids.index(current) + 1, len(ids)


def validate_answer(q: Question, value: Any) -> dict[str, Any]:
    """Check and normalise a value for question `q`; raises InvalidAnswer when it cannot be right."""
    if not isinstance(value, dict):
        raise InvalidAnswer(f"{q.id}: answer must be a mapping")
    t = q.type
    opts = q.option_ids
    if t == "rating":
        v = value.get("value")
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= q.rating_scale:
            raise InvalidAnswer(f"{q.id}: rating must be 1..{q.rating_scale}")
        return {"value": v}
    if t == "yesno":
        if value.get("value") not in {"yes", "no"}:
            raise InvalidAnswer(f"{q.id}: yes or no")
        return {"value": value["value"]}
    if t == "choice":
        o = value.get("option")
        if o == OTHER and q.other:
            if "voice" in value:  # "something else", said in a voice note
                return {"option": OTHER, "voice": _voice(q, value["voice"], other=True)}
            text = _text(q, value.get("text"))
            return {"option": OTHER, "text": text}
        if o not in opts:
            raise InvalidAnswer(f"{q.id}: unknown option {o!r}")
        return {"option": o}
    if t == "multi":
        chosen = value.get("options")
        if not isinstance(chosen, list) or not chosen:
            raise InvalidAnswer(f"{q.id}: choose at least one")
        allowed = set(opts) | ({OTHER} if q.other else set())
        if any(o not in allowed for o in chosen) or len(set(chosen)) != len(chosen):
            raise InvalidAnswer(f"{q.id}: unknown or repeated option")
        ordered = [o for o in [*opts, OTHER] if o in chosen]
        out: dict[str, Any] = {"options": ordered}
        if OTHER in chosen and "voice" in value:
            out["voice"] = _voice(q, value["voice"], other=True)
        elif OTHER in chosen:
            out["text"] = _text(q, value.get("text"))
        return out
    if t == "rank":
        order = value.get("order")
        need = min(q.pick or len(opts), len(opts))
        if (not isinstance(order, list) or len(order) != need or len(set(order)) != len(order)
                or any(o not in opts for o in order)):
            raise InvalidAnswer(f"{q.id}: rank exactly {need} different options")
        return {"order": list(order)}
    if t == "budget":
        coins = value.get("coins")
        tokens = q.tokens or 10
        if not isinstance(coins, dict) or set(coins) - set(opts):
            raise InvalidAnswer(f"{q.id}: coins per option")
        full = {o: coins.get(o, 0) for o in opts}
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in full.values()):
            raise InvalidAnswer(f"{q.id}: coins must be whole numbers")
        if sum(full.values()) != tokens:
            raise InvalidAnswer(f"{q.id}: spend exactly {tokens} coins")
        return {"coins": full}
    if t == "text":
        if "voice" in value:
            return {"voice": _voice(q, value["voice"])}
        return {"text": _text(q, value.get("text"))}
    if t == "info":
        return {"seen": True}
    raise InvalidAnswer(f"{q.id}: unknown type {t}")


def _voice(q: Question, v: Any, other: bool = False) -> dict[str, Any]:
    """A voice note: on a text question that takes them, or as the words for "something else"
    (wherever text is taken, so is voice)."""
    if not (q.voice or other) or not isinstance(v, dict) or not isinstance(v.get("file_id"), str):
        raise InvalidAnswer(f"{q.id}: voice not accepted")
    duration = v.get("duration")
    if not isinstance(duration, int) or duration < 0:
        raise InvalidAnswer(f"{q.id}: voice duration")
    return {"file_id": v["file_id"], "duration": duration}


def _text(q: Question, text: Any) -> str:
    if not isinstance(text, str) or not has_visible_text(text):
        raise InvalidAnswer(f"{q.id}: empty text")
    if len(text) > MAX_TEXT_ANSWER:
        raise InvalidAnswer(f"{q.id}: text over {MAX_TEXT_ANSWER} characters")
    return text
