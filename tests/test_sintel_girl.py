"""Issue 26: on the 10 Sintel frames the default run's mask outside the girl stays under 5 % of the frame.

There is no truth mask of the girl: a generous region around her (hair, body, arm, hand and the apple
she holds) was drawn by hand per frame (``cleanplate/report/sintel_girl.json``, how it was made is in
the file); whatever the default pipeline masks outside it is not hers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cleanplate.masks import from_png
from cleanplate.report.bench_cases import build_case, score_case
from conftest import SHARED


def test_default_run_masks_little_outside_the_girl(tmp_path: Path) -> None:
    case = build_case("sintel-girl", SHARED / "data", 10)
    assert len(case.frames) == 10
    score = score_case(case, tmp_path)
    assert score.outside_allowed is not None and score.outside_allowed["max"] < 0.05, score.outside_allowed
    # and the masks are hers: most of what is masked lies in her region, and she is masked in every frame
    for t in range(10):
        m = from_png(cv2.imread(str(tmp_path / "out" / "masks" / f"frame_{t:04d}.png"), cv2.IMREAD_GRAYSCALE))
        girl = case.allowed["girl"][t]
        assert m.sum() > 0.1 * girl.sum(), t
        assert (m & girl).sum() >= 0.85 * m.sum(), t
    assert np.isfinite(score.seconds) and score.seconds > 0
