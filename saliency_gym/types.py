"""Type aliases for the arrays that flow between data, classifiers, explainers, envs and metrics.

The aliases document shapes that the type system cannot check; the boundary helpers of
:mod:`saliency_gym.validation` check them at run time.
"""

from __future__ import annotations

from typing import Any, TypeAlias, Union

import numpy as np
import numpy.typing as npt
import torch

#: ``(N, C, H, W)`` floats in [0, 1]: a batch of images (NumPy or torch).
ImageBatch: TypeAlias = npt.NDArray[np.floating[Any]] | torch.Tensor
#: ``(C, H, W)`` floats in [0, 1]: one image.
Image: TypeAlias = npt.NDArray[np.floating[Any]] | torch.Tensor
#: ``(N, H, W)`` float saliency maps, larger = more important.
MapBatch: TypeAlias = npt.NDArray[np.floating[Any]]
#: ``(N, H, W)`` boolean evidence masks.
MaskBatch: TypeAlias = npt.NDArray[np.bool_]
#: ``(N,)`` integer class ids.
LabelArray: TypeAlias = npt.NDArray[np.int64]
#: Class ids as users pass them: one int for all, a sequence, an array or a tensor.
TargetsLike: TypeAlias = Union[int, np.integer[Any], "list[int]", npt.NDArray[np.integer[Any]], torch.Tensor, None]
#: Boolean ``(N,)`` selection of sub-environments.
EnvMask: TypeAlias = npt.NDArray[np.bool_]
#: A Gymnasium Dict observation (single env: per-key arrays; vector env: batched per key).
ObsDict: TypeAlias = dict[str, npt.NDArray[Any]]
#: A Gymnasium ``info`` dictionary.
InfoDict: TypeAlias = dict[str, Any]
