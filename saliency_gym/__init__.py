"""saliency-gym: explaining image classifiers as reinforcement-learning problems.

Importing the package registers its Gymnasium environments (idempotently). The main entry points:

* :func:`load_classifier` / :class:`FrozenClassifier`: the frozen, batched, query-counting model;
* :func:`load_dataset` and the :mod:`saliency_gym.data` sources: images, labels, evidence masks;
* :class:`Explainer` / :class:`Explanation`: the protocol every explanation method implements.
"""

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.explainers import Explainer, Explanation
from saliency_gym.models.zoo import load_classifier, shipped_classifiers

__version__ = "0.1.0"

from saliency_gym.envs.registration import register_envs  # noqa: E402

register_envs()

__all__ = [
    "DataSource",
    "Explainer",
    "Explanation",
    "FrozenClassifier",
    "__version__",
    "load_classifier",
    "load_dataset",
    "shipped_classifiers",
]
