"""``cleanplate review OUT``: a local web app where a person checks shots and corrects the run."""

from cleanplate.review.app import create_app, serve
from cleanplate.review.state import ReviewError, ReviewState

__all__ = ["ReviewError", "ReviewState", "create_app", "serve"]
