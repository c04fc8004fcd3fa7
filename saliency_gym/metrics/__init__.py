"""Metric evaluators: pure functions of (classifier, images, maps, ...) to numbers and curves.

- :mod:`~saliency_gym.metrics.insertion_deletion`: RISE's insertion/deletion curves and AUC, batched,
  at pixel level; :mod:`~saliency_gym.metrics.patch_curves`: the same at the environments' patch
  level; :mod:`~saliency_gym.metrics.curves`: their shared result type, AUC, orders and batched
  engine; :mod:`~saliency_gym.metrics.reference`: the per-image reference loop.
- :mod:`~saliency_gym.metrics.localization`: pointing game, energy pointing game, top-k IoU.
- :mod:`~saliency_gym.metrics.similarity`: top-k intersection, LENS recall/precision@k, diversity
  top-k, Spearman, Kendall (and their dissimilarities, the attack environments' rewards).
- :mod:`~saliency_gym.metrics.sanity`: cascading model-parameter randomisation.
- :mod:`~saliency_gym.metrics.sparsity`: Gini index.
- :mod:`~saliency_gym.metrics.soft_insertion_deletion`: ID-ExpO's differentiable insertion/deletion,
  and insertion/deletion curves for tabular features.
- :mod:`~saliency_gym.metrics.curves_plot`: plots of insertion/deletion curves.
- :mod:`~saliency_gym.metrics.counterfactual`: validity, proximity and distance to a known true
  counterfactual of counterfactual baselines (GANMEX, MDTS).
"""

from saliency_gym.metrics.counterfactual import counterfactual_scores
from saliency_gym.metrics.curves import CurveResult, auc, pixel_order
from saliency_gym.metrics.curves_plot import plot_insertion_deletion_curves
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.metrics.localization import (
    energy_pointing_game,
    pointing_game,
    top_k_intersection_with_mask,
    top_k_iou,
)
from saliency_gym.metrics.patch_curves import (
    cell_order_from_maps,
    patch_deletion_curve,
    patch_insertion_curve,
)
from saliency_gym.metrics.reference import insertion_deletion_loop
from saliency_gym.metrics.sanity import SanityResult, cascading_randomization
from saliency_gym.metrics.similarity import (
    dissimilarity,
    diversity_topk,
    kendall,
    lens_precision_at_k,
    lens_recall_at_k,
    similarity,
    spearman,
    topk_div_intersection,
    topk_intersection,
)
from saliency_gym.metrics.soft_insertion_deletion import (
    SoftInsertionDeletion,
    feature_deletion_curve,
    feature_insertion_curve,
    soft_insertion_deletion,
)
from saliency_gym.metrics.sparsity import gini_index

__all__ = [
    "CurveResult",
    "SanityResult",
    "SoftInsertionDeletion",
    "auc",
    "cascading_randomization",
    "cell_order_from_maps",
    "counterfactual_scores",
    "deletion_curve",
    "dissimilarity",
    "diversity_topk",
    "energy_pointing_game",
    "feature_deletion_curve",
    "feature_insertion_curve",
    "gini_index",
    "insertion_curve",
    "insertion_deletion_loop",
    "kendall",
    "lens_precision_at_k",
    "lens_recall_at_k",
    "patch_deletion_curve",
    "patch_insertion_curve",
    "pixel_order",
    "plot_insertion_deletion_curves",
    "pointing_game",
    "similarity",
    "soft_insertion_deletion",
    "spearman",
    "top_k_intersection_with_mask",
    "top_k_iou",
    "topk_div_intersection",
    "topk_intersection",
]
