"""Partner invites: link, QR code, poster, group presets, responses per invite, and the CLI."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from analysis.disclosure import MAX_NOISE
from bot.models import AuditEvent, Invite
from bot.services.invites import (
    InviteError,
    create_invite,
    invite_link,
    parse_groups,
    poster_html,
    resolve_bot_username,
    responses_per_invite,
    write_invite_files,
)
from bot.settings import ConfigurationError, get_settings
from dialogs.commands import parse_payload
from tests.admin_world import FIRST_USER, Someone, load_open, seed

BOT = "CouncilSurveyBot"


def test_link_carries_the_payload() -> None:
    link = invite_link(BOT, "clinic-access", "central-lib")
    assert link == f"https://t.me/{BOT}?start=clinic-access_central-lib"
    assert parse_payload(link.split("start=")[1]) == ("clinic-access", "central-lib")


def test_groups_are_checked_against_the_campaign(example_spec) -> None:  # type: ignore[no-untyped-def]
    assert parse_groups(["community=arabic", "community=somali", "age=over64"], example_spec) == {
        "community": ["arabic", "somali"], "age": ["over64"]}
    with pytest.raises(InviteError, match="no group dimension 'faith'.*community, age, disability"):
        parse_groups(["faith=muslim"], example_spec)
    with pytest.raises(InviteError, match="'polish' is not a group of 'community'. Use one of: somali"):
        parse_groups(["community=polish"], example_spec)
    with pytest.raises(InviteError, match="'age' allows one group per person"):
        parse_groups(["age=over64", "age=under25"], example_spec)
    with pytest.raises(InviteError, match="dimension=group"):
        parse_groups(["arabic"], example_spec)


def test_poster_is_printable_multilingual_and_escaped(example_spec) -> None:  # type: ignore[no-untyped-def]
    link = invite_link(BOT, example_spec.id, "lib")
    page = poster_html(example_spec, 'Library <script>alert("x")</script> & Co', link)
    assert "@page { size: A4" in page and "<svg" in page
    assert '<h1 lang="ar" dir="rtl">رأيك في مركز نورث ستريت الصحي</h1>' in page
    assert '<h1 lang="fa" dir="rtl">' in page and '<h1 lang="so" dir="ltr">' in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; Co" in page
    assert f'<p class="link">{link}</p>' in page
    for title in example_spec.title.values():
        assert html.escape(title) in page


async def test_create_write_files_and_count_responses(db, keys, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    async with db.session() as s:
        invite = await create_invite(s, example_spec, "central-lib", "  Central   Library ",
                                     {"community": ["arabic"]})
        await s.commit()
        with pytest.raises(InviteError, match="already has an invite 'central-lib'"):
            await create_invite(s, example_spec, "central-lib", "Other")
        with pytest.raises(InviteError, match="cannot be an invite code"):
            await create_invite(s, example_spec, "bad_code", "Other")
    assert invite.partner == "Central Library" and invite.groups == {"community": ["arabic"]}
    link = invite_link(BOT, campaign.id, invite.code)
    files = write_invite_files(tmp_path / "out", example_spec, invite.code, invite.partner, link)
    assert files.png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "<svg" in files.svg.read_text() and files.poster.name == "clinic-access-central-lib-poster.html"
    assert link in files.poster.read_text()

    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, consented_hours_ago=1, completed=i < 2)
                                       for i in range(3)])
    async with db.session() as s:
        from bot.models import Response

        for r in (await s.scalars(select(Response))).all():
            r.invite_id = invite.id
        await s.commit()
        reach = {r.code: r for r in await responses_per_invite(s, campaign.id)}
    assert (reach["central-lib"].started, reach["central-lib"].consented, reach["central-lib"].completed) == (3, 3, 2)
    assert reach["mosque"].started == 0  # invites from the campaign file are listed too


async def test_username_from_settings_or_telegram() -> None:
    assert await resolve_bot_username("@CouncilSurveyBot") == "CouncilSurveyBot"
    with pytest.raises(ConfigurationError, match="COASSESS_BOT_USERNAME"):
        await resolve_bot_username(None, None)
    with pytest.raises(ConfigurationError, match="not a Telegram bot username"):
        await resolve_bot_username("no spaces allowed")


def cli(db_url: str, keys, *args: str, **env: str):  # type: ignore[no-untyped-def]
    """Run `coassess ...` in a worker thread (it starts its own event loop)."""
    from bot.cli import app

    base = {"COASSESS_DATABASE_URL": db_url, "COASSESS_PSEUDONYM_KEY": keys.pseudonym_key.decode(),
            "COASSESS_CONTACT_KEY": keys.contact_key.decode(), "COASSESS_BOT_USERNAME": BOT,
            "COLUMNS": "200"}

    def run():  # type: ignore[no-untyped-def]
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env={**base, **env})
        finally:
            get_settings.cache_clear()

    return asyncio.to_thread(run)


async def test_cli_invite_create_and_list(db_url, db, keys, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await load_open(db, example_spec)
    out = tmp_path / "posters"
    result = await cli(db_url, keys, "invite", "create", "clinic-access", "--code", "somali-2",
                       "--partner", "Somali Community Association", "--group", "community=somali",
                       "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"https://t.me/{BOT}?start=clinic-access_somali-2" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "clinic-access-somali-2-poster.html", "clinic-access-somali-2.png", "clinic-access-somali-2.svg"]
    bad = await cli(db_url, keys, "invite", "create", "clinic-access", "--code", "x",
                    "--partner", "P", "--group", "faith=none", "-o", str(out))
    assert bad.exit_code == 1 and "no group dimension 'faith'" in bad.output
    listed = await cli(db_url, keys, "invite", "list", "clinic-access")
    assert listed.exit_code == 0 and "somali-2" in listed.output and "Al-Noor Mosque" in listed.output
    async with db.session() as s:
        invite = (await s.scalars(select(Invite).where(Invite.code == "somali-2"))).one()
        event = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "invite"))).one()
    assert invite.groups == {"community": ["somali"]}
    assert event.actor.startswith("cli:") and event.details["code"] == "somali-2"
    audit = await cli(db_url, keys, "audit", "--campaign", "clinic-access")
    assert audit.exit_code == 0 and re.search(r"invite\s+│\s+clinic-access", audit.output)


def test_poster_footer_is_in_every_campaign_language_with_a_translation(example_spec) -> None:  # type: ignore[no-untyped-def]
    page = poster_html(example_spec, "Al-Noor Mosque", invite_link(BOT, example_spec.id, "noor"))
    footer = page[page.index('<footer class="partner">'):page.index("</footer>")]
    # the first language leads; every other campaign language follows in its own words
    assert '<p class="first"><span lang="en" dir="ltr">Shared with you by <bdi>Al-Noor Mosque</bdi>' in footer
    assert '<span lang="ar" dir="rtl">شاركه معك <bdi>Al-Noor Mosque</bdi></span>' in footer
    assert '<span lang="es" dir="ltr">Invitación de <bdi>Al-Noor Mosque</bdi></span>' in footer
    assert [m for m in re.findall(r'<span lang="([a-z]+)"', footer)] == list(example_spec.languages)
    assert footer.count("Shared with you by") == 1  # English is not passed off as another language

    # a language with no catalog is left out rather than shown in English under its label
    german_first = example_spec.model_copy(update={
        "languages": ["de", "ar"], "title": {"de": "Ihre Meinung", "ar": "رأيك"}})
    footer = poster_html(german_first, "Bibliothek", "https://t.me/x")
    footer = footer[footer.index('<footer class="partner">'):footer.index("</footer>")]
    assert 'lang="de"' not in footer and '<span lang="ar" dir="rtl">شاركه معك' in footer


async def test_cli_makes_the_files_of_an_existing_invite_again(db_url, db, keys, example_spec,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    await load_open(db, example_spec)
    out = tmp_path / "posters"
    # 'library' is written in the campaign file: the walk-through's first command prints its poster
    again = await cli(db_url, keys, "invite", "create", "clinic-access", "--code", "library",
                      "--partner", "Central Library", "-o", str(out))
    assert again.exit_code == 0, again.output
    assert "already existed" in again.output and (out / "clinic-access-library-poster.html").exists()
    # another partner (or other groups) under a taken code is refused, saying what it is for
    taken = await cli(db_url, keys, "invite", "create", "clinic-access", "--code", "mosque",
                      "--partner", "Al-Noor Mosque", "-o", str(out))
    assert taken.exit_code == 1
    assert "already has an invite 'mosque' (Al-Noor Mosque, preset groups community=arabic)" in taken.output
    async with db.session() as s:
        assert len((await s.scalars(select(Invite).where(Invite.code == "library"))).all()) == 1
        assert not (await s.scalars(select(AuditEvent).where(AuditEvent.action == "invite"))).all()


async def test_cli_says_how_to_name_the_bot_when_it_cannot(db_url, db, keys, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await load_open(db, example_spec)
    result = await cli(db_url, keys, "invite", "create", "clinic-access", "--code", "new-one",
                       "--partner", "P", "-o", str(tmp_path / "posters"), COASSESS_BOT_USERNAME="",
                       COASSESS_BOT_TOKEN="")
    assert result.exit_code == 1
    assert "neither COASSESS_BOT_USERNAME nor COASSESS_BOT_TOKEN is set" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "posters").exists()
    async with db.session() as s:
        assert not (await s.scalars(select(Invite).where(Invite.code == "new-one"))).all()


async def test_officer_tables_of_people_per_link_hide_small_counts(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    """Three people through the mosque's link, twelve through the library's: the 3 is hidden, and
    so is one more count, so that the total cannot give it away; a zero is shown."""
    from bot.models import Response

    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, consented_hours_ago=1, completed=True)
                                       for i in range(15)])
    async with db.session() as s:
        invites = {i.code: i.id for i in (await s.scalars(select(Invite))).all()}
        for n, r in enumerate((await s.scalars(select(Response).order_by(Response.id))).all()):
            r.invite_id = invites["mosque"] if n < 3 else invites["library"]
        await s.commit()

    listed = await cli(db_url, keys, "invite", "list", "clinic-access")
    assert listed.exit_code == 0, listed.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[4:7]]
            for line in listed.output.splitlines() if line.count("│") >= 7}
    assert rows["mosque"] == ["<10", "<10", "<10"]
    assert rows["somali-assoc"] == ["0", "0", "0"]
    assert rows["library"] == ["c", "c", "c"]  # 15 - 12 would give the mosque's 3 away
    # the 15 started, agreed and finished: the same people, so the same (perturbed) figure
    total = rows["all"][0]
    assert rows["all"] == [total] * 3 and abs(int(total) - 15) <= MAX_NOISE
    assert "c: hidden so that a small count cannot be worked out" in listed.output

    shown = await cli(db_url, keys, "campaign", "show", "clinic-access")
    assert shown.exit_code == 0 and re.search(r"mosque\s+│[^\n]*│\s+<10\s+│", shown.output)
    campaigns = await cli(db_url, keys, "campaign", "list")
    assert campaigns.exit_code == 0 and re.search(rf"clinic-access[^\n]*│\s+{total}\s+│\s+{total}\s+│",
                                                  campaigns.output)
