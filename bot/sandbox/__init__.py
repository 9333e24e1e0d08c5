"""A local Telegram Bot API for the offline demo, ``coassess chat`` and end-to-end tests."""

from bot.sandbox.client import BotReply, SandboxClient, SandboxError, SentUpdate
from bot.sandbox.server import Sandbox, build_app, run_sandbox
from bot.sandbox.state import Limits, World, peak_rate

__all__ = [
    "BotReply",
    "Limits",
    "Sandbox",
    "SandboxClient",
    "SandboxError",
    "SentUpdate",
    "World",
    "build_app",
    "peak_rate",
    "run_sandbox",
]
