"""The Simplified Chinese catalog is complete: no untranslated and no fuzzy entry (issue 2, section 6)."""

from pathlib import Path

import polib
import pytest
from django.conf import settings

CATALOG = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


@pytest.fixture(scope="module")
def catalog() -> polib.POFile:
    assert CATALOG.is_file(), f"{CATALOG} is missing: run makemessages -l zh_Hans and translate it"
    return polib.pofile(str(CATALOG))


def _describe(entries) -> str:
    return "\n".join(f"  {e.occurrences[:1]} {e.msgid!r}" for e in entries[:40])


def test_catalog_has_entries(catalog):
    assert len(catalog.translated_entries()) > 0


def test_no_untranslated_entry(catalog):
    missing = [e for e in catalog.untranslated_entries() if not e.obsolete]
    assert missing == [], f"{len(missing)} untranslated entries:\n{_describe(missing)}"


def test_no_fuzzy_entry(catalog):
    fuzzy = [e for e in catalog.fuzzy_entries() if not e.obsolete]
    assert fuzzy == [], f"{len(fuzzy)} fuzzy entries:\n{_describe(fuzzy)}"


def test_plural_forms_are_all_translated(catalog):
    broken = [e for e in catalog if e.msgid_plural and not all(e.msgstr_plural.values())]
    assert broken == [], f"plural entries without every form:\n{_describe(broken)}"
