"""Rules for text that people open in other programs: one place, used by the reports and the exports.

- Bidi controls (embeddings, overrides, isolates, marks) are dropped from names and text we write, so a
  name cannot reorder what is shown around it (``display_name`` in the HTML, every CSV cell).
- CSV cells follow the OWASP rule against formula injection: a text cell starting with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return gets a leading ``'``, so Excel, LibreOffice and Google Sheets
  show it as text instead of running it (``=HYPERLINK(...)``, ``@SUM(...)``). Numbers are written as
  numbers; an ad named ``-2+3`` reads ``'-2+3`` in the CSV. The Excel export types such cells as text.
"""

from __future__ import annotations

#: Bidi embedding/override/isolate controls and marks: a name showing them could read backwards.
BIDI_CONTROLS = frozenset({"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)),
                           *map(chr, range(0x2066, 0x206A))})
#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def without_bidi(text: str) -> str:
    """``text`` without bidi controls."""
    return "".join(char for char in text if char not in BIDI_CONTROLS)


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would take ``text`` for a formula."""
    return text.startswith(FORMULA_PREFIXES)


def csv_cell(value):
    """A value as a CSV cell may hold it: text without bidi controls, quoted with ``'`` where it would be a
    formula; other values unchanged."""
    if not isinstance(value, str):
        return value
    value = without_bidi(value)
    return "'" + value if looks_like_formula(value) else value
