"""Storage on both backends: loading campaigns, answers stored idempotently, erasure that erases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from bot.campaigns.schema import CampaignSpec
from bot.campaigns.store import CampaignChangeRefused, load_campaign
from bot.models import Answer, Base, Contact, Participant, Response, ResponseGroup
from bot.services import participants, responses


async def _load(db, spec: CampaignSpec):  # type: ignore[no-untyped-def]
    async with db.session() as s:
        c, created = await load_campaign(s, spec)
        await s.commit()
    return c, created


async def test_load_creates_then_updates(db, example_spec) -> None:  # type: ignore[no-untyped-def]
    c, created = await _load(db, example_spec)
    assert created and c.version == 1 and c.status == "draft"
    c, created = await _load(db, example_spec)
    assert not created and c.version == 2
    async with db.session() as s:
        n = await s.scalar(text("SELECT count(*) FROM question WHERE campaign_id = 'clinic-access'"))
        g = await s.scalar(text('SELECT count(*) FROM "group" WHERE campaign_id = \'clinic-access\''))
    assert n == len(example_spec.questions) and g == 6 + 3 + 2


async def _answer_one(db, keys, spec, user_id=111, qid="ease", value=None):  # type: ignore[no-untyped-def]
    async with db.session() as s:
        p = await participants.ensure(s, keys, user_id, user_id, "en")
        r = await responses.start_response(s, spec.id, p.id, "en")
        await responses.record_answer(s, r.id, spec.question(qid), value or {"value": 4})
        await s.commit()
        return p.id, r.id


async def test_answers_are_idempotent_and_replaced(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    await _load(db, example_spec)
    for _ in range(3):  # a double tap, a replayed update
        pid, rid = await _answer_one(db, keys, example_spec)
    await _answer_one(db, keys, example_spec, value={"value": 2})  # Back, then a new answer
    async with db.session() as s:
        rows = (await s.scalars(select(Answer).where(Answer.response_id == rid))).all()
        assert len(rows) == 1 and rows[0].value == {"value": 2} and rows[0].changes == 1
        assert await s.scalar(select(func.count()).select_from(Response)) == 1


async def test_change_with_answers_refused_but_translation_allowed(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    await _load(db, example_spec)
    await _answer_one(db, keys, example_spec, qid="barrier", value={"option": "hours"})
    data = example_spec.model_dump(mode="json", exclude_none=True)
    q = next(q for q in data["questions"] if q["id"] == "barrier")
    q["options"] = [o for o in q["options"] if o["id"] != "hours"]
    with pytest.raises(CampaignChangeRefused, match="option 'hours' of question 'barrier'"):
        async with db.session() as s:
            await load_campaign(s, CampaignSpec.model_validate(data))
    data2 = example_spec.model_dump(mode="json", exclude_none=True)
    next(q for q in data2["questions"] if q["id"] == "barrier")["type"] = "multi"
    with pytest.raises(CampaignChangeRefused, match="type cannot change"):
        async with db.session() as s:
            await load_campaign(s, CampaignSpec.model_validate(data2))
    data3 = example_spec.model_dump(mode="json", exclude_none=True)
    data3["questions"] = [q for q in data3["questions"] if q["id"] != "barrier"]
    for q in data3["questions"]:
        q.pop("show_if", None)
    with pytest.raises(CampaignChangeRefused, match="cannot be removed"):
        async with db.session() as s:
            await load_campaign(s, CampaignSpec.model_validate(data3))
    # adding an option and a new question is fine
    data4 = example_spec.model_dump(mode="json", exclude_none=True)
    next(q for q in data4["questions"] if q["id"] == "barrier")["options"].append(
        {"id": "cost", "text": {lang: "Cost" for lang in data4["languages"]}})
    data4["questions"].append({"id": "extra", "type": "yesno",
                               "text": {lang: "More?" for lang in data4["languages"]}})
    c, _ = await _load(db, CampaignSpec.model_validate(data4))
    assert c.version == 2  # the refused loads wrote nothing


async def test_forget_leaves_no_row(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    await _load(db, example_spec)
    pid, rid = await _answer_one(db, keys, example_spec, user_id=5)
    other_pid, _ = await _answer_one(db, keys, example_spec, user_id=6)
    async with db.session() as s:
        await responses.set_groups(s, rid, "community", ["somali"])
        await s.commit()
    async with db.session() as s:
        await participants.forget(s, pid)
        await s.commit()
    async with db.session() as s:
        for model, col in ((Participant, Participant.id), (Contact, Contact.participant_id),
                           (Response, Response.participant_id)):
            assert await s.scalar(select(func.count()).select_from(model).where(col == pid)) == 0
        assert await s.scalar(select(func.count()).select_from(Answer).where(Answer.response_id == rid)) == 0
        assert await s.scalar(select(func.count()).select_from(ResponseGroup)
                              .where(ResponseGroup.response_id == rid)) == 0
        assert await s.scalar(select(func.count()).select_from(Participant)) == 1  # the other one stays


async def test_contact_is_encrypted_and_pseudonym_keyed(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    await _load(db, example_spec)
    user_id = 987654321
    pid, _ = await _answer_one(db, keys, example_spec, user_id=user_id)
    async with db.session() as s:
        p = await s.get(Participant, pid)
        assert p is not None and str(user_id) not in p.pseudonym
        import hashlib

        assert p.pseudonym != hashlib.sha256(str(user_id).encode()).hexdigest()
        assert await participants.chat_id(s, keys, pid) == user_id
        contact = await s.get(Contact, pid)
        assert contact is not None and str(user_id).encode() not in contact.chat_ciphertext


async def test_every_table_is_migrated(db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import inspect

    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= names
