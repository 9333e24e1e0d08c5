"""Synthetic responses: realistic shape, valid values, through the storage layer, on both backends."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from analysis import SynthRefused, synthesize_async
from bot.campaigns.flow import is_visible, validate_answer
from bot.campaigns.store import load_campaign
from bot.models import Answer, Contact, Response, ResponseGroup


async def _load(db, spec) -> None:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        await load_campaign(s, spec)
        await s.commit()


async def test_synthetic_responses_look_like_a_real_campaign(db, example_spec) -> None:  # type: ignore[no-untyped-def]
    await _load(db, example_spec)
    result = await synthesize_async(db, "clinic-access", 400, seed=3)
    assert result.responses == 400 and 0 < result.completed < 400
    async with db.session() as s:
        responses = (await s.execute(select(Response.id, Response.language, Response.completed_at,
                                            Response.invite_id))).all()
        answers = (await s.execute(select(Answer.response_id, Answer.question_id, Answer.status, Answer.value,
                                          Answer.changes))).all()
        groups = (await s.execute(select(ResponseGroup.response_id, ResponseGroup.dimension_id,
                                         ResponseGroup.groups, ResponseGroup.source))).all()
        contacts = await s.scalar(select(func.count()).select_from(Contact))
    assert len(responses) == 400 and len(answers) == result.answers
    assert contacts == 0  # nobody synthetic can ever be messaged
    assert len({r.language for r in responses}) >= 4
    assert any(r.invite_id for r in responses) and any(r.invite_id is None for r in responses)
    by_response: dict[int, dict[str, object]] = {}
    for a in answers:
        q = example_spec.question(a.question_id)
        if a.status == "answered":
            assert validate_answer(q, a.value) == a.value
        else:
            assert q.optional and a.value is None
        by_response.setdefault(a.response_id, {})[a.question_id] = a.value if a.status == "answered" else None
    for given in by_response.values():  # no answer to a question its show_if hides
        for qid in given:
            assert is_visible(example_spec, example_spec.question(qid), given)
    statuses = Counter(a.status for a in answers)
    assert statuses["skipped"] > 0
    assert any(a.changes for a in answers)
    assert any(a.value and "voice" in a.value for a in answers if a.question_id == "idea")
    assert any(a.value and "text" in a.value for a in answers if a.question_id == "idea")
    # skewed group sizes, and one tiny group per dimension with more than two groups
    community = Counter(g for r in groups if r.dimension_id == "community" for g in r.groups)
    tiny = result.tiny_groups["community"]
    assert 0 < community[tiny] < 10
    sizes = sorted(n for g, n in community.items() if g not in (tiny, "prefer_not_to_say"))
    assert sizes[-1] > 3 * sizes[0]
    assert any(len(r.groups) == 2 for r in groups if r.dimension_id == "community")
    assert any(r.source == "invite" for r in groups)


async def test_synth_refuses_to_mix_and_is_reproducible(db, example_spec) -> None:  # type: ignore[no-untyped-def]
    await _load(db, example_spec)
    first = await synthesize_async(db, "clinic-access", 60, seed=9)
    with pytest.raises(SynthRefused, match="already has 60 responses"):
        await synthesize_async(db, "clinic-access", 10, seed=9)
    more = await synthesize_async(db, "clinic-access", 10, seed=9, append=True)
    assert more.responses == 10
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Response)) == 70
    assert first.tiny_groups == more.tiny_groups  # the same seed plans the same population
