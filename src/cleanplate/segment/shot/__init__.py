"""Shot-level character finding: background model, tracks, shadows (the ``tracks`` shot segmenter)."""

from cleanplate.segment.shot.segmenter import TrackShotSegmenter

__all__ = ["TrackShotSegmenter"]
