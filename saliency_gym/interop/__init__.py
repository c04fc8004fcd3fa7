"""Interoperability with libraries users already use.

* :mod:`saliency_gym.interop.quantus`: our explainers as a Quantus ``explain_func`` (it takes
  Quantus's ``device=``, ``method=`` and layout keywords, and ``normalize=`` for normalised inputs)
  and our insertion / deletion, localisation and sparsity metrics callable Quantus-style. Quantus itself is optional
  (``pip install saliency-gym[quantus]``); nothing here imports it at import time.

Captum's spelling (``explainer.attribute(inputs, target=...)``) and raw ``nn.Module`` models
(``Explainer(model, input_shape=...)``) are supported by :class:`saliency_gym.explainers.Explainer`
itself; the metrics take a raw module too (wrapped for the images' shape by the same
:func:`saliency_gym.explainers.base.as_classifier`).
"""

from saliency_gym.interop.quantus import as_quantus_metric, explain_func

__all__ = ["as_quantus_metric", "explain_func"]
