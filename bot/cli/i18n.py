"""`coassess i18n`: how much of the bot and of a campaign each language can read in its own words."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.table import Table

from bot.campaigns.translations import Campaign, TranslationError, read_campaign
from bot.cli.common import console, err_console, fail
from dialogs.i18n import language_name
from locales import available
from locales.coverage import CatalogCoverage, MsgId, coverage

app = typer.Typer(help="Check the translations: the bot's own texts and a campaign's content.",
                  no_args_is_help=True)

SHOWN = 3  # problems listed per language under a table; the rest are counted


@dataclass(frozen=True)
class CampaignCoverage:
    """One language's share of a campaign's texts."""

    lang: str
    total: int
    missing: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)

    @property
    def translated(self) -> int:
        return self.total - len(self.missing)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.too_long


def campaign_coverage(campaign: Campaign) -> list[CampaignCoverage]:
    """Per language of the campaign: which texts are missing, which are over their limit (pure)."""
    out = []
    for lang in campaign.languages:
        missing = [e.key for e in campaign.entries if not (e.texts.get(lang) or "").strip()]
        too_long = [e.key for e in campaign.entries if len(e.texts.get(lang) or "") > e.limit]
        out.append(CampaignCoverage(lang, len(campaign.entries), missing, too_long))
    return out


def _percent(done: int, total: int) -> str:
    pct = 100.0 * done / total if total else 100.0
    return f"{pct:.0f} %" if pct in (0.0, 100.0) else f"{pct:.1f} %"


def _status(ok: bool) -> str:
    return "[green]✓ complete[/]" if ok else "[bold red]✗ incomplete[/]"


def _short(msgid: MsgId) -> str:
    text = msgid if isinstance(msgid, str) else msgid[0]
    return text if len(text) <= 60 else text[:57] + "…"


def _interface_table(rows: list[CatalogCoverage]) -> Table:
    table = Table(title="Interface: everything the bot says (locales/<lang>/LC_MESSAGES/coassess.po)",
                  title_justify="left")
    for col, justify in (("Language", "left"), ("Name", "left"), ("Translated", "right"),
                         ("", "right"), ("Fuzzy", "right"), ("Wrong {placeholders}", "right"),
                         ("Status", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in rows:
        table.add_row(c.lang, language_name(c.lang), f"{c.translated}/{c.total}",
                      _percent(c.translated, c.total), str(len(c.fuzzy)),
                      str(len(c.placeholder_mismatches)),
                      "[bold red]no catalog[/]" if c.missing_catalog else _status(c.complete))
    return table


def _interface_problems(rows: list[CatalogCoverage]) -> list[str]:
    lines = []
    for c in rows:
        if c.missing_catalog:
            lines.append(f"{c.lang}: no catalog: create locales/{c.lang}/LC_MESSAGES/coassess.po "
                         "(see docs/languages.md)")
            continue
        for label, items in (("untranslated", c.untranslated), ("fuzzy (check, then clear the flag)", c.fuzzy)):
            if items:
                shown = "; ".join(f'"{_short(m)}"' for m in items[:SHOWN])
                more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
                lines.append(f"{c.lang}: {len(items)} {label}: {shown}{more}")
        for msgid, form in c.placeholder_mismatches[:SHOWN]:
            lines.append(f'{c.lang}: "{_short(form)}" must keep exactly the {{placeholders}} of '
                         f'"{_short(msgid)}"')
    return lines


def _fallback(lang: str, campaign: Campaign) -> str:
    """The language the bot's own words really show in for `lang` (the interface's chain)."""
    from dialogs.i18n import base_language, tr

    return base_language(tr(lang, campaign.source_language).interface_lang)


def _campaign_table(campaign: Campaign, rows: list[CampaignCoverage], catalogs: set[str]) -> Table:
    table = Table(title=f"Campaign content: {campaign.path.name}", title_justify="left")
    for col, justify in (("Language", "left"), ("Name", "left"), ("Texts", "right"), ("", "right"),
                         ("Too long", "right"), ("Interface catalog", "left"), ("Status", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in rows:
        has_catalog = c.lang in catalogs
        table.add_row(c.lang, language_name(c.lang), f"{c.translated}/{c.total}",
                      _percent(c.translated, c.total), str(len(c.too_long)),
                      "yes" if has_catalog else f"[bold red]none[/]: falls back to {_fallback(c.lang, campaign)}",
                      _status(c.complete and has_catalog))
    return table


def _campaign_problems(campaign: Campaign, rows: list[CampaignCoverage], catalogs: set[str]) -> list[str]:
    lines = []
    for c in rows:
        for label, items in (("missing", c.missing), ("over the length limit", c.too_long)):
            if items:
                shown = ", ".join(items[:SHOWN])
                more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
                lines.append(f"{c.lang}: {len(items)} {label}: {shown}{more}")
        if c.lang not in catalogs:
            fallback = _fallback(c.lang, campaign)
            instead = "English" if fallback == "en" else f"{language_name(fallback)} or English"
            lines.append(f"{c.lang}: the bot's own texts have no {c.lang} catalog, so they show in "
                         f"{instead} (see docs/languages.md)")
    if any(not c.complete for c in rows):
        lines.append(f"Hand the texts to translators: coassess campaign translations export "
                     f"{campaign.path} --to xlsx -o translations.xlsx")
    return lines


@app.command("check")
def check(campaign: Path | None = typer.Option(
        None, "--campaign", "-c", metavar="FILE", show_default=False,
        help="Also check a campaign file's content in each of its languages, e.g. "
             "examples/clinic-access.yaml.")) -> None:
    """Coverage per language: the interface catalogs, and a campaign's content; exit 1 if incomplete.

    Examples:

      coassess i18n check

      coassess i18n check --campaign examples/clinic-access.yaml
    """
    rows = coverage()
    console.print(_interface_table(rows))
    problems = _interface_problems(rows)
    ok = all(c.complete for c in rows)
    if campaign is not None:
        try:
            parsed = read_campaign(campaign)
        except TranslationError as exc:
            for p in exc.problems:
                err_console.print(p, highlight=False, markup=False)
            fail(f"cannot read {campaign}", "Check it first: coassess campaign check FILE")
            return
        catalogs = set(available())
        crows = campaign_coverage(parsed)
        console.print(_campaign_table(parsed, crows, catalogs))
        problems += _campaign_problems(parsed, crows, catalogs)
        ok = ok and all(c.complete and c.lang in catalogs for c in crows)
    for line in problems:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not ok:
        console.print("[bold red]Some texts are not translated yet.[/] Participants would see them in "
                      "another language.", highlight=False)
        raise typer.Exit(1)
    console.print("[green]✓[/] Every language is complete.", highlight=False)
