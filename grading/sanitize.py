"""Trainee-written Markdown is shown as text, never as live HTML, in formgrader and in feedback.

Rule: anything a trainee could have written is data in the facilitator's page. Formgrader renders
submissions in its own origin (``/services/<course>/``), where a facilitator's session can change
grades, and its template turns Markdown cells into HTML without sanitizing them; an ``<img
onerror=...>`` in a reflection would run there. This nbconvert preprocessor, set on
``HTMLExporter`` in every course's config, escapes HTML in every Markdown cell a trainee could
edit (not locked by nbgrader, or a solution cell) and disarms ``javascript:`` links. Outputs are
sanitized by nbconvert itself (``HTMLExporter.sanitize_html``, also set by the course config).
"""

from __future__ import annotations

import html
import re

from nbconvert.preprocessors import Preprocessor

#: URL schemes that run code when a link is followed.
SCRIPT_SCHEMES = re.compile(r"(?i)\b(?:java|vb)\s*script\s*:")


def trainee_editable(cell) -> bool:
    """Whether a trainee could have written this cell's source (anything nbgrader does not lock)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution")) or not meta.get("locked")


def escape_markdown(source: str) -> str:
    """``source`` with HTML shown as text and script links disarmed; Markdown itself still works."""
    return SCRIPT_SCHEMES.sub("blocked:", html.escape(source, quote=False))


class SanitizeTraineeMarkdown(Preprocessor):
    """Escape HTML in trainee-editable Markdown cells before a page shows them."""

    def preprocess_cell(self, cell, resources, index):
        """Escape one cell if a trainee could have written it."""
        if cell.cell_type == "markdown" and trainee_editable(cell):
            cell.source = escape_markdown(cell.source)
        return cell, resources
