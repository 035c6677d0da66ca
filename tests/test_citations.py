"""Project text cites only what the repository holds.

The reference notes the port was written from live outside the repository, so a comment,
docstring or document that says "§3.3" or names one of those files points a reader at
nothing. State the rule itself, or point to a document in the repository (docs/*.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [ROOT / "rjbatch", ROOT / "tests", ROOT / "docs", ROOT / "README.md"]
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"}
# files outside the repository, and the section sign their citations use
FORBIDDEN = (
    "\N{SECTION SIGN}",
    "mission-control.md",
    "iostreams.md",
    "rocketjob-semantics.md",
    "rocketjob-programmers-guide.md",
    "peers.md",
    "shared/reference",
)


def _text_files() -> list[Path]:
    files: list[Path] = []
    for top in SCANNED:
        if top.is_file():
            files.append(top)
            continue
        for path in sorted(top.rglob("*")):
            if not path.is_file() or SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
                continue
            if path.resolve() == Path(__file__).resolve():
                continue
            files.append(path)
    return files


def _citations(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # binary: images, compressed or encrypted fixtures
        return []
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if any(word in line for word in FORBIDDEN)
    ]


def test_the_scanned_places_exist():
    assert all(top.exists() for top in SCANNED)
    assert len(_text_files()) > 50


@pytest.mark.parametrize("top", SCANNED, ids=lambda top: top.name)
def test_no_citation_of_files_outside_the_repository(top):
    files = [top] if top.is_file() else [f for f in _text_files() if top in f.parents]
    found = [hit for path in files for hit in _citations(path)]
    assert not found, "cite the rule itself or a document in the repository:\n" + "\n".join(found)
