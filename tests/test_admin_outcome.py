"""Outcome files are checked with file:line errors and reach only those who asked to hear back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from analysis.disclosure import MAX_NOISE
from bot.models import AuditEvent, Broadcast, Delivery, Outcome
from bot.services.broadcasts import plan_outcome, send_plan
from bot.services.outcomes import (
    OutcomeChangeRefused,
    OutcomeSpec,
    check_outcome_file,
    check_outcome_text,
    store_outcome,
)
from tests.admin_world import FIRST_USER, Someone, load_open, seed
from tests.participants import RecordingBot
from tests.test_admin_invites import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "outcome-clinic-access.yaml"
LANGS = ("en", "ar", "so", "uk", "fa", "es")


def texts(word: str) -> str:
    return "{" + ", ".join(f"{lang}: {word} {lang}" for lang in LANGS) + "}"


def test_the_example_is_valid(example_spec) -> None:  # type: ignore[no-untyped-def]
    check = check_outcome_file(EXAMPLE, example_spec)
    assert check.ok, [p.render(check.name) for p in check.problems]
    assert check.spec is not None and check.spec.variants[0]["groups"] == {"community": ["somali"]}


def test_problems_name_the_line(example_spec) -> None:  # type: ignore[no-untyped-def]
    source = "\n".join([
        "key: has space",                                   # 1
        "text:",                                            # 2
        "  en: Thank you",                                  # 3
        "  de: Danke",                                      # 4
        "variants:",                                        # 5
        "  - groups: {faith: any}",                         # 6
        f"    text: {texts('v')}",                          # 7
        "  - groups: {community: [somali, polish]}",       # 8
        "    text: {en: '   '}",                            # 9
        "colour: blue",                                     # 10
    ])
    check = check_outcome_text(source, example_spec, "out.yaml")
    rendered = [p.render(check.name) for p in check.problems]
    assert not check.ok
    assert "out.yaml:1: 'has space' is not a valid key: use 1 to 64 letters, digits, _ and -" in rendered
    assert any(r.startswith("out.yaml:2: text missing in 'ar'") for r in rendered)
    assert any(r.startswith("out.yaml:4: 'de' is not one of the campaign languages") for r in rendered)
    assert any(r.startswith("out.yaml:6: variant #1: unknown group dimension 'faith'") for r in rendered)
    assert any(r.startswith("out.yaml:8: variant #2: unknown group 'polish' in 'community'") for r in rendered)
    assert any(r.startswith("out.yaml:9: variant #2: the 'en' text is empty") for r in rendered)
    assert any(r.startswith("out.yaml:10: unknown key 'colour'") for r in rendered)
    assert check_outcome_text("key: [unclosed", example_spec).problems[0].line == 1


async def test_sent_only_to_those_who_asked_with_group_variants(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    asked_en, asked_so_somali, asked_ar, not_asked, asked_then_stopped = (FIRST_USER + i for i in range(5))
    await seed(db, keys, campaign.id, [
        Someone(asked_en, "en", consented_hours_ago=3, completed=True, wants_outcome=True),
        Someone(asked_so_somali, "so", consented_hours_ago=3, completed=True, wants_outcome=True,
                groups={"community": ["somali", "other"]}),
        Someone(asked_ar, "ar", consented_hours_ago=3, completed=True, wants_outcome=True,
                groups={"community": ["arabic"]}),
        Someone(not_asked, "en", consented_hours_ago=3, completed=True),
        Someone(asked_then_stopped, "en", consented_hours_ago=3, completed=True, wants_outcome=True,
                stopped=True),
    ])
    check = check_outcome_file(EXAMPLE, example_spec)
    assert check.spec is not None
    bot = RecordingBot()
    async with db.session() as s:
        outcome, created = await store_outcome(s, campaign.id, check.spec)
        plan = await plan_outcome(s, campaign, outcome, "test")
    summary = await send_plan(db, keys, bot, plan, "test", campaign.id, rate=100, per_chat_interval=0)
    assert created and summary.sent == 3 and summary.total == 3
    got = {int(m.chat_id): m.text for m in bot.calls}
    assert set(got) == {asked_en, asked_so_somali, asked_ar}
    assert "you can ask for an interpreter when you book" in got[asked_en]
    assert "turjubaan Soomaali ahna" in got[asked_so_somali]  # the Somali variant, in Somali
    assert "ويمكنكم طلب مترجم عند الحجز" in got[asked_ar]     # the general text, in Arabic
    assert all(m.reply_markup is None for m in bot.calls)

    # sending the same file again resumes (nothing left); changing a sent text is refused
    async with db.session() as s:
        again = await plan_outcome(s, campaign, (await store_outcome(s, campaign.id, check.spec))[0], "test")
        assert again.to_send == 0 and not again.created
        changed = OutcomeSpec(check.spec.key, {**check.spec.texts, "en": "Something else"}, check.spec.variants)
        with pytest.raises(OutcomeChangeRefused, match="give it a new key"):
            await store_outcome(s, campaign.id, changed)
        assert len((await s.scalars(select(Outcome))).all()) == 1
        assert len((await s.scalars(select(Delivery))).all()) == 3


async def test_cli_refuses_a_bad_file_and_sends_nothing(db_url, db, keys, example_spec, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await load_open(db, example_spec)
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: ok\ntext:\n  en: only English\n", encoding="utf-8")
    result = await cli(db_url, keys, "outcome", "send", "clinic-access", str(bad),
                       COASSESS_BOT_TOKEN="123456:TEST")
    assert result.exit_code == 1
    assert f"{bad}:2: text missing in 'ar'" in result.output and "Nothing was sent." in result.output


def _rows(output: str, title: str) -> dict[str, str]:
    """The rows of one of the dry run's tables, as {label: shown count}."""
    table = output[output.index(title):]
    table = table[:table.index("└")]
    return {m[0]: m[1] for m in re.findall(r"│ (\S[^│]*?)\s+│\s+(\S+) │", table)}


