"""The survey's route through a campaign: visibility and progress (pure functions, no database)."""

from __future__ import annotations

from bot.campaigns.flow import progress
from bot.campaigns.schema import CampaignSpec


def chain() -> CampaignSpec:
    """a (yes/no) → b only after "yes" → c only after b's "x"; d always."""
    return CampaignSpec.model_validate({
        "id": "flow", "mode": "coassessment", "title": {"en": "Flow"}, "languages": ["en"],
        "questions": [
            {"id": "a", "type": "yesno", "text": {"en": "A?"}},
            {"id": "b", "type": "choice", "text": {"en": "B?"}, "show_if": {"a": ["yes"]},
             "options": [{"id": "x", "text": {"en": "X"}}, {"id": "y", "text": {"en": "Y"}}]},
            {"id": "c", "type": "text", "text": {"en": "C?"}, "show_if": {"b": ["x"]}},
            {"id": "d", "type": "text", "text": {"en": "D?"}},
        ],
    })


def test_the_total_never_grows_as_answers_come() -> None:
    spec = chain()
    assert progress(spec, "a", {}) == (1, 4)                         # b and c may still come
    assert progress(spec, "b", {"a": {"value": "yes"}}) == (2, 4)
    assert progress(spec, "c", {"a": {"value": "yes"}, "b": {"option": "x"}}) == (3, 4)
    assert progress(spec, "d", {"a": {"value": "yes"}, "b": {"option": "y"}}) == (3, 3)  # c ruled out
    assert progress(spec, "d", {"a": {"value": "no"}}) == (2, 2)   # b, and so c, ruled out
    assert progress(spec, "d", {"a": None}) == (2, 2)                # a skipped: b and c never come


def test_a_question_shown_out_of_turn_still_has_a_place() -> None:
    spec = chain()
    assert progress(spec, "c", {"a": {"value": "no"}}) == (2, 3)
