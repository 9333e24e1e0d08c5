"""The dialogs' states, one group per dialog."""

from aiogram.fsm.state import State, StatesGroup


class Survey(StatesGroup):
    language = State()
    consent = State()
    group = State()
    question = State()
    other = State()
    done = State()


class LanguagePick(StatesGroup):
    pick = State()


class Forget(StatesGroup):
    confirm = State()


class Admin(StatesGroup):
    home = State()
    campaign = State()
    invite_code = State()
    broadcast_confirm = State()
    close_confirm = State()
    invite_confirm = State()
