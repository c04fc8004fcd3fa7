"""SB3-native ``.zip`` agents: written by training and by the converter, opened by SB3's own
``load`` and by saliency-gym's pickle-free loader, with the same actions and maps as the ``.pt``."""

import base64
import json
import os
import zipfile
from pathlib import Path

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from sb3_contrib import MaskablePPO
from stable_baselines3.common.save_util import load_from_zip_file

import saliency_gym
from saliency_gym.agents import PolicyExplainer, train_agent
from saliency_gym.agents.agent_checkpoints import (
    ZIP_FORMAT,
    ZIP_META_MEMBER,
    convert_to_zip,
    export_sb3_zip,
    load_agent_payload,
    main,
    model_from_payload,
    read_zip_metadata,
    save_agent,
)
from saliency_gym.agents.pretrained import agent_explainer, load_agent_policy
from saliency_gym.checkpoint import CheckpointError

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny MaskablePPO run (small network) on a 4x4 grid: its folder holds final.pt and final.zip."""
    out = tmp_path_factory.mktemp("zip_run")
    small = {"n_steps": 16, "batch_size": 32, "n_epochs": 1,
             "policy_kwargs": {"features_extractor_kwargs": {"features_dim": 16, "channels": 8}}}  # fmt: skip
    config = out / "tiny.yaml"
    config.write_text(yaml.safe_dump({"default": {"maskable_ppo": small}}))
    train_agent(ENV, "maskable_ppo", 64, seed=3, out=out / "run", config=config, env_kwargs={"grid": 4},
                n_envs=4, checkpoint_every=0, eval_every=0, progress=False)  # fmt: skip
    return out / "run"


@pytest.fixture(scope="module")
def converted(tmp_path_factory, trained):
    """The tiny run's .pt agent converted to a zip through the command-line entry (the shipped
    agents are zips already)."""
    target = tmp_path_factory.mktemp("converted") / "tiny_reveal.zip"
    assert main(["--to-zip", str(trained / "final.pt"), str(target)]) == 0
    return target


def _episode_observations(env_id, env_kwargs, steps, seed=0):
    """Observations and action masks along one episode taken by a fixed pseudo-random walk."""
    env = gym.make(env_id, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        mask = env.unwrapped.action_masks()
        out.append((obs, mask))
        obs, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        if terminated or truncated:
            break
    env.close()
    return out


def _same_actions(zip_path, pt_path, steps):
    """SB3's loaded model, our zip loader and our .pt loader pick the same masked actions."""
    model = MaskablePPO.load(zip_path, device="cpu")
    ours, info = load_agent_policy(zip_path)
    reference, _ = load_agent_policy(pt_path)
    pairs = _episode_observations(info["env_id"], info["env_kwargs"], steps)
    assert len(pairs) >= 3
    for obs, mask in pairs:
        sb3_action, _ = model.predict(obs, action_masks=mask, deterministic=True)
        batch = {key: value[None] for key, value in obs.items()}
        assert mask[int(sb3_action)]
        assert int(sb3_action) == int(ours.act(batch, mask[None])[0]) == int(reference.act(batch, mask[None])[0])
    return model, info


def test_training_writes_a_loadable_final_zip(trained):
    assert (trained / "final.pt").is_file() and (trained / "final.zip").is_file()
    assert not list(trained.glob(".*.tmp"))  # atomic writes left nothing behind
    model, info = _same_actions(trained / "final.zip", trained / "final.pt", steps=8)
    pt = load_agent_payload(trained / "final.pt")
    meta = read_zip_metadata(trained / "final.zip")
    assert meta["format"] == ZIP_FORMAT and info["format"] == ZIP_FORMAT
    for key in ("algo", "env_id", "env_kwargs", "hyperparameters", "seed", "num_timesteps"):
        assert meta[key] == pt[key], key
    assert meta["meta"]["train_seconds"] == pytest.approx(pt["meta"]["train_seconds"])
    assert model.num_timesteps == pt["num_timesteps"] == 64
    for name, tensor in pt["policy_state"].items():
        torch.testing.assert_close(load_agent_payload(trained / "final.zip")["policy_state"][name], tensor)


def test_converted_agent_matches_the_pt(converted, trained):
    model, info = _same_actions(converted, trained / "final.pt", steps=6)
    assert model.num_timesteps == load_agent_payload(trained / "final.pt")["num_timesteps"]
    assert info["meta"]["converted_from"] == "final.pt" and "train_seconds" in info["meta"]
    assert info["env_kwargs"]["grid"] == 4 and info["algo"] == "maskable_ppo"


def test_policy_explainer_maps_from_zip_equal_those_from_pt(trained, shapes_classifier):
    images = saliency_gym.load_dataset("shapes", "test", n=3).arrays().images
    targets = np.array([0, 1, 2])
    from_pt = PolicyExplainer(shapes_classifier, trained / "final.pt").explain(images, targets)
    from_zip = PolicyExplainer(shapes_classifier, trained / "final.zip").explain(images, targets)
    np.testing.assert_array_equal(from_zip.maps, from_pt.maps)
    assert from_zip.queries == 0
    explainer = agent_explainer(trained / "final.zip", shapes_classifier)
    assert explainer.grid == (4, 4) and explainer.name == "final"


