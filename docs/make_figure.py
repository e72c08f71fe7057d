"""Make the README picture from a cleanplate output folder: original | removal mask | clean plate.

Usage: python docs/make_figure.py OUT FRAME_ID docs/images/sample_before_after.jpg
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from cleanplate.io.frames import load_image
from cleanplate.io.outputs import read_image_rgb, read_mask, write_image


def main(out: Path, frame_id: str, dest: Path) -> None:
    rec = json.loads((out / "instances_metadata.json").read_text())["frames"][frame_id]
    image = load_image(Path(rec["source"]))
    mask = read_mask(out / "masks" / f"{frame_id}.png")
    plate = read_image_rgb(next((out / "backgrounds").glob(f"{frame_id}.*")))
    overlay = image.copy()
    overlay[mask] = (0.45 * overlay[mask] + 0.55 * np.array([255, 40, 90])).astype(np.uint8)
    edges = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
    overlay[edges] = (255, 255, 255)
    w = 640
    tiles = [cv2.resize(t, (w, int(t.shape[0] * w / t.shape[1])), interpolation=cv2.INTER_AREA)
             for t in (image, overlay, plate)]
    gap = np.full((6, w, 3), 255, np.uint8)
    write_image(dest, np.vstack([tiles[0], gap, tiles[1], gap, tiles[2]]), jpeg_quality=88)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
