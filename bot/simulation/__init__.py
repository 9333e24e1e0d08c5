"""Simulated citizens who talk to the bot through the sandbox Bot API (demo, end-to-end and load tests)."""

from bot.simulation.citizen import Citizen, CitizenResult, Persona, make_personas

__all__ = ["Citizen", "CitizenResult", "Persona", "make_personas"]
