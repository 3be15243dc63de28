"""The images of a workbook's text in the view: read from its folder, sent inside the page.

Rule: an image a Markdown cell names by a relative path (``![A diagram](images/bits.svg)``) is
read from the notebook's own folder when the page is prepared and sent as a cell attachment, so
the page shows it without another request (the view's address serves notebooks only). Why not
Voila's own inlining: its Markdown renderer calls the server's contents manager as if it were
synchronous, and Jupyter Server's is asynchronous, so the first image stopped the page half-way
("'coroutine' object is not subscriptable" in the server's log; the trainee saw "Preparing your
workbook" for ever). :class:`ViewMarkdownRenderer` takes its place: nbconvert's renderer, which
shows attachments and never touches the contents manager.

Only files inside the notebook's folder, of an image type, up to :data:`MAX_BYTES` each, are
inlined; anything else keeps its address and shows as a missing image, never as an error page.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

from nbconvert.filters.markdown_mistune import IPythonRenderer
from voila.exporter import VoilaMarkdownRenderer

#: An image larger than this stays out of the page (a trainee on a slow link pays for every byte).
MAX_BYTES = 1_000_000
#: ``![alt](path)`` or ``![alt](path "title")`` in Markdown.
MARKDOWN_IMAGE = re.compile(r'(!\[[^\]]*\]\()([^)\s]+)((?:\s+"[^"]*")?\))')
#: Image types a browser shows from a data URL.
IMAGE_TYPES = {"image/svg+xml", "image/png", "image/jpeg", "image/gif", "image/webp"}


def local_image(folder: Path, address: str) -> tuple[str, bytes] | None:
    """The type and bytes of the image at ``address`` inside ``folder``, or ``None``."""
    if not address or address.startswith(("/", "attachment:", "data:")) or ":" in address:
        return None
    try:
        root = folder.resolve(strict=True)
        path = (root / address).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    mime, _encoding = mimetypes.guess_type(path.name)
    if mime not in IMAGE_TYPES or not path.is_relative_to(root) or not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        return mime, path.read_bytes()
    except OSError:
        return None


def inline_images(notebook, folder: Path) -> None:
    """Attach the local images of every Markdown cell of ``notebook`` (changed in memory only)."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source

        def attach(match: re.Match, cell=cell) -> str:
            found = local_image(folder, match.group(2))
            if found is None:
                return match.group(0)
            mime, data = found
            attachments = cell.setdefault("attachments", {})
            attachments[match.group(2)] = {mime: base64.b64encode(data).decode("ascii")}
            return f"{match.group(1)}attachment:{match.group(2)}{match.group(3)}"

        cell["source"] = MARKDOWN_IMAGE.sub(attach, source)


class ViewMarkdownRenderer(VoilaMarkdownRenderer):
    """Voila's Markdown renderer (its exporter accepts no other) drawing images as nbconvert's does.

    nbconvert's ``image`` shows attachments and never calls the contents manager.
    """

    def image(self, text: str, url: str, title: str | None = None) -> str:
        """An ``<img>``: an attachment as a data URL, any other address as it is."""
        return IPythonRenderer.image(self, text, url, title)
