"""The explainer contract and registry of the core.

- :class:`Explainer` / :class:`Explanation` (:mod:`.base`): images and targets in, saliency maps
  and their measured cost out; each class declares its expected queries and needs.
- :func:`make_explainer`, :func:`register_explainer`, :func:`available_explainers` (:mod:`.registry`):
  methods by name. The methods themselves live in plugins (``saliency_gym.baselines``,
  ``saliency_gym.agents``) and enter through entry points, so the core never imports them.
"""

from saliency_gym.explainers.base import Explainer, Explanation
from saliency_gym.explainers.registry import (
    ENTRY_POINT_GROUP,
    available_explainers,
    explainer_class,
    explainer_options,
    make_explainer,
    register_explainer,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Explainer",
    "Explanation",
    "available_explainers",
    "explainer_class",
    "explainer_options",
    "make_explainer",
    "register_explainer",
]