async def test_cli_dry_run_counts_with_small_groups_hidden_and_stores_nothing(  # type: ignore[no-untyped-def]
        db_url, db, keys, example_spec) -> None:
    campaign = await load_open(db, example_spec)
    people = [Someone(FIRST_USER + i, "en", consented_hours_ago=3, completed=True, wants_outcome=True)
              for i in range(12)]
    people += [Someone(FIRST_USER + 100 + i, "ar", consented_hours_ago=3, completed=True, wants_outcome=True,
                       groups={"community": ["arabic"]}) for i in range(11)]
    people += [Someone(FIRST_USER + 200 + i, "so", consented_hours_ago=3, completed=True, wants_outcome=True,
                       groups={"community": ["somali"]}) for i in range(2)]
    people += [Someone(FIRST_USER + 300, "so", consented_hours_ago=3, completed=True),        # did not ask
               Someone(FIRST_USER + 301, "so", consented_hours_ago=3, completed=True, wants_outcome=True,
                       stopped=True)]                                                      # said /stop
    await seed(db, keys, campaign.id, people)
    result = await cli(db_url, keys, "outcome", "send", campaign.id, str(EXAMPLE), "--dry-run",
                       COASSESS_BOT_TOKEN="")  # a dry run needs no token
    out = result.output
    assert result.exit_code == 0, out
    # published counts are perturbed by at most MAX_NOISE (cell key method, analysis.disclosure)
    total = re.search(r"(\d+) people would receive 'spring-2026' \(nothing was sent or stored\)", out)
    assert total and abs(int(total.group(1)) - 25) <= MAX_NOISE, out
    languages = _rows(out, "by language")
    assert languages["so"] == "<10" and languages["uk"] == "0"
    assert "2" not in languages.values() and "c" in languages.values()  # 2 = 25 - 12 - 11: one more hidden
    community = _rows(out, "by community")
    assert community["somali"] == "<10"
    assert abs(int(community["(not known)"]) - 12) <= MAX_NOISE and abs(int(community["arabic"]) - 11) <= MAX_NOISE
    texts = _rows(out, "by text")
    assert texts["variant #1 (community=somali)"] == "<10" and texts["the general text"] == "c"
    assert "<10: fewer than 10 people, hidden to protect them" in out
    async with db.session() as s:
        assert not (await s.scalars(select(Outcome))).all()
        assert not (await s.scalars(select(Broadcast))).all()
        assert not (await s.scalars(select(AuditEvent).where(AuditEvent.action == "outcome"))).all()


