"""GANMEX: counterfactual baselines from a GAN with the frozen classifier in the loop.

GANMEX (Shih, Tien & Karnin, "GANMEX: One-vs-One Attributions using GAN-based Model
Explainability", ICML 2021) answers "why class A rather than class B?" by choosing as the baseline
of an attribution method the closest *realistic* image that the classifier assigns to class B.
It trains a StarGAN-style conditional generator (Choi et al., "StarGAN", CVPR 2018) whose
class loss comes from the classifier being explained, not from an auxiliary head of the
discriminator, so the counterfactual is valid for *that* classifier.

This module holds the networks and the losses; :mod:`saliency_gym.baselines.ganmex_training` the
training loop and :mod:`saliency_gym.baselines.baseline_providers` the baseline provider.

* :class:`ConditionalGenerator` ``G(x, c)``: the target class enters as ``K`` one-hot input
  channels (StarGAN's conditioning); an encoder-residual-decoder predicts a per-pixel blend mask
  ``a`` and a colour image ``y`` and returns ``(1 - a) * x + a * y`` (the attention output of
  GANimation, Pumarola et al. 2018). The output lies in [0, 1] by construction, and an unchanged
  pixel costs the generator nothing, which favours small, local edits. The colour ``y`` may be
  copied from the input's neighbourhood (``copy_window``), so removing a feature repaints it with
  the colour around it instead of one learnt colour per class.
* :class:`Critic`: a PatchGAN-style real/fake critic without normalisation layers, trained with
  the WGAN-GP objective (Gulrajani et al. 2017); class-conditional by default in training, so a
  counterfactual is judged against real images *of its target class*.
* :class:`GanmexLossWeights` and :func:`generator_loss` / :func:`critic_loss`: the generator
  minimises ``L_adv + lambda_cls * CE(f(G(x, t)), t) + lambda_sim * |x - G(x, t)|_1
  (+ lambda_cyc * |x - G(G(x, t), s)|_1)`` with ``f`` the frozen classifier.

Valid is not minimal: a generator can satisfy the classifier with a blob that is not the edit the
data needs. :func:`saliency_gym.metrics.counterfactual_scores` measures the distance to a known
true counterfactual (``shape_pairs``), and
:func:`~saliency_gym.baselines.baseline_providers.prune_edit` keeps only the part of an edit the
classifier needs, :func:`~saliency_gym.baselines.baseline_providers.project_edit` shrinks it as far
as the classifier's verdict allows; in training, ``select="min_l1_valid"`` and ``lambda_sim_end``
(:class:`~saliency_gym.baselines.ganmex_training.GanmexTrainingConfig`) export the smallest valid
edits the generator learnt.

The classifier is never trained: its parameters are frozen (``requires_grad=False``) and only the
generator's and critic's optimisers exist; gradients flow *through* it to the generator.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saliency_gym.checkpoint import CheckpointError, atomic_save, resolve_checkpoint, safe_load
from saliency_gym.validation import check_float, check_int

GENERATOR_FORMAT = "saliency_gym.ganmex_generator/v1"
_GENERATOR_KEYS = ("arch_kwargs", "state_dict", "class_names", "input_shape", "classifier")
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def one_hot_planes(targets: torch.Tensor, num_classes: int, height: int, width: int) -> torch.Tensor:
    """``(N, K, H, W)`` planes, plane ``targets[i]`` all ones for item ``i`` (StarGAN's label input)."""
    onehot = F.one_hot(targets.long(), num_classes).to(torch.float32)
    return onehot[:, :, None, None].expand(-1, -1, height, width)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConditionalGenerator(nn.Module):
    """StarGAN-style ``G(x, c)``: translate images ``x`` to look like class ``c`` to the classifier.

    Args:
        in_channels: image channels ``C``.
        num_classes: number of classes ``K`` (one-hot input planes).
        width: channels of the first convolution (doubled after the down-sampling step).
        n_residual: residual blocks at the bottleneck.
        copy_window: side ``k`` (odd) of the neighbourhood a repainted pixel may copy its colour
            from, or ``0`` for none (the v1 generator). With a window the colour ``y`` of a pixel is
            a gated mix of a free colour and a softmax-weighted average of the *input's* pixels in
            the ``k x k`` window around it (a per-pixel predicted kernel, as in kernel-prediction
            networks, Bako et al. 2017). Removing a feature then costs one copy of the surrounding
            colour, which a free colour head has to regress from features; without it the
            generator learns one generic colour per class and paints blobs that are valid but not
            the true counterfactual. Adding a feature uses the free colour.

    With the defaults (``width=16``, two residual blocks, ``copy_window=7``) a 3-channel, 5-class
    generator has about 69k parameters (a ~0.3 MB checkpoint); the bottleneck works at half
    resolution.
    """

    def __init__(
        self, in_channels: int = 3, num_classes: int = 5, width: int = 16, n_residual: int = 2, copy_window: int = 7
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        width = check_int("width", width, minimum=4)
        n_residual = check_int("n_residual", n_residual, minimum=0)
        self.copy_window = check_int("copy_window", copy_window, minimum=0)
        if self.copy_window and self.copy_window % 2 == 0:
            raise ValueError(f"copy_window must be odd (or 0), got {copy_window}")
        w2 = 2 * width
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels + num_classes, width, 5, padding=2, bias=False),
            nn.InstanceNorm2d(width, affine=True), nn.ReLU(),
            nn.Conv2d(width, w2, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(w2, affine=True), nn.ReLU(),
        )  # fmt: skip
        self.bottleneck = nn.Sequential(*[_ResidualBlock(w2) for _ in range(n_residual)])
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(w2, width, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(width, affine=True), nn.ReLU(),
        )  # fmt: skip
        # Skip connection: the decoder sees the full-resolution input and label planes again.
        # Outputs: blend logit, free colour (C); with a copy window also a gate and k*k kernel logits.
        extra = 1 + self.copy_window**2 if self.copy_window else 0
        self.head = nn.Conv2d(width + in_channels + num_classes, in_channels + 1 + extra, 3, padding=1)
        self.config: dict[str, Any] = {
            "in_channels": self.in_channels, "num_classes": self.num_classes, "width": width, "n_residual": n_residual,
            "copy_window": self.copy_window,
        }  # fmt: skip

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images in [0, 1] and ``(N,)`` class ids -> translated images in [0, 1].

        ``H`` and ``W`` must be even (one down-sampling step).
        """
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"images must be (N, {self.in_channels}, H, W), got {tuple(images.shape)}")
        n, _, h, w = images.shape
        if h % 2 or w % 2:
            raise ValueError(f"image height and width must be even, got {h}x{w}")
        if targets.shape != (n,):
            raise ValueError(f"targets must have shape ({n},), got {tuple(targets.shape)}")
        planes = one_hot_planes(targets.to(images.device), self.num_classes, h, w)
        x = torch.cat([images, planes], dim=1)
        features = self.decoder(self.bottleneck(self.encoder(x)))
        out = self.head(torch.cat([features, x], dim=1))
        # The blend starts near sigmoid(-4) = 0.018: the untrained generator is almost the
        # identity, so every change it learns is one the class loss asked for.
        c = self.in_channels
        blend = torch.sigmoid(out[:, :1] - 4.0)
        colour = torch.sigmoid(out[:, 1 : 1 + c])
        if self.copy_window:
            k = self.copy_window
            gate = torch.sigmoid(out[:, 1 + c : 2 + c])
            kernel = torch.softmax(out[:, 2 + c :], dim=1).unsqueeze(1)  # (N, 1, k*k, H, W)
            window = F.unfold(images, k, padding=k // 2).view(n, c, k * k, h, w)
            colour = gate * (kernel * window).sum(2) + (1 - gate) * colour
        return (1 - blend) * images + blend * colour


class Critic(nn.Module):
    """PatchGAN-style WGAN-GP critic: a real/fake score per image (the mean over patches).

    No batch normalisation (it would break the per-sample gradient penalty); LeakyReLU(0.2) as in
    StarGAN's discriminator.

    Args:
        in_channels: image channels.
        width: channels of the first convolution (doubled at each of the two further steps).
        num_classes: ``0`` for an unconditional critic (is this a real image?); ``K`` for a
            class-conditional one (is this a real image *of class c*?), which sees the class as
            ``K`` one-hot input planes like the generator. An unconditional critic accepts a
            "plain" counterfactual that still shows a mark-like blob, because marked images are
            real too; a conditional one compares it with real images of the target class only,
            which pushes translations towards the target class's data rather than merely past
            the classifier's boundary.
    """

    def __init__(self, in_channels: int = 3, width: int = 16, num_classes: int = 0) -> None:
        super().__init__()
        check_int("in_channels", in_channels, minimum=1)
        width = check_int("width", width, minimum=4)
        self.num_classes = check_int("num_classes", num_classes, minimum=0)
        if self.num_classes == 1:
            raise ValueError("num_classes must be 0 (unconditional) or at least 2")
        self.body = nn.Sequential(
            nn.Conv2d(in_channels + self.num_classes, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * width, 1, 3, padding=1),
        )  # fmt: skip
        self.config: dict[str, Any] = {"in_channels": in_channels, "width": width, "num_classes": self.num_classes}

    def forward(self, images: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``(N,)`` of ``(N, C, H, W)`` images; ``classes`` ``(N,)`` is required by a
        conditional critic (the class each image is judged as) and ignored by an unconditional one."""
        if self.num_classes:
            if classes is None:
                raise ValueError("a class-conditional critic needs the classes the images are judged as")
            n, _, h, w = images.shape
            images = torch.cat([images, one_hot_planes(classes.to(images.device), self.num_classes, h, w)], dim=1)
        return self.body(images).mean(dim=(1, 2, 3))


@dataclass(frozen=True)
class GanmexLossWeights:
    """Weights of the GANMEX losses.

    Defaults follow StarGAN's proportions (Choi et al. 2018: ``lambda_cls = 1``,
    ``lambda_rec = 10``, ``lambda_gp = 10``), with the frozen classifier's cross-entropy as the
    class term (GANMEX) and GANMEX's similarity term ``|x - G(x, t)|_1`` weighted like StarGAN's
    reconstruction term. The cycle (reconstruction) term is optional here (``lambda_cyc = 0`` by
    default): with the similarity term and the blend output it adds cost but little.
    """

    lambda_cls: float = 1.0
    lambda_sim: float = 10.0
    lambda_cyc: float = 0.0
    lambda_gp: float = 10.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            check_float(name, value, minimum=0.0)


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty ``E[(||grad_x D(x_hat, c)||_2 - 1)^2]`` on random interpolates ``x_hat``
    (the gradient is taken with respect to the image only; ``classes`` for a conditional critic)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(mixed, classes)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    weights: GanmexLossWeights,
    generator: torch.Generator | None = None,
    classes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """WGAN-GP critic loss ``D(fake) - D(real) + lambda_gp * GP`` and its parts (for logging).

    For a class-conditional critic, ``classes[i]`` is both the label of ``real[i]`` and the target
    ``fake[i]`` was translated to, so real and fake images are compared class by class.
    """
    fake = fake.detach()
    wasserstein = critic(fake, classes).mean() - critic(real, classes).mean()
    gp = gradient_penalty(critic, real, fake, generator, classes)
    loss = wasserstein + weights.lambda_gp * gp
    return loss, {"critic/wasserstein": -wasserstein.item(), "critic/gp": gp.item(), "critic/loss": loss.item()}


def generator_loss(
    generator_net: ConditionalGenerator,
    critic: nn.Module,
    classifier_module: nn.Module,
    images: torch.Tensor,
    sources: torch.Tensor,
    targets: torch.Tensor,
    weights: GanmexLossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GANMEX's generator loss for a batch and its parts (for logging).

    ``-D(G(x, t)) + lambda_cls * CE(f(G(x, t)), t) + lambda_sim * |x - G(x, t)|_1
    + lambda_cyc * |x - G(G(x, t), s)|_1``, where ``f`` is ``classifier_module`` (frozen: the
    caller's module must not require gradients; gradients only pass through it), ``s`` the
    source classes and ``t`` the targets. L1 terms are per-pixel means.
    """
    fake = generator_net(images, targets)
    adversarial = -critic(fake, targets).mean()
    logits = classifier_module(fake)
    cls = F.cross_entropy(logits, targets)
    sim = (fake - images).abs().mean()
    loss = adversarial + weights.lambda_cls * cls + weights.lambda_sim * sim
    parts = {"generator/adversarial": adversarial.item(), "generator/cls": cls.item(), "generator/sim_l1": sim.item()}
    if weights.lambda_cyc > 0:
        cyc = (generator_net(fake, sources) - images).abs().mean()
        loss = loss + weights.lambda_cyc * cyc
        parts["generator/cycle_l1"] = cyc.item()
    parts["generator/validity"] = (logits.argmax(1) == targets).float().mean().item()
    parts["generator/loss"] = loss.item()
    return loss, parts


def sample_targets(sources: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A target class per item, uniform over the classes *other* than its source class."""
    shift = torch.randint(1, num_classes, sources.shape, generator=generator).to(sources.device)
    return (sources + shift) % num_classes


# ---------------------------------------------------------------------------- checkpoints
def save_generator(
    generator_net: ConditionalGenerator,
    path: str | os.PathLike[str],
    *,
    class_names: tuple[str, ...] | list[str],
    input_shape: tuple[int, int, int] | list[int],
    classifier: str,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a generator checkpoint (weights only, atomic) that :func:`load_generator` reads."""
    payload = {
        "format": GENERATOR_FORMAT,
        "arch_kwargs": dict(generator_net.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in generator_net.state_dict().items()},
        "class_names": list(class_names),
        "input_shape": [int(s) for s in input_shape],
        "classifier": str(classifier),
        "meta": dict(meta or {}),
    }
    return atomic_save(payload, path)


def shipped_generators() -> list[str]:
    """Names of the generators shipped in ``saliency_gym/baselines/pretrained`` (by classifier)."""
    return sorted(p.stem.removeprefix("ganmex_") for p in PRETRAINED_DIR.glob("ganmex_*.pt"))


def resolve_generator_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped name (the classifier's, e.g. ``"shape_pairs"``) or a checkpoint path -> path."""
    shipped = {name: PRETRAINED_DIR / f"ganmex_{name}.pt" for name in shipped_generators()}
    return resolve_checkpoint(name_or_path, shipped, "GANMEX generator")


def load_generator(
    name_or_path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[ConditionalGenerator, dict[str, Any]]:
    """Load a generator (eval mode, frozen) and its metadata from a checkpoint.

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~saliency_gym.checkpoint.CheckpointError` (a ``ValueError``) for a corrupt one, one of
    another format, or one whose weights do not fit the recorded architecture.
    """
    path = resolve_generator_path(name_or_path)
    payload = safe_load(path, expected_format=GENERATOR_FORMAT, required_keys=_GENERATOR_KEYS)
    try:
        net = ConditionalGenerator(**{"copy_window": 0, **payload["arch_kwargs"]})  # older files: no copy window
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"GANMEX checkpoint {path} does not fit its architecture: {exc}") from exc
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    info = {k: payload[k] for k in ("class_names", "input_shape", "classifier", "meta")}
    info["path"] = str(path)
    return net, info
