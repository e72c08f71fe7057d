"""The small error hierarchy of cleanplate.

Library code raises these; only the CLI turns them into one-line messages and exit codes.
Per-frame problems are raised as :class:`FrameError` and recorded by the pipeline as failed frames.
"""

from __future__ import annotations


class CleanplateError(Exception):
    """Base class: an error with a message meant for the user, one line."""


class ConfigError(CleanplateError):
    """Invalid configuration: unknown key, bad value, unknown profile, invalid YAML."""


class InputError(CleanplateError):
    """The input as a whole is unusable: missing, empty, not frames or a video."""


class OutputError(CleanplateError):
    """The output folder cannot be used: unwritable, or made by a different configuration."""


class WeightsError(CleanplateError):
    """Model weights are missing, corrupt, or cannot be downloaded."""


class BackendUnavailableError(CleanplateError):
    """A backend needs an optional dependency that is not installed; the message has the install line."""


class FrameError(CleanplateError):
    """One frame cannot be processed (unreadable, too large, ...); recorded, the batch goes on."""


class TooManyFailuresError(CleanplateError):
    """More frames failed than the allowed fraction."""
