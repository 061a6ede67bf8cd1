"""The SQL that spells out valence and the failed image statuses (the views in sql/, the query files and the
migrations, which are frozen history) says what emotion_batch.labels defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emotion_batch.assets import asset_dir
from emotion_batch.labels import EMOTIONS, FAILED_STATUSES, VALENCE_NEGATIVE, VALENCE_POSITIVE, VALENCE_WEIGHTS
from emotion_batch.store.models import IMAGE_STATUSES

MIGRATIONS = Path(__file__).resolve().parent.parent / "emotion_batch" / "store" / "migrations" / "versions"

#: ``CAST(<net> AS DOUBLE PRECISION) / <faces> AS <name>``, the shape of every valence and negative share.
CAST_RATIO = re.compile(r"CAST\(((?:(?!CAST\().)*?) AS DOUBLE PRECISION\)\s*/\s*[\w.()]+\s+AS (\w+)\b", re.S)
STATUS_IN = re.compile(r"status\s+IN\s*\(([^)]*)\)", re.I)


def _sources() -> dict[str, str]:
    """Every SQL text: the view and query files, and the migrations' Python files (their SQL is in strings)."""
    sql = asset_dir("sql")
    files = [*sorted(sql.glob("*.sql")), *sorted((sql / "queries").glob("*.sql")), *sorted(MIGRATIONS.glob("0*.py"))]
    return {path.name: path.read_text(encoding="utf-8") for path in files}


def _signed_terms(net: str) -> tuple[set[str], set[str]]:
    """The classes added before the first top-level minus and those subtracted after it."""
    plus, _, minus = net.partition(" - ")
    return set(re.findall(r"count_(\w+)", plus)), set(re.findall(r"count_(\w+)", minus))


def test_valence_weights_follow_the_classes():
    assert set(VALENCE_POSITIVE) | set(VALENCE_NEGATIVE) <= set(EMOTIONS)
    assert not set(VALENCE_POSITIVE) & set(VALENCE_NEGATIVE)
    assert VALENCE_WEIGHTS == tuple(1.0 if e in VALENCE_POSITIVE else -1.0 if e in VALENCE_NEGATIVE else 0.0
                                    for e in EMOTIONS)


def test_failed_statuses_are_image_statuses():
    assert set(FAILED_STATUSES) <= set(IMAGE_STATUSES) and not {"ok", "no_face"} & set(FAILED_STATUSES)


def test_every_valence_in_sql_is_the_labels_definition():
    found = 0
    for name, text in _sources().items():
        ratios = [(m.group(1), m.group(2)) for m in CAST_RATIO.finditer(text)]
        valences = [net for net, column in ratios if column == "valence"]
        assert len(valences) == len(re.findall(r"\bAS valence\b", text)), f"{name}: a valence of another shape"
        for net in valences:
            assert _signed_terms(net) == (set(VALENCE_POSITIVE), set(VALENCE_NEGATIVE)), f"{name}: {net}"
        for net, column in ratios:
            if column == "share_negative":
                assert set(re.findall(r"count_(\w+)", net)) == set(VALENCE_NEGATIVE), f"{name}: {net}"
        found += len(valences)
    assert found >= 10  # views.sql 3, its dialect files 2, the trend query 1, migrations 0002 and 0004 5


def test_every_failed_status_list_in_sql_is_the_labels_definition():
    found = 0
    for name, text in _sources().items():
        for listed in STATUS_IN.findall(text):
            assert re.findall(r"'([^']*)'", listed) == list(FAILED_STATUSES), f"{name}: status IN ({listed})"
            found += 1
    assert found >= 6  # views.sql and migration 0002: images_failed twice, the failed_images view once


@pytest.mark.parametrize("net, expected", [
    ("fa.count_happy - fa.count_angry - fa.count_sad", ({"happy"}, {"angry", "sad"})),
    ("sum(count_happy) - sum(count_angry + count_fear)", ({"happy"}, {"angry", "fear"})),
])
def test_signed_terms_reads_both_spellings(net, expected):
    assert _signed_terms(net) == expected
