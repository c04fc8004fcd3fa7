"""The ``Explainer`` protocol: images and targets in, saliency maps and their cost out.

Every explanation method in saliency-gym (RISE, occlusion, the Captum-backed gradient methods, and
rolled-out RL policies) is an :class:`Explainer` bound to a :class:`FrozenClassifier`, in Captum's
style: ``Method(classifier, **options).explain(images, targets)``. Benchmarks only see this
interface, so a new method enters every table without further code.

The cost of an explanation is measured as well as declared: :meth:`Explainer.explain` reads the
classifier's query counter before and after and times the call (:class:`Explanation`), while the
class declares what it is expected to cost and need (:meth:`Explainer.expected_queries`,
:attr:`Explainer.needs_gradients`, :attr:`Explainer.accepts_baseline`), so benchmarks and the CLI
can choose methods without running them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.types import ImageBatch, TargetsLike
from saliency_gym.validation import as_image_batch, as_label_array

#: What every explainer's ``classifier`` argument takes: a :class:`FrozenClassifier`, or an
#: ``nn.Module`` together with the keyword ``input_shape=(C, H, W)``.
ClassifierLike: TypeAlias = FrozenClassifier | nn.Module


@dataclass(frozen=True)
class Explanation:
    """Saliency maps for a batch and what they cost."""

    maps: np.ndarray
    """``float32 (N, H, W)``; larger means more important for the target class."""
    targets: np.ndarray
    """``int64 (N,)`` the explained classes."""
    queries: int
    """Classifier images evaluated (forward passes, gradients included) for the whole batch."""
    seconds: float
    """Wall-clock seconds for the whole batch."""
    method: str

    @property
    def queries_per_image(self) -> float:
        return self.queries / max(len(self.maps), 1)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / max(len(self.maps), 1)


class Explainer(ABC):
    """Base class of explanation methods bound to one frozen classifier.

    Subclasses implement :meth:`attribute_batch` on validated tensors; :meth:`explain` handles input
    checks, default targets (the predicted class), query counting and timing.

    **Raw modules.** ``classifier`` may also be a plain ``nn.Module`` together with the keyword
    ``input_shape=(C, H, W)`` (e.g. ``GradCAMExplainer(model, input_shape=(3, 32, 32))``); it is
    wrapped as ``FrozenClassifier(model, input_shape)`` (:func:`as_classifier`). The shape is
    required rather than read lazily from the first batch because :class:`FrozenClassifier` needs
    it at construction (it validates every call against it) and several explainers read
    ``classifier.input_shape`` or ``classifier.module`` in their constructors. Wrap it yourself for
    other options (``device``, ``normalize``, ``outputs="probs"``, ...).

    **Writing a subclass.** The constructor is plain Python a type checker reads: take
    ``classifier: ClassifierLike`` first and the keyword-only ``input_shape`` last, call
    ``super().__init__(classifier, input_shape=input_shape)`` before anything else, then read the
    wrapped classifier from ``self.classifier``::

        def __init__(self, classifier: ClassifierLike, window: int = 4, *,
                     input_shape: Sequence[int] | None = None) -> None:
            super().__init__(classifier, input_shape=input_shape)
            self.window = window  # self.classifier is a FrozenClassifier here

    ``input_shape`` is not an option of :func:`~saliency_gym.explainers.make_explainer` (which
    takes a :class:`FrozenClassifier`), so :func:`~saliency_gym.explainers.explainer_options`
    leaves it out.

    **Captum's spelling.** ``explainer.attribute(inputs, target=...)`` behaves as in Captum: it
    validates and counts as :meth:`explain` does and returns the ``(N, H, W)`` maps as a float
    tensor on the inputs' device. Subclasses implement :meth:`attribute_batch`.

    Args:
        classifier: the model to explain: a :class:`FrozenClassifier`, or an ``nn.Module`` with
            ``input_shape``.
        input_shape: per-image ``(C, H, W)``, only (and then required) when ``classifier`` is a
            raw ``nn.Module``.
    """

    #: Short name used in tables, plots and the registry (:func:`make_explainer`).
    name: ClassVar[str] = "explainer"
    #: Whether the method back-propagates through the classifier (needs an ``nn.Module``).
    needs_gradients: ClassVar[bool] = False
    #: Whether the method takes a baseline (a substrate or a baseline provider such as GANMEX).
    accepts_baseline: ClassVar[bool] = False

    def __init__(self, classifier: ClassifierLike, *, input_shape: Sequence[int] | None = None) -> None:
        self.classifier: FrozenClassifier = as_classifier(classifier, input_shape)

    def expected_queries(self) -> float | None:
        """Classifier images one explanation is expected to cost (forward and backward passes), for
        a given target; ``None`` where it depends on the image. Explaining the predicted class
        (``targets=None``) costs one more. :attr:`Explanation.queries` holds what was measured."""
        return None

    @abstractmethod
    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return ``(N, H, W)`` maps for validated ``images (N, C, H, W)`` on the classifier's
        device and ``targets (N,)`` class ids."""

    def explain(self, images: ImageBatch, targets: TargetsLike = None) -> Explanation:
        """Explain ``images`` (``(N, C, H, W)`` or one ``(C, H, W)``) for ``targets``.

        Args:
            images: floats in [0, 1] of the classifier's input shape.
            targets: class ids (one per image, or one int for all); ``None`` explains the
                predicted class (which costs one query per image, counted).
        """
        if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 3:
            images = images[None]
        start_queries, start = self.classifier.queries, time.perf_counter()
        x = as_classifier_images(images, self.classifier)
        if targets is None:
            target_ids = self.classifier.predict(x).cpu().numpy()
        else:
            target_ids = as_label_array(targets, n=x.shape[0], num_classes=self.classifier.num_classes, name="targets")
        if x.shape[0] == 0:
            maps = torch.zeros((0, *x.shape[2:]))
        else:
            maps = self.attribute_batch(x, torch.as_tensor(target_ids, device=x.device))
        maps = maps.detach().float().cpu()
        if tuple(maps.shape) != (x.shape[0], *x.shape[2:]):
            raise RuntimeError(f"{self.name} returned maps of shape {tuple(maps.shape)}, expected {(x.shape[0], *x.shape[2:])}")
        return Explanation(
            maps=maps.numpy().astype(np.float32),
            targets=target_ids,
            queries=self.classifier.queries - start_queries,
            seconds=time.perf_counter() - start,
            method=self.name,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(classifier={self.classifier.name!r})"

    def attribute(self, inputs: ImageBatch, target: TargetsLike = None) -> torch.Tensor:
        """Captum's spelling of :meth:`explain`: ``(N, H, W)`` maps (``(H, W)`` for one image) as a
        float tensor, on the device of ``inputs`` when it is a tensor; same validation, default
        targets (the predicted class) and query counting."""
        single = isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim == 3
        maps = torch.from_numpy(self.explain(inputs, target).maps)
        if single:
            maps = maps[0]
        return maps.to(inputs.device) if isinstance(inputs, torch.Tensor) else maps


def as_classifier(
    classifier: FrozenClassifier | nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    device: torch.device | str | None = None,
) -> FrozenClassifier:
    """``classifier`` as a :class:`FrozenClassifier`: returned as is, or an ``nn.Module`` wrapped
    as ``FrozenClassifier(module, input_shape, device=device)`` (``input_shape`` is then required;
    ``device=None`` is CUDA when available, as for :class:`FrozenClassifier`).

    The one place where explainers, metrics (which pass the images' own per-image shape) and the
    Quantus adapter turn a raw module into a classifier, so all three accept the same models.
    Wrapping puts the module in eval mode with frozen parameters, as :class:`FrozenClassifier`
    always does; ``device`` is ignored for a :class:`FrozenClassifier`, which owns its device.
    """
    if isinstance(classifier, FrozenClassifier):
        if input_shape is not None and tuple(int(s) for s in input_shape) != classifier.input_shape:
            raise ValueError(f"input_shape={tuple(input_shape)} disagrees with the classifier's {classifier.input_shape}")
        return classifier
    if isinstance(classifier, nn.Module):
        if input_shape is None:
            raise TypeError(
                f"a raw {type(classifier).__name__} needs input_shape=(C, H, W) (the per-image shape it "
                "takes), e.g. Explainer(model, input_shape=(3, 32, 32)); or wrap it yourself with "
                "saliency_gym.FrozenClassifier(model, input_shape, ...)"
            )
        return FrozenClassifier(classifier, input_shape, device=device, name=type(classifier).__name__)
    raise TypeError(
        f"classifier must be a FrozenClassifier or an nn.Module, got {type(classifier).__name__}; wrap a "
        "model with saliency_gym.FrozenClassifier(model, input_shape) or use load_classifier(name)"
    )


#: What an input outside [0, 1] most often is, and the fix (appended to the range error of
#: :func:`as_classifier_images`).
NORMALIZE_HINT = (
    "saliency-gym takes images in [0, 1] and lets the classifier normalise them: if these are "
    "normalised images (e.g. ImageNet mean/std), pass the un-normalised [0, 1] images and wrap the "
    "model as FrozenClassifier(model, input_shape, normalize=(mean, std)) (CLI: --normalize)"
)


def as_classifier_images(images: ImageBatch, classifier: FrozenClassifier, *, name: str = "images") -> torch.Tensor:
    """``images`` validated for ``classifier``: a float32 ``(N, C, H, W)`` tensor of its per-image
    shape on its device, values in [0, 1].

    :func:`saliency_gym.validation.as_image_batch` with the classifier's shape and device; a range
    error also says what to do about it (:data:`NORMALIZE_HINT`), since the usual cause is a batch
    that was normalised for the model (ImageNet statistics give values in about [-2.1, 2.6]).
    Shared by :meth:`Explainer.explain` and the metrics, so both reject (and explain) the same
    inputs.
    """
    try:
        return as_image_batch(images, name=name, expected_shape=classifier.input_shape, device=classifier.device)
    except ValueError as error:
        message = str(error)
        if "values in [0, 1]" in message and "normalize=" not in message:
            raise ValueError(f"{message}. {NORMALIZE_HINT}") from None
        raise
