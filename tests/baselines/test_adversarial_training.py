import numpy as np
import pytest
import torch
import torch.nn.functional as F

from saliency_gym.baselines.adversarial_training import (
    AdversarialTrainingConfig,
    adversarial_training,
    pgd_attack,
    robust_accuracy,
)
from saliency_gym.data import load_dataset
from saliency_gym.zoo import CHECKPOINT_DIR, load_classifier, load_classifier_module

EPS = 8 / 255


@pytest.fixture(scope="module")
def natural():
    model, _ = load_classifier_module("shapes")
    return model.eval()


def test_pgd_stays_in_ball_and_raises_the_loss(natural):
    data = load_dataset("shapes", "test", n=16).arrays()
    x, y = torch.tensor(data.images), torch.tensor(data.labels)
    adv = pgd_attack(natural, x, y, EPS, steps=5, generator=torch.Generator().manual_seed(0))
    assert (adv - x).abs().max() <= EPS + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(natural(adv), y) > F.cross_entropy(natural(x), y) + 0.5
    assert torch.equal(pgd_attack(natural, x, y, EPS, steps=0, random_start=False), x)
    with pytest.raises(ValueError, match="epsilon"):
        pgd_attack(natural, x, y, -1.0)


def test_robust_accuracy_is_below_clean(natural):
    data = load_dataset("shapes", "test", n=32).arrays()
    assert robust_accuracy(natural, data.images, data.labels, EPS, steps=5) < 0.5


def test_short_training_writes_a_loadable_checkpoint_and_resumes(tmp_path):
    cfg = AdversarialTrainingConfig(n_train=64, epochs=1, batch_size=32, pgd_steps=1, eval_images=8, eval_pgd_steps=1)
    out = tmp_path / "robust.pt"
    result = adversarial_training(cfg, out, resume_dir=tmp_path / "resume", log_dir=tmp_path / "tb", progress=False)
    assert set(result) >= {"clean_accuracy", "robust_accuracy", "base_clean_accuracy", "base_robust_accuracy"}
    classifier = load_classifier(out, device="cpu")
    assert classifier.meta["meta"]["epsilon"] == pytest.approx(EPS) and classifier.meta["dataset"] == "shapes"
    assert (tmp_path / "resume" / "adversarial_training_last.pt").is_file() and any((tmp_path / "tb").iterdir())
    # A finished run resumed from its checkpoint trains nothing more and saves the same weights.
    out2 = tmp_path / "robust2.pt"
    adversarial_training(cfg, out2, resume_dir=tmp_path / "resume", progress=False)
    first, _ = load_classifier_module(out)
    second, _ = load_classifier_module(out2)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = AdversarialTrainingConfig(n_train=64, epochs=2, batch_size=32, pgd_steps=1, eval_images=8, eval_pgd_steps=1)
    with pytest.raises(ValueError, match="another recipe"):
        adversarial_training(other, out2, resume_dir=tmp_path / "resume", progress=False)


def test_bad_config():
    with pytest.raises(ValueError, match="epsilon"):
        adversarial_training(AdversarialTrainingConfig(epsilon=0.0), progress=False)
    with pytest.raises(ValueError, match="epochs"):
        AdversarialTrainingConfig(epochs=0).validate()


def test_shipped_robust_checkpoint():
    path = CHECKPOINT_DIR / "shapes_robust.pt"
    assert path.stat().st_size < 2 * 1024 * 1024
    classifier = load_classifier("shapes_robust", device="cpu")
    meta = classifier.meta["meta"]
    assert meta["robust_accuracy"] > meta["base_robust_accuracy"] + 0.3 and meta["clean_accuracy"] > 0.9
    data = load_dataset("shapes", "test", n=200).arrays()
    assert classifier.accuracy(data.images, data.labels) > 0.9
    payload = torch.load(path, weights_only=True)
    assert payload["arch_kwargs"]["activation"] == "relu" and np.isclose(payload["meta"]["epsilon"], EPS)
