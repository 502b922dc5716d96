#!/usr/bin/env bash
# Renders every icon the installers need from assets/icon.svg, into packaging/icons/.
# The results are committed, so building packages needs none of these tools; run this again
# (and commit) only when assets/icon.svg changes.
#
# Needs: rsvg-convert (Debian: librsvg2-bin) and Python 3 with Pillow (pip install pillow).
#
#   hicolor/NxN/apps/org.confab.Confab.png   Linux (.deb, .rpm): 48, 128, 256, 512 px
#   confab.ico                                Windows (.msi): 16, 24, 32, 48, 64, 128, 256 px
#   confab.icns                               macOS (.app in the .dmg): 16 ... 1024 px
set -euo pipefail
cd "$(dirname "$0")"
svg=../../assets/icon.svg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for size in 16 24 32 48 64 128 256 512 1024; do
  rsvg-convert --width "$size" --height "$size" --format png "$svg" -o "$work/$size.png"
done
for size in 48 128 256 512; do
  mkdir -p "hicolor/${size}x${size}/apps"
  cp "$work/$size.png" "hicolor/${size}x${size}/apps/org.confab.Confab.png"
done

python3 - "$work" <<'PY'
import sys
from PIL import Image

work = sys.argv[1]
big = Image.open(f"{work}/1024.png")
# Each .ico entry is rendered from the SVG at its own size (sharper than downscaling one bitmap).
ico_sizes = [16, 24, 32, 48, 64, 128, 256]
first = Image.open(f"{work}/256.png")
first.save(
    "confab.ico",
    format="ICO",
    sizes=[(s, s) for s in ico_sizes],
    append_images=[Image.open(f"{work}/{s}.png") for s in ico_sizes],
)
# Pillow writes every ICNS size (16 ... 1024, @2x variants) as PNG, which macOS 10.7+ reads.
big.save("confab.icns", format="ICNS")
PY
echo "icons rendered into $(pwd)"
