#!/usr/bin/env python3
"""Draws the app's PNG icons (app/web/icons/) with the standard library only: the favicon's
"Tl" on the accent blue. `any` icons have rounded corners; the maskable one is full-bleed with
the letters inside the central 80% safe zone. Run once; the PNGs are committed."""
import struct
import zlib
from pathlib import Path

ACCENT = (0x2F, 0x5D, 0x8A)
WHITE = (0xFF, 0xFF, 0xFF)
OUT = Path(__file__).resolve().parent.parent / "app" / "web" / "icons"

# Letter strokes on a 32x32 grid (like favicon.svg): x0, y0, x1, y1.
GLYPH = [
    (7.0, 8.0, 18.0, 10.2),   # T bar
    (11.4, 8.0, 13.6, 24.0),  # T stem
    (9.6, 22.2, 15.4, 24.0),  # T foot serif
    (20.4, 7.0, 22.6, 24.0),  # l stem
    (18.8, 7.0, 22.6, 8.6),   # l top serif
    (18.8, 22.4, 24.2, 24.0), # l foot serif
]


def inside_rounded(x, y, size, radius):
    cx = min(max(x, radius), size - radius)
    cy = min(max(y, radius), size - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def pixel(x, y, size, rounded, scale):
    """RGBA of pixel (x, y): 4x4 supersampled for smooth edges."""
    cover_bg = cover_fg = 0
    for sy in range(4):
        for sx in range(4):
            px, py = x + (sx + 0.5) / 4, y + (sy + 0.5) / 4
            if rounded and not inside_rounded(px, py, size, size * 7 / 32):
                continue
            cover_bg += 1
            # Glyph coordinates: centred, `scale` of the icon.
            gx = (px - size / 2) / (size * scale) * 32 + 16
            gy = (py - size / 2) / (size * scale) * 32 + 16
            if any(x0 <= gx <= x1 and y0 <= gy <= y1 for x0, y0, x1, y1 in GLYPH):
                cover_fg += 1
    if cover_bg == 0:
        return (0, 0, 0, 0)
    t = cover_fg / cover_bg
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(ACCENT, WHITE))
    return rgb + (round(255 * cover_bg / 16),)


def png(size, rounded, scale):
    rows = b"".join(
        b"\0" + b"".join(bytes(pixel(x, y, size, rounded, scale)) for x in range(size)) for y in range(size)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, rounded, scale in [
        ("icon-192.png", 192, True, 1.0),
        ("icon-512.png", 512, True, 1.0),
        ("icon-maskable-512.png", 512, False, 0.7),
    ]:
        (OUT / name).write_bytes(png(size, rounded, scale))
        print(OUT / name)
