"""The pseudonymous data model: campaigns and their questions, participants, responses, answers.

No Telegram user id, chat id, name, username or phone number is stored in any table but
`contact`, and there only encrypted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


# Record keys for the cell key method (analysis.disclosure): whole numbers 0 <= key < this.
RECORD_KEY_MODULUS = 2 ** 31


def new_record_key() -> int:
    """A random record key, from the operating system's random source; it goes with its row."""
    import secrets

    return secrets.randbelow(RECORD_KEY_MODULUS)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which forgets the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))
    service: Mapped[str | None] = mapped_column(String(200))
    languages: Mapped[list[Any]] = mapped_column(JSON)
    min_group_size: Mapped[int] = mapped_column(Integer, default=10)
    title: Mapped[dict[str, Any]] = mapped_column(JSON)
    intro: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    opens: Mapped[datetime | None]
    closes: Mapped[datetime | None]
    # draft: loaded, not open; open / closed: set by an administrator or by the schedule.
    status: Mapped[str] = mapped_column(String(12), default="draft")
    reminder_after_hours: Mapped[float | None]
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    questions: Mapped[list[Question]] = relationship(
        back_populates="campaign", order_by="Question.position", cascade="all, delete-orphan"
    )
    dimensions: Mapped[list[GroupDimension]] = relationship(
        back_populates="campaign", order_by="GroupDimension.position", cascade="all, delete-orphan"
    )


class Question(Base):
    __tablename__ = "question"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(10))
    optional: Mapped[bool] = mapped_column(Boolean, default=False)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"id": ..., "text": {lang: ...}}, ...]
    options: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # type-specific settings: scale, labels, tokens, pick, other, voice, show_if
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    campaign: Mapped[Campaign] = relationship(back_populates="questions")


class GroupDimension(Base):
    __tablename__ = "group_dimension"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)

    campaign: Mapped[Campaign] = relationship(back_populates="dimensions")
    groups: Mapped[list[Group]] = relationship(
        back_populates="dimension", order_by="Group.position", cascade="all, delete-orphan"
    )


class Group(Base):
    __tablename__ = "group"

    campaign_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dimension_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    baseline_share: Mapped[float | None]

    dimension: Mapped[GroupDimension] = relationship(back_populates="groups")

    __table_args__ = (
        ForeignKeyConstraint(
            ["campaign_id", "dimension_id"],
            ["group_dimension.campaign_id", "group_dimension.id"],
            ondelete="CASCADE",
        ),
    )


class Invite(Base):
    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(24))
    partner: Mapped[str] = mapped_column(String(200))
    # {dimension: [group, ...]} preset for people who come through this link
    groups: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("campaign_id", "code"),)


class Participant(Base):
    """A pseudonymous person: the HMAC of their Telegram id, their language and wishes."""

    __tablename__ = "participant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str | None] = mapped_column(String(16))
    allow_invitations: Mapped[bool] = mapped_column(Boolean, default=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    # the person chose to hear each screen as a voice note (🔊 / /listen)
    listen: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the key of this person in dry-run counts of people who have not answered the campaign
    record_key: Mapped[int] = mapped_column(Integer, default=new_record_key)

    contact: Mapped[Contact | None] = relationship(
        back_populates="participant", cascade="all, delete-orphan", passive_deletes=True
    )


class Contact(Base):
    """The one way back to a participant: their chat id, encrypted with CONTACT_KEY."""

    __tablename__ = "contact"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    chat_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)

    participant: Mapped[Participant] = relationship(back_populates="contact")


class Response(Base):
    """One participant's pass through one campaign."""

    __tablename__ = "response"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invite.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(16))
    consent_version: Mapped[str | None] = mapped_column(String(20))
    consented_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    wants_outcome: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded_at: Mapped[datetime | None]
    # random; a published count's noise is fixed by the sum of its records' keys (cell key method)
    record_key: Mapped[int] = mapped_column(Integer, default=new_record_key)
    # at least one screen of this response was heard as a voice note (the reach to non-readers)
    listened: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", passive_deletes=True
    )
    groups: Mapped[list[ResponseGroup]] = relationship(
        back_populates="response", cascade="all, delete-orphan", passive_deletes=True
    )

    # every update looks up the participant's unfinished responses; /forget cascades through them
    __table_args__ = (UniqueConstraint("campaign_id", "participant_id"),
                      Index("ix_response_participant", "participant_id"))


