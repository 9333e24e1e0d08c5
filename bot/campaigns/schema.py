"""The campaign file format: the contract administrators write (see docs/campaigns.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

QUESTION_TYPES = ("rating", "choice", "multi", "yesno", "rank", "budget", "text", "info")
MODES = ("coassessment", "codesign", "cocommissioning")
ID_PATTERN = r"^[a-z0-9_]{1,24}$"
CAMPAIGN_ID_PATTERN = r"^[a-z0-9-]{3,40}$"
INVITE_CODE_PATTERN = r"^[A-Za-z0-9-]{1,20}$"
PREFER_NOT = "prefer_not_to_say"
OTHER = "other"

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Texts = dict[str, str]
# A recording per language, named relative to the campaign file: {so: audio/q1-so.m4a}
Audio = dict[str, str]

# Limits that keep every message under Telegram's 4,096 characters and buttons readable.
MAX_QUESTION_TEXT = 1500
MAX_INTRO_TEXT = 2000
MAX_TITLE_TEXT = 120
MAX_OPTION_TEXT = 60
MAX_OPTIONS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class Option(_Strict):
    id: Id
    text: Texts
    audio: Audio | None = None


class Dimension(_Strict):
    id: Id
    multiple: bool = False
    text: Texts
    audio: Audio | None = None
    options: list[Option] = Field(min_length=1)


class InviteSpec(_Strict):
    code: Annotated[str, StringConstraints(pattern=INVITE_CODE_PATTERN)]
    partner: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    groups: dict[str, str | list[str]] = Field(default_factory=dict)


class Question(_Strict):
    id: Id
    type: Literal["rating", "choice", "multi", "yesno", "rank", "budget", "text", "info"]
    text: Texts
    audio: Audio | None = None
    optional: bool = False
    scale: int | None = Field(default=None, ge=2, le=10)
    labels: dict[str, list[str]] | None = None
    options: list[Option] | None = None
    other: bool = False
    tokens: int | None = Field(default=None, ge=1, le=100)
    pick: int | None = Field(default=None, ge=1)
    voice: bool = False
    show_if: dict[str, list[str | int | bool]] | None = None

    @property
    def rating_scale(self) -> int:
        return self.scale or 5

    @property
    def option_ids(self) -> list[str]:
        return [o.id for o in self.options or []]

    def valid_values(self) -> set[str]:
        """The values a `show_if` may name for this question."""
        if self.type == "rating":
            return {str(i) for i in range(1, self.rating_scale + 1)}
        if self.type == "yesno":
            return {"yes", "no"}
        values = set(self.option_ids)
        if self.other:
            values.add(OTHER)
        return values


# Seconds a participant spends on a question of each type (CampaignSpec.minutes).
_SECONDS = {"info": 10, "rating": 10, "yesno": 8, "choice": 12, "multi": 20, "rank": 25, "budget": 40,
            "text": 45}


class CampaignSpec(_Strict):
    id: Annotated[str, StringConstraints(pattern=CAMPAIGN_ID_PATTERN)]
    mode: Literal["coassessment", "codesign", "cocommissioning"]
    service: str | None = None
    languages: list[str] = Field(min_length=1)
    min_group_size: int = Field(default=10, ge=2, le=1000)
    title: Texts
    intro: Texts | None = None
    intro_audio: Audio | None = None
    opens: datetime | None = None
    closes: datetime | None = None
    reminder_after_hours: float | None = Field(default=None, gt=0, le=24 * 60)
    groups: list[Dimension] = Field(default_factory=list)
    baseline: dict[str, dict[str, float]] = Field(default_factory=dict)
    invites: list[InviteSpec] = Field(default_factory=list)
    questions: list[Question] = Field(min_length=1)

    @field_validator("opens", "closes")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def minutes(self) -> int:
        """About how long a participant takes, for the consent screen: whole minutes, at least 1.

        Seconds per question by type, for someone reading in a second language on a small phone
        (a tap on a rating is quick; a budget is several taps; a written answer is typing), plus
        a group question each and the consent itself. Questions behind show_if count too: the
        estimate is for the longest way through.
        """
        seconds = 20 + 8 * len(self.groups) + sum(_SECONDS[q.type] for q in self.questions)
        return max(1, int(seconds / 60 + 0.5))

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def dimension(self, did: str) -> Dimension:
        for d in self.groups:
            if d.id == did:
                return d
        raise KeyError(did)

    def text(self, texts: Texts | None, lang: str) -> str:
        """A campaign text in `lang`, falling back to the campaign's first language."""
        if not texts:
            return ""
        return texts.get(lang) or texts.get(self.languages[0]) or next(iter(texts.values()), "")


def as_dict(spec: CampaignSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)
