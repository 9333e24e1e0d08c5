"""Issue 15 points 15-19 and issue 17: the XLSForm import keeps what the form says (group labels,
formatting, personal questions, language names, Likert scales, recordings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.campaigns.audio import RATE, synthesize
from bot.campaigns.check import check_file
from bot.campaigns.xlsform import import_xlsform
from tests.test_campaign_check import run_cli
from tests.test_spoken_questions import write_audio
from tests.test_xlsform import build_form

SETTINGS = [["form_title", "form_id", "default_language"], ["Service check", "service_check", "English (en)"]]


def _imported(tmp_path: Path, survey, choices=None, **kwargs):  # type: ignore[no-untyped-def]
    form = build_form(tmp_path / "form.xlsx", survey, choices or [["list_name", "name", "label"]], SETTINGS)
    result = import_xlsform(form, "campaign.yaml", **kwargs)
    out = tmp_path / "campaign.yaml"
    out.write_text(result.yaml_text, encoding="utf-8")
    checked = check_file(out)
    assert checked.ok, [p.render(checked.name) for p in checked.problems]
    assert checked.spec is not None
    return result, {q.id: q for q in checked.spec.questions}, checked


def _notes(result) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(f.render() for f in [*result.notes, *result.left_out])


def test_group_labels_are_carried_as_info_screen_or_lead_in(tmp_path: Path) -> None:
    survey = [["type", "name", "label", "appearance"],
              ["begin_group", "work", "About your work", None],
              ["select_one yn", "parttime", "Part-time", None],
              ["end_group"],
              ["begin_group", "matrix", "How often do you use these services?", "table-list"],
              ["select_one yn", "gp", "The GP surgery", None],
              ["select_one yn", "library", "The library", None],
              ["end_group"]]
    choices = [["list_name", "name", "label"], ["yn", "yes", "Yes"], ["yn", "no", "No"]]
    result, q, _ = _imported(tmp_path, survey, choices)
    assert list(q) == ["work", "parttime", "gp", "library"]
    assert q["work"].type == "info" and q["work"].text["en"] == "About your work"
    assert q["gp"].text["en"] == "How often do you use these services?\n\nThe GP surgery"
    assert q["library"].text["en"].startswith("How often do you use these services?")
    notes = _notes(result)
    assert "group 'work' became an info screen" in notes and "group 'matrix' was put before" in notes


def test_odk_markdown_becomes_plain_text(tmp_path: Path) -> None:
    survey = [["type", "name", "label", "hint"],
              ["text", "idea", "**What** would _you_ change? See [our plan](https://council.example/plan)",
               "Prices \\*may\\* change"],
              ["note", "head", "# Thank you", None]]
    result, q, _ = _imported(tmp_path, survey)
    assert q["idea"].text["en"] == ("What would you change? See our plan (https://council.example/plan)\n"
                                    "Prices *may* change")
    assert q["head"].text["en"] == "Thank you"
    assert "ODK formatting" in _notes(result)


def test_questions_asking_for_personal_details_are_warned_in_import_and_check(tmp_path: Path) -> None:
    survey = [["type", "name", "label"],
              ["text", "phone_number", "What is your phone number?"],
              ["text", "contact", "Your e-mail address"],
              ["text", "fullname", "What is your name?"],
              ["text", "why", "Why did you come?"]]
    result, _, checked = _imported(tmp_path, survey)
    notes = _notes(result)
    assert "'phone_number': this question asks for a phone number; answers will be stored as [phone]" in notes
    assert "'contact': this question asks for an e-mail address; answers will be stored as [email]" in notes
    assert "'fullname': this question asks for a name; answers will be stored as [name]" in notes
    assert "'why'" not in notes
    warned = {p.where: p.message for p in checked.warnings}
    assert set(warned) == {"question 'phone_number'", "question 'contact'", "question 'fullname'"}
    done = run_cli("campaign", "check", str(tmp_path / "campaign.yaml"))
    assert done.returncode == 0
    out = " ".join(done.stdout.split())
    assert "question 'phone_number': this question asks for a phone number; answers will be stored as [phone]" in out


def test_language_columns_named_without_a_code(tmp_path: Path) -> None:
    survey = [["type", "name", "label::English", "label::Tigirigna", "label::Amharique", "label::Elvish"],
              ["text", "idea", "What would you change?", "እንታይ ምቐየርካ?", "ምን ትቀይራለህ?", "Mae govannen"]]
    settings = [["form_title", "form_id"], ["Service check", "service_check"]]
    form = build_form(tmp_path / "form.xlsx", survey, [["list_name", "name", "label"]], settings)
    result = import_xlsform(form, "campaign.yaml")
    assert list(result.campaign["languages"]) == ["en", "ti", "am"]
    q = result.campaign["questions"][0]
    assert q["text"]["ti"] == "እንታይ ምቐየርካ?" and q["text"]["am"] == "ምን ትቀይራለህ?"
    # only the column that cannot be told is set aside, with what to write instead
    assert any("label::Elvish" in f.message and "(so)" in f.message for f in result.left_out)


def test_likert_lists_become_ratings_with_end_labels(tmp_path: Path) -> None:
    survey = [["type", "name", "label"],
              ["select_one quality", "overall", "How was your visit?"],
              ["text", "why_bad", "What went wrong?", ],
              ["select_one place", "where", "Where did you go?"]]
    survey[2] += [None]
    survey = [[*r, *([None] * (4 - len(r)))] for r in survey]
    survey[0][3] = "relevant"
    survey[2][3] = "${overall} = 'bad' or ${overall} = 'very_bad'"
    choices = [["list_name", "name", "label"],
               ["quality", "very_bad", "Very bad"], ["quality", "bad", "Bad"], ["quality", "ok", "Neither"],
               ["quality", "good", "Good"], ["quality", "very_good", "Very good"],
               ["place", "a", "North"], ["place", "b", "South"], ["place", "c", "East"], ["place", "d", "West"],
               ["place", "e", "Centre"]]
    result, q, _ = _imported(tmp_path, survey, choices)
    assert q["overall"].type == "rating" and q["overall"].rating_scale == 5
    assert q["overall"].labels == {"en": ["Very bad", "Very good"]}
    assert q["why_bad"].show_if == {"overall": [1, 2]}
    assert q["where"].type == "choice"  # five places are not a scale
    assert "became a 1 to 5 rating with those end labels" in _notes(result)


def test_audio_columns_are_imported_with_the_media_folder(tmp_path: Path) -> None:
    media = tmp_path / "media"
    voice = synthesize("A recorded question.", "en")
    write_audio(media / "idea-so.wav", voice, "pcm_s16le", "wav")
    write_audio(media / "yes-so.wav", voice, "pcm_s16le", "wav")
    write_audio(media / "too-long.wav", np.zeros(RATE * 61, dtype=np.int16) + 200, "pcm_s16le", "wav")
    survey = [["type", "name", "label::English (en)", "label::Somali (so)", "audio::Somali (so)",
               "media::audio::English (en)"],
              ["text", "idea", "What would you change?", "Maxaad beddeli lahayd?", "idea-so.wav", None],
              ["select_one yn", "back", "Would you come back?", "Ma soo laaban lahayd?", None, "missing.ogg"]]
    choices = [["list_name", "name", "label::English (en)", "label::Somali (so)", "audio::Somali (so)"],
               ["yn", "yes", "Yes", "Haa", "yes-so.wav"], ["yn", "no", "No", "Maya", None]]
    out = tmp_path / "out"
    out.mkdir()
    form = build_form(tmp_path / "form.xlsx", survey, choices, SETTINGS)
    result = import_xlsform(form, "campaign.yaml", media=media, out_dir=out)
    (out / "campaign.yaml").write_text(result.yaml_text, encoding="utf-8")
    checked = check_file(out / "campaign.yaml")
    assert checked.ok, [p.render(checked.name) for p in checked.problems]
    q = {x.id: x for x in checked.spec.questions}  # type: ignore[union-attr]
    assert q["idea"].audio == {"so": "../media/idea-so.wav"}
    assert q["back"].options[0].audio == {"so": "../media/yes-so.wav"}
    assert any("missing.ogg" in f.message for f in result.left_out)
    assert not any("pictures, audio and video" in f.message for f in result.left_out)
    # without the folder, the recordings are named as left out (the form still imports)
    result = import_xlsform(form, "campaign.yaml")
    assert any("--media FOLDER" in f.message for f in result.left_out)