class ResponseGroup(Base):
    """A participant's self-described group, as given for one response."""

    __tablename__ = "response_group"

    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"), primary_key=True)
    dimension_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    # a list of group ids, or ["prefer_not_to_say"]
    groups: Mapped[list[Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(10), default="asked")  # asked | invite | reused
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)

    response: Mapped[Response] = relationship(back_populates="groups")


class ParticipationTally(Base):
    """Running totals of the people who agreed to take part in a campaign, and the sum of their
    record keys, per cell: `agreed`, `finished`, `language` (value: the language), `invite`
    (value: the invite id, or "" for none) and `groups` (dimension, value: the group answer as
    stored JSON text); and of everyone who started (`reached`) and finished (`completed`), agreed
    or not, per invite. Kept exact by database triggers (migration 0008) in the transaction that
    changes a response or a group answer; each response counts in shard `id % 16`. Read by
    bot.services.participation."""

    __tablename__ = "participation_tally"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    dimension_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    key_sum: Mapped[int] = mapped_column(BigInteger)


class Answer(Base):
    """One question's answer; (response, question) is unique so a replay replaces, never doubles."""

    __tablename__ = "answer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(10))  # answered | skipped
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
    changes: Mapped[int] = mapped_column(Integer, default=0)

    response: Mapped[Response] = relationship(back_populates="answers")

    __table_args__ = (UniqueConstraint("response_id", "question_id"),)


class VoiceAudio(Base):
    """The audio of a voice-note answer, kept only when COASSESS_STORE_VOICE_AUDIO is on; encrypted."""

    __tablename__ = "voice_audio"

    answer_id: Mapped[int] = mapped_column(ForeignKey("answer.id", ondelete="CASCADE"), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoiceNote(Base):
    """A spoken screen as OGG/Opus, keyed by what it says (or the recording), and its Telegram file id."""

    __tablename__ = "voice_note"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    seconds: Mapped[float] = mapped_column()
    source: Mapped[str] = mapped_column(String(12))  # recording | espeak-ng
    # set after the first upload; every later send reuses it (no second upload)
    file_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpokenScreen(Base):
    """Which voice note speaks a campaign's screen in a language (made at `campaign load`)."""

    __tablename__ = "spoken_screen"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    screen: Mapped[str] = mapped_column(String(80), primary_key=True)
    note_key: Mapped[str] = mapped_column(ForeignKey("voice_note.key", ondelete="CASCADE"))


class Outcome(Base):
    """A "you said, we did" message, per language and optionally per group."""

    __tablename__ = "outcome"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    variants: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("campaign_id", "key"),)


class Broadcast(Base):
    __tablename__ = "broadcast"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # invitation | reminder | outcome
    # the same command with the same filters resumes the same broadcast
    key: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome_id: Mapped[int | None] = mapped_column(ForeignKey("outcome.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), default="running")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="broadcast", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("campaign_id", "key"),)


class Delivery(Base):
    """Per-recipient delivery state, written before and after each send."""

    __tablename__ = "delivery"

    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcast.id", ondelete="CASCADE"), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True)
    # pending | sending | sent | failed | stopped | skipped | uncertain
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    broadcast: Mapped[Broadcast] = relationship(back_populates="deliveries")

    __table_args__ = (Index("ix_delivery_state", "broadcast_id", "state"),)


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BotProfile(Base):
    """The username Telegram gave (getMe) for a bot token, kept under a hash of the token."""

    __tablename__ = "bot_profile"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    resolved_at: Mapped[datetime] = mapped_column(default=utcnow)


class DialogState(Base):
    """aiogram FSM storage in the database (when no Redis is configured); keys are HMACs."""

    __tablename__ = "dialog_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProcessedUpdate(Base):
    """Update ids already handled, so a redelivered update is not applied twice."""

    __tablename__ = "processed_update"

    update_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bot_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSignIn(Base):
    """A one-time sign-in link to the officers' console: only a hash of its token is kept.

    `actor` is the officer's audit pseudonym (never a Telegram id); a partner's link names the
    one invite it shows.
    """

    __tablename__ = "web_sign_in"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(12))  # admin | analyst | partner
    actor: Mapped[str] = mapped_column(String(80))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invite.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
