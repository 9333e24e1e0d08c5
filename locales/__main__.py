"""`python -m locales compile|update`: build the binary catalogs, or merge the template into them."""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from locales import DOMAIN, LOCALES_DIR, compile_catalogs


def update() -> None:
    pot = LOCALES_DIR / f"{DOMAIN}.pot"
    with pot.open("rb") as fh:
        template = read_po(fh)
    for po in sorted(LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po.open("rb") as fh:
            catalog: Catalog = read_po(fh, locale=po.parent.parent.name)
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        with po.open("wb") as fh:
            # obsolete entries would only confuse translators: the template is the truth
            write_po(fh, catalog, omit_header=False, sort_output=True, no_location=True, width=100,
                     ignore_obsolete=True)
        print(f"updated {po.relative_to(LOCALES_DIR.parent)}")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "compile"
    if cmd == "update":
        update()
    elif cmd == "compile":
        langs = compile_catalogs()
        print(f"compiled {len(langs)} catalogs" if langs else "catalogs up to date")
    else:
        sys.exit("usage: python -m locales compile|update")