async def test_cli_dry_run_warns_that_a_changed_sent_outcome_would_be_refused(  # type: ignore[no-untyped-def]
        db_url, db, keys, example_spec, tmp_path) -> None:
    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER, "en", consented_hours_ago=3, completed=True,
                                               wants_outcome=True)])
    check = check_outcome_file(EXAMPLE, example_spec)
    assert check.spec is not None
    async with db.session() as s:
        outcome, _ = await store_outcome(s, campaign.id, check.spec)
        plan = await plan_outcome(s, campaign, outcome, "test")
    await send_plan(db, keys, RecordingBot(), plan, "test", campaign.id, rate=100, per_chat_interval=0)
    same = await cli(db_url, keys, "outcome", "send", campaign.id, str(EXAMPLE), "--dry-run")
    assert same.exit_code == 0, same.output
    # one person: the first run's line does not say so; nobody is left to send it to
    assert "0 people would receive 'spring-2026'" in same.output
    assert "'spring-2026' was first sent on" in same.output and "(<10 sent, 0 failed" in same.output
    assert "1 person" not in same.output and "1 sent" not in same.output
    changed = tmp_path / "changed.yaml"
    changed.write_text(EXAMPLE.read_text(encoding="utf-8").replace("Thank you for telling us.",
                                                                   "Thanks!", 1), encoding="utf-8")
    refused = await cli(db_url, keys, "outcome", "send", campaign.id, str(changed), "--dry-run")
    assert refused.exit_code == 1
    assert "sending this file would be refused" in refused.output and "give it a new key" in refused.output
    async with db.session() as s:
        assert (await s.scalars(select(Outcome))).one().texts == check.spec.texts  # unchanged


async def test_cli_dry_run_hides_a_small_total_that_a_variant_targets(  # type: ignore[no-untyped-def]
        db_url, db, keys, example_spec) -> None:
    # The reviewer's case: one person, in the group a variant speaks to.
    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER, "so", consented_hours_ago=3, completed=True,
                                               wants_outcome=True, groups={"community": ["somali"]})])
    result = await cli(db_url, keys, "outcome", "send", campaign.id, str(EXAMPLE), "--dry-run")
    out = result.output
    assert result.exit_code == 0, out
    assert "<10 people would receive 'spring-2026' (nothing was sent or stored)" in out
    assert "1 person" not in out
    assert _rows(out, "by text") == {"the general text": "0", "variant #1 (community=somali)": "<10"}


async def test_cli_real_send_hides_a_small_total(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.sandbox import Sandbox

    campaign = await load_open(db, example_spec)
    async with Sandbox() as sandbox:
        await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en", consented_hours_ago=3, completed=True,
                                                   wants_outcome=True) for i in range(2)], sandbox)
        result = await cli(db_url, keys, "outcome", "send", campaign.id, str(EXAMPLE),
                           COASSESS_BOT_TOKEN=sandbox.token, COASSESS_TELEGRAM_API_URL=sandbox.api_url)
    assert result.exit_code == 0, result.output
    assert "Sending 'spring-2026' to <10 people who asked to hear back." in result.output
    assert "2 people" not in result.output
    async with db.session() as s:
        assert [d.state for d in (await s.scalars(select(Delivery))).all()] == ["sent", "sent"]


async def test_cli_stops_before_sending_when_the_contact_key_is_not_this_databases(  # type: ignore[no-untyped-def]
        db_url, db, keys, example_spec) -> None:
    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER, "en", consented_hours_ago=3, completed=True,
                                               wants_outcome=True)])
    result = await cli(db_url, keys, "outcome", "send", campaign.id, str(EXAMPLE),
                       COASSESS_BOT_TOKEN="123456:TEST", COASSESS_CONTACT_KEY="not-the-key-of-this-database")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the contact key cannot open the contacts in this database" in result.output
    assert "Nothing was sent" in result.output
    async with db.session() as s:
        assert not (await s.scalars(select(Outcome))).all() and not (await s.scalars(select(Delivery))).all()
