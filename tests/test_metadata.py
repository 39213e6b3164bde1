"""The citation file and the changelog agree with the package: its version and its licence."""

import re
from pathlib import Path

import hdetach_np as hd

ROOT = Path(__file__).resolve().parents[1]


def top_level_value(text: str, key: str) -> str:
    """The value of a top-level `key: value` line of a YAML or INI-like text (quotes removed)."""
    m = re.search(rf"^{re.escape(key)}\s*[:=]\s*(.+?)\s*$", text, re.M)
    assert m, f"no top-level {key!r} line"
    return m.group(1).strip("'\"")


def test_citation_names_the_package_version_and_licence():
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert top_level_value(cff, "cff-version") == "1.2.0"
    assert top_level_value(cff, "title") == top_level_value(setup, "name") == "hdetach-np"
    assert top_level_value(cff, "version") == hd.__version__
    assert top_level_value(cff, "license") == top_level_value(setup, "license")
    assert "preferred-citation:" in cff and "1810.03023" in cff


def test_changelog_has_an_entry_for_this_version():
    log = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?\s*$", log, re.M)
    names = [name for name, _ in headings]
    assert names and names[0] == "Unreleased", f"the first section must be [Unreleased], got {names[:1]}"
    assert hd.__version__ in names, f"CHANGELOG.md has no section for version {hd.__version__}"
    assert all(date for name, date in headings if name != "Unreleased"), "every released version needs a date"
