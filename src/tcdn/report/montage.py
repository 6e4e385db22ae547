"""A montage: frames tiled in a grid, each with a caption under it, saved as one PNG that says
it was written by tcdn (so that tcdn may replace it later, and nothing else)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tcdn.errors import TcdnError

#: the PNG text chunk that marks a montage as tcdn's
SOFTWARE = "tcdn"


def is_montage(path: Path) -> bool:
    """Whether ``path`` is a PNG tcdn wrote (its ``Software`` text says so)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.format == "PNG" and img.info.get("Software") == SOFTWARE
    except OSError:
        return False


def check_writable(path: Path) -> None:
    """:class:`TcdnError` unless ``path`` is free or a PNG tcdn wrote (its ``Software`` text)."""
    from tcdn.outputs import guard_file

    guard_file(path)  # no symbolic link at the montage or its temporary name
    if path.is_dir():
        raise TcdnError(
            f"{path} is a folder: give the PNG file to write (e.g. {path / 'search.png'})"
        )
    if not path.exists():
        if not path.parent.is_dir():
            raise TcdnError(f"the folder of {path} does not exist: create it or give another path")
        return
    if not is_montage(path):
        raise TcdnError(f"{path} exists and was not written by tcdn: give another path (--out)")


def save_montage(
    images: Sequence[np.ndarray | None],
    captions: Sequence[str],
    path: Path,
    *,
    columns: int = 6,
    tile: int = 128,
) -> Path:
    """Tile ``images`` (``(H, W, 3)`` uint8; ``None`` draws an empty grey tile) ``columns`` to a
    row, each fitted into ``tile x tile`` with its caption (lines split on ``\\n``) below; write
    ``path`` (checked with :func:`check_writable`) atomically."""
    from PIL import Image, ImageDraw, PngImagePlugin

    check_writable(path)
    n = len(images)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    cap_h = 12 * lines + 6
    sheet = Image.new("RGB", (cols * (tile + 8) + 8, rows * (tile + cap_h + 8) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, caption) in enumerate(zip(images, captions, strict=True)):
        x = 8 + (i % cols) * (tile + 8)
        y = 8 + (i // cols) * (tile + cap_h + 8)
        if img is None:
            draw.rectangle([x, y, x + tile - 1, y + tile - 1], fill=(225, 225, 225))
        else:
            pic = Image.fromarray(np.ascontiguousarray(img))
            pic.thumbnail((tile, tile))
            sheet.paste(pic, (x + (tile - pic.width) // 2, y + (tile - pic.height) // 2))
        max_chars = tile // 6
        text = "\n".join(line[:max_chars] for line in caption.split("\n"))
        draw.multiline_text((x, y + tile + 3), text, fill=(20, 20, 20), spacing=2)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    from tcdn.outputs import atomic_writer

    with atomic_writer(path, "wb", ours=is_montage) as fh:  # never through a link
        sheet.save(fh, format="PNG", pnginfo=info)
    return path
