"""What a dialog handler needs from the update: its database session, keys, campaign and translator."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiogram_dialog import DialogManager
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import CampaignSpec
from bot.models import Campaign, Participant
from bot.services.participants import Keys
from dialogs.i18n import Tr, tr

SPEC_TTL = 5.0  # seconds a campaign definition is reused before re-reading its row


@dataclass
class CachedCampaign:
    row_status: str
    spec: CampaignSpec
    version: int
    campaign: Campaign
    loaded: float


_campaigns: dict[str, CachedCampaign] = {}


async def load_campaign(session: AsyncSession, campaign_id: str) -> CachedCampaign | None:
    """A campaign and its parsed definition; the parse is cached per version."""
    cached = _campaigns.get(campaign_id)
    if cached and time.monotonic() - cached.loaded < SPEC_TTL:
        return cached
    row = await session.get(Campaign, campaign_id)
    if row is None:
        _campaigns.pop(campaign_id, None)
        return None
    if cached and cached.version == row.version:
        spec = cached.spec
    else:
        spec = CampaignSpec.model_validate(row.definition)
    session.expunge(row)
    entry = CachedCampaign(row.status, spec, row.version, row, time.monotonic())
    _campaigns[campaign_id] = entry
    return entry


def forget_cached_campaigns() -> None:
    _campaigns.clear()


def session_of(manager: DialogManager) -> AsyncSession:
    return manager.middleware_data["session"]


def keys_of(manager: DialogManager) -> Keys:
    return manager.middleware_data["keys"]


def participant_of(manager: DialogManager) -> Participant | None:
    return manager.middleware_data.get("participant")


def translator(data: dict[str, Any], fallback: str | None = None) -> Tr:
    return tr(data.get("lang") or "en", fallback)