def test_plain_sb3_zip_and_malformed_metadata_are_refused(tmp_path, converted):
    # An SB3 zip not written by saliency-gym: no metadata member.
    payload = load_agent_payload(converted)
    model = model_from_payload(payload)
    plain = tmp_path / "plain.zip"
    model.save(plain)
    model.get_env().close()
    with pytest.raises(CheckpointError, match="no saliency_gym.json member"):
        load_agent_policy(plain)

    def with_member(name, text):
        path = tmp_path / name
        with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as dst:
            for item in src.namelist():
                dst.writestr(item, src.read(item))
            dst.writestr(ZIP_META_MEMBER, text)
        return path

    good = json.loads(zipfile.ZipFile(converted).read(ZIP_META_MEMBER))
    cases = {
        "not JSON": ("{not json", "not valid JSON"),
        "a list": ("[1, 2]", "expected an object"),
        "other format": (json.dumps({**good, "format": "other/v9"}), "has format 'other/v9'"),
        "missing keys": (json.dumps({k: v for k, v in good.items() if k != "hyperparameters"}), "lacks the keys"),
        "wrong type": (json.dumps({**good, "env_kwargs": "grid=8"}), "'env_kwargs' has the wrong type"),
        "unknown algo": (json.dumps({**good, "algo": "sac"}), "unknown algorithm"),
    }
    for i, (text, match) in enumerate(cases.values()):
        with pytest.raises(CheckpointError, match=match):
            load_agent_policy(with_member(f"bad{i}.zip", text))
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="not a valid zip"):
        load_agent_payload(garbage)
    with pytest.raises(FileNotFoundError):
        load_agent_policy(tmp_path / "missing.zip")


class _MakeDir:
    """Unpickling this calls ``os.mkdir(path)``: the stand-in for code a malicious file would run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _replace_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, data if item == name else src.read(item))
    return target


def test_our_loader_never_unpickles(tmp_path, converted):
    # A pickle payload in SB3's "data" member: our loader never reads that member.
    marker = tmp_path / "pwned"
    data = json.loads(zipfile.ZipFile(converted).read("data"))
    data["evil"] = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(cloudpickle.dumps(_MakeDir(str(marker)))).decode()}
    evil = _replace_member(converted, tmp_path / "evil_data.zip", "data", json.dumps(data).encode())
    policy, info = load_agent_policy(evil)
    PolicyExplainer(saliency_gym.load_classifier("shapes", device="cpu"), evil)
    assert not marker.exists() and info["algo"] == "maskable_ppo"
    load_from_zip_file(evil, device="cpu")  # SB3's loader does run it: the payload is live
    assert marker.is_dir()
    os.rmdir(marker)

    # A pickle payload in policy.pth: refused by the weights-only load, nothing run.
    blob = tmp_path / "blob.pth"
    torch.save({"w": _MakeDir(str(marker))}, blob)
    evil_weights = _replace_member(converted, tmp_path / "evil_weights.zip", "policy.pth", blob.read_bytes())
    with pytest.raises(CheckpointError, match="weights-only load refuses"):
        load_agent_policy(evil_weights)
    assert not marker.exists()


def test_export_checks_metadata_and_formats(tmp_path, converted):
    model = model_from_payload(load_agent_payload(converted))
    try:
        common = dict(algo="maskable_ppo", env_id=ENV, hyperparameters={}, seed=0)
        with pytest.raises(TypeError, match=r"metadata\.env_kwargs\.substrate is a object"):
            export_sb3_zip(model, tmp_path / "bad.zip", env_kwargs={"substrate": object()}, **common)
        assert not list(tmp_path.iterdir())  # nothing written, no temporary file left
        written = save_agent(model, tmp_path / "agent", env_kwargs={"grid": (4, 2)}, meta={"auc": np.float32(0.5)},
                             format="zip", **common)  # fmt: skip
        assert written == tmp_path / "agent.zip" and sorted(p.name for p in tmp_path.iterdir()) == ["agent.zip"]
        meta = read_zip_metadata(written)
        assert meta["env_kwargs"] == {"grid": [4, 2]} and meta["meta"] == {"auc": 0.5}
        with pytest.raises(ValueError, match="format must be"):
            save_agent(model, tmp_path / "x.bin", format="bin", env_kwargs={}, **common)  # type: ignore[arg-type]
    finally:
        model.get_env().close()


def test_convert_rejects_bad_sources(tmp_path):
    bad = tmp_path / "agent.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError):
        convert_to_zip(bad, tmp_path / "out.zip")
    with pytest.raises(SystemExit) as exc:
        main(["--to-zip", str(tmp_path / "missing.pt"), str(tmp_path / "out.zip")])
    assert exc.value.code == 2 and not (tmp_path / "out.zip").exists()


def test_file_kind_comes_from_contents_under_other_suffixes(tmp_path, converted, trained):
    """A torch.save file is a zip archive too: only SB3's or our members make a zip agent."""
    (tmp_path / "agent.sb3").write_bytes(converted.read_bytes())
    (tmp_path / "agent_pt").write_bytes((trained / "final.pt").read_bytes())
    assert load_agent_payload(tmp_path / "agent.sb3")["format"] == ZIP_FORMAT
    assert load_agent_payload(tmp_path / "agent_pt")["format"] == "saliency_gym.agent/v1"
