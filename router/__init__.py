"""The precision and risk router: task features, scores and route decisions."""

from tworail.router.scorer import Router, RouterConfig

__all__ = ["Router", "RouterConfig"]
