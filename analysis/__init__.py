"""Analysis by group for co-commissioning: exports, the grouped report, and notebook DataFrames.

Every function that reads the database takes a database URL (or a `bot.db.Database`) and a
campaign id, works from plain synchronous code such as a notebook, and has an `_async` twin.
See docs/analysis.md.
"""

from analysis.disclosure import Problem, Protection, protect
from analysis.exports import ExportResult, export, export_async
from analysis.frames import (
    group_summary,
    group_summary_async,
    load_answers,
    load_answers_async,
    load_responses,
    load_responses_async,
    priorities,
    priorities_async,
    reach,
    reach_async,
)
from analysis.inputs import InputFileError, read_baseline, read_weights
from analysis.priority import borda_points, coin_shares, compare_orders
from analysis.reading import UnknownCampaign, UnknownDimension, UnknownLanguage
from analysis.report import build_report, build_report_async, report_model_async
from analysis.synth import SynthRefused, SynthResult, synthesize, synthesize_async
from analysis.weighting import kish_effective_size, need_multipliers, rake
from analysis.words import tokenize

__all__ = [
    "ExportResult",
    "InputFileError",
    "Problem",
    "Protection",
    "SynthRefused",
    "SynthResult",
    "UnknownCampaign",
    "UnknownDimension",
    "UnknownLanguage",
    "borda_points",
    "build_report",
    "build_report_async",
    "coin_shares",
    "compare_orders",
    "export",
    "export_async",
    "group_summary",
    "group_summary_async",
    "kish_effective_size",
    "load_answers",
    "load_answers_async",
    "load_responses",
    "load_responses_async",
    "need_multipliers",
    "priorities",
    "priorities_async",
    "protect",
    "rake",
    "reach",
    "reach_async",
    "read_baseline",
    "read_weights",
    "report_model_async",
    "synthesize",
    "synthesize_async",
    "tokenize",
]
