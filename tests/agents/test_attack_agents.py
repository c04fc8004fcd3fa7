"""Trained attribution-attack agents (issue 23): the AttackCNN extractor, policies as attacks
(``policy_attack``), training on ``saliency_gym/AttributionAttack-*`` and opening the result with
``load_attack_agent``, and the shipped attack agents."""

import numpy as np
import pytest
import torch
import yaml
from gymnasium import spaces

from saliency_gym.agents.agent_training import train_agent
from saliency_gym.agents.attack_agents import AttackAgent, load_attack_agent, shipped_attack_agents
from saliency_gym.agents.attack_rollout import policy_attack
from saliency_gym.agents.extractors import EXTRACTORS, AttackCNN
from saliency_gym.agents.pretrained import PRETRAINED_DIR
from saliency_gym.baselines.attack_policies import RandomSignPolicy
from saliency_gym.data import ArraySource, load_dataset
from saliency_gym.envs.attack import AttributionAttackEnv, AttributionAttackVectorEnv
from saliency_gym.explainers import make_explainer
from saliency_gym.metrics.similarity import dissimilarity
from saliency_gym.models.zoo import load_classifier

ENV = "saliency_gym/AttributionAttack-Shapes-v0"
EPS = 8 / 255
#: A small attack environment: 4x4 grid of local random-sign steps, four steps.
SMALL = {"grid": 4, "budget": 4, "step_pattern": "noise", "step_size": EPS}
#: Explainer options of the shipped agents' explainers (RISE with few masks).
EXPLAINER_OPTIONS = {"rise": {"n_masks": 64}}


@pytest.fixture(scope="module")
def gradient():
    return make_explainer("gradient", load_classifier("shapes", device="cpu"))


@pytest.fixture(scope="module")
def images():
    return load_dataset("shapes", "test", n=6).arrays().images


def _obs_tensors(obs):
    return {key: torch.as_tensor(value[None]) for key, value in obs.items()}


def _assert_in_ball(result, images, epsilon):
    assert result.adversarial.shape == images.shape and result.adversarial.dtype == np.float32
    assert np.abs(result.adversarial - images).max() <= epsilon + 1e-6
    assert result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0


def _assert_labels_kept(result, explainer, images):
    clean = explainer.classifier.predict(images, count=False).numpy()
    assert result.label_kept.all()
    np.testing.assert_array_equal(result.predictions, clean)
    np.testing.assert_array_equal(result.targets, clean)
    np.testing.assert_array_equal(
        explainer.classifier.predict(result.adversarial, count=False).numpy(), clean
    )


# ----------------------------------------------------------------------------- AttackCNN


@pytest.fixture(scope="module")
def attack_env(tiny_images_source):
    env = AttributionAttackEnv(data=tiny_images_source, observe_original=True, **SMALL)
    yield env
    env.close()


@pytest.fixture(scope="module")
def tiny_images_source():
    return load_dataset("shapes", "test", n=4)


def test_attack_cnn_output_sizes(attack_env):
    space = attack_env.observation_space
    obs, _ = attack_env.reset(seed=0)
    obs, *_ = attack_env.step(3)
    assert EXTRACTORS["attack_cnn"] is AttackCNN
    scored = AttackCNN(space, grid=4, features_dim=16, channels=8, cell_scores=True)
    assert scored.features_dim == 16 + 2 * 4 * 4 and scored.has_original
    assert scored.num_cells == 32  # the action logits CellMaskablePolicy reads first
    assert scored(_obs_tensors(obs)).shape == (1, 16 + 32)
    plain = AttackCNN(space, grid=4, features_dim=16, channels=8)
    assert plain.features_dim == 16 and plain(_obs_tensors(obs)).shape == (1, 16)
    wide = AttackCNN(space, grid=(2, 4), features_dim=10, channels=8, cell_scores=True)
    assert wide.features_dim == 10 + 2 * 2 * 4 and wide(_obs_tensors(obs)).shape == (1, 26)
    # Without the original map the extractor reads the four plain keys.
    without = spaces.Dict({k: v for k, v in space.spaces.items() if k != "original_attribution"})
    lean = AttackCNN(without, grid=4, features_dim=16, channels=8, cell_scores=True)
    lean_obs = {k: v for k, v in _obs_tensors(obs).items() if k != "original_attribution"}
    assert not lean.has_original and lean(lean_obs).shape == (1, 48)


def test_attack_cnn_cell_scores_are_the_action_ids(attack_env):
    """Scores ``[:cells]`` are the ``+step`` actions, ``[cells:2 cells]`` the ``-step`` ones."""
    obs, _ = attack_env.reset(seed=0)
    net = AttackCNN(
        attack_env.observation_space, grid=4, features_dim=8, channels=8, cell_scores=True
    )
    with torch.no_grad():
        net.cell_head.weight.zero_()
        net.cell_head.bias.copy_(torch.tensor([-1.0, 2.0]))
        out = net(_obs_tensors(obs))
    assert out.shape == (1, 40)
    assert (out[0, :16] == -1.0).all() and (out[0, 16:32] == 2.0).all()


def test_attack_cnn_reads_the_perturbation_sign(attack_env):
    """The same weights act at every epsilon: a scaled perturbation gives the same output."""
    attack_env.reset(seed=1)
    for action in (2, 21, 9):
        obs, *_ = attack_env.step(action)
    assert obs["perturbation"].any()
    net = AttackCNN(
        attack_env.observation_space, grid=4, features_dim=8, channels=8, cell_scores=True
    )
    scaled = {**obs, "perturbation": obs["perturbation"] / 4}
    with torch.no_grad():
        torch.testing.assert_close(net(_obs_tensors(obs)), net(_obs_tensors(scaled)))
        moved = {**obs, "attribution": np.flip(obs["attribution"], axis=0).copy()}
        assert not torch.allclose(net(_obs_tensors(obs)), net(_obs_tensors(moved)))


def test_attack_cnn_errors(attack_env):
    space = attack_env.observation_space
    for key in ("image", "perturbation", "attribution", "budget"):
        missing = spaces.Dict({k: v for k, v in space.spaces.items() if k != key})
        with pytest.raises(ValueError, match=key):
            AttackCNN(missing, grid=4)
    with pytest.raises(ValueError, match="finer"):
        AttackCNN(space, grid=64)
    with pytest.raises(ValueError, match="finer"):
        AttackCNN(space, grid=(4, 33))


# ----------------------------------------------------------------------------- policy_attack


def test_random_policy_attack_keeps_labels_and_ball(gradient, images):
    n, budget = len(images), SMALL["budget"]
    policy = RandomSignPolicy(spaces.Discrete(2 * 16), seed=0)
    result = policy_attack(
        policy, gradient, images, EPS, env_kwargs=SMALL, deterministic=False, name="rnd"
    )
    assert result.attack == "rnd"
    _assert_labels_kept(result, gradient, images)
    _assert_in_ball(result, images, EPS)
    assert n <= result.explanations <= n * (1 + budget)
    assert result.changed.any() and result.queries > 0
    # The maps reported are the explainer's own, of the returned images, for the clean predictions.
    original = np.abs(gradient.explain(images, result.targets).maps)
    np.testing.assert_allclose(result.original_maps, original, atol=1e-5)
    after = np.abs(gradient.explain(result.adversarial, result.targets).maps)
    np.testing.assert_allclose(result.adversarial_maps, after, atol=1e-5)


def test_zero_steps_return_the_start_state(gradient, images):
    """``steps=0``: no policy call; with ``start="pattern"`` the result is the same fixed
    perturbation for every image (projected), at two maps per image where the start kept the label."""

    class Never:
        def predict(self, observation, *, deterministic=True):
            raise AssertionError("steps=0 must not call the policy")

    kwargs = {**SMALL, "start": "pattern", "step_size": EPS}
    result = policy_attack(Never(), gradient, images, EPS, env_kwargs=kwargs, steps=0, name="pattern_start")
    _assert_labels_kept(result, gradient, images)
    _assert_in_ball(result, images, EPS)
    n = len(images)
    assert n <= result.explanations <= 2 * n
    signs = np.sign(result.perturbation)
    moved = np.abs(result.perturbation).reshape(n, -1).max(axis=1) > 0
    assert moved.any()
    first = np.flatnonzero(moved)[0]
    for i in np.flatnonzero(moved):  # one pattern for all, up to pixels clipped at 0 or 1
        both = (signs[i] != 0) & (signs[first] != 0)
        assert (signs[i][both] == signs[first][both]).all()
    zero = policy_attack(Never(), gradient, images, EPS, env_kwargs=SMALL, steps=0)
    assert not zero.changed.any() and zero.explanations == n
    with pytest.raises(ValueError, match="steps"):
        policy_attack(Never(), gradient, images, EPS, env_kwargs=SMALL, steps=-1)


def _replayed_shifts(explainer, images, seed):
    """The shift of every state (the start included) of the random policy's episodes, replayed in
    the vector environment as ``policy_attack`` rolls it out."""
    n = len(images)
    names = explainer.classifier.class_names
    data = ArraySource(images, np.zeros(n, np.int64), class_names=names, has_label=False)
    env = AttributionAttackVectorEnv(
        num_envs=n,
        classifier=explainer.classifier,
        explainer=explainer,
        data=data,
        epsilon=EPS,
        **SMALL,
    )
    policy = RandomSignPolicy(spaces.Discrete(32), seed=seed)
    try:
        obs, info = env.reset(seed=0, options={"image_index": np.arange(n)})
        shifts = [np.asarray(info["shift"])]
        for _ in range(SMALL["budget"]):
            obs, _, _, _, info = env.step(policy.predict(obs)[0])
            assert np.asarray(info["label_kept"]).all()
            shifts.append(np.asarray(info["shift"]))
    finally:
        env.close()
    return np.stack(shifts)


def test_best_and_last_selection(gradient, images):
    _, h, w = gradient.classifier.input_shape
    shifts = {}
    for selection in ("best", "last"):
        policy = RandomSignPolicy(spaces.Discrete(32), seed=4)
        result = policy_attack(
            policy,
            gradient,
            images,
            EPS,
            env_kwargs=SMALL,
            deterministic=False,
            selection=selection,
        )
        _assert_labels_kept(result, gradient, images)
        _assert_in_ball(result, images, EPS)
        shifts[selection] = dissimilarity(
            "topk", result.original_maps, result.adversarial_maps, k=h * w // 10
        )
    assert (shifts["best"] >= shifts["last"] - 1e-12).all()
    assert (shifts["best"] > 0).all()
    # "best" is the episode's largest shift, "last" its final state's.
    replay = _replayed_shifts(gradient, images, seed=4)
    np.testing.assert_allclose(shifts["best"], replay.max(axis=0), atol=1e-9)
    np.testing.assert_allclose(shifts["last"], replay[-1], atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"env_kwargs": {"epsilon": 0.1}}, ValueError, "epsilon"),
        ({"env_kwargs": {"explainer": "gradient"}}, ValueError, "explainer"),
        ({"env_kwargs": {"data": "shapes"}}, ValueError, "data"),
        ({"selection": "x"}, ValueError, "selection"),
    ],
)
def test_policy_attack_errors(kwargs, error, match, gradient, images):
    policy = RandomSignPolicy(spaces.Discrete(32), seed=0)
    with pytest.raises(error, match=match):
        policy_attack(policy, gradient, images[:2], EPS, **{"env_kwargs": SMALL, **kwargs})


class _RecordingPolicy:
    """Always the ``+step`` of cell 0; records what ``policy_attack`` hands it."""

    def __init__(self):
        self.calls = []

    def predict(self, obs, deterministic=False):
        self.calls.append((sorted(obs), obs["image"].shape, deterministic))
        return np.zeros(len(obs["image"]), np.int64), None


@pytest.mark.parametrize("deterministic", [True, False])
def test_policy_attack_rolls_out_the_budget_in_batches(gradient, images, deterministic):
    policy = _RecordingPolicy()
    kwargs = {**SMALL, "observe_original": True}
    result = policy_attack(
        policy, gradient, images[:3], EPS, env_kwargs=kwargs, deterministic=deterministic
    )
    assert len(policy.calls) == SMALL["budget"]
    for keys, shape, flag in policy.calls:
        assert "original_attribution" in keys and shape == (3, 3, 32, 32) and flag is deterministic
    assert result.attack == "policy"
    # Repeating the +step of cell 0 stays inside cell 0 and within the ball.
    changed = np.abs(result.adversarial - images[:3]).max(axis=1) > 0
    assert not changed[:, 8:, :].any() and not changed[:, :, 8:].any()
    _assert_in_ball(result, images[:3], EPS)


def test_policy_attack_needs_predict(gradient, images):
    with pytest.raises(TypeError, match="predict"):
        policy_attack(object(), gradient, images[:2], EPS, env_kwargs=SMALL)


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One rollout (4 envs x 8 steps) of MaskablePPO on the shipped attack hyperparameters."""
    root = tmp_path_factory.mktemp("attack_run")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({ENV: {"n_steps": 8, "batch_size": 32, "n_epochs": 1}}))
    out = root / "shapes_gradient"
    result = train_agent(
        ENV, timesteps=32, out=out, n_envs=4, eval_every=32, eval_images=4, progress=False,
        env_kwargs={"explainer": "gradient"}, config=config, checkpoint_every=0,
    )  # fmt: skip
    return out, result


def test_training_writes_an_evaluated_agent(trained_run):
    out, result = trained_run
    assert (out / "final.zip").is_file() and (out / "final.pt").is_file()
    assert result.num_timesteps == 32 and result.evaluations
    for evaluation in result.evaluations:
        assert {"shift", "topk", "label_kept"} <= set(evaluation)
        assert evaluation["label_kept"] == 1.0
        assert 0.0 <= evaluation["topk"] <= 1.0
        assert evaluation["shift"] == pytest.approx(1.0 - evaluation["topk"])  # topk dissimilarity


def test_load_attack_agent(trained_run):
    out, _ = trained_run
    agent = load_attack_agent(out)
    assert isinstance(agent, AttackAgent)
    assert agent.explainer == "gradient" and agent.env_id == ENV and agent.name == "shapes_gradient"
    assert agent.path == out / "final.zip"
    assert agent.trained_epsilon == pytest.approx(EPS)
    assert agent.meta["train_seconds"] > 0 and agent.meta["label_kept"] == 1.0
    # The shipped hyperparameters' environment: 4x4 noise steps of 8/255, eight steps.
    kwargs = agent.episode_kwargs(EPS)
    assert kwargs["grid"] == 4 and kwargs["budget"] == 7 and kwargs["step_pattern"] == "noise"
    assert kwargs["start"] == "pattern" and kwargs["reward"] == "best"
    assert kwargs["observe_original"] is True and kwargs["step_size"] == pytest.approx(EPS)
    assert not {"explainer", "epsilon", "classifier", "data"} & set(kwargs)
    assert agent.episode_kwargs(2 / 255)["step_size"] == pytest.approx(kwargs["step_size"] / 4)
    assert agent.policy.action_space == spaces.Discrete(32)
    # The same agent through its file.
    again = load_attack_agent(out / "final.zip")
    for name, tensor in agent.policy.state_dict().items():
        torch.testing.assert_close(again.policy.state_dict()[name], tensor)


@pytest.mark.parametrize("epsilon", [8 / 255, 2 / 255])
def test_trained_agent_attacks_within_the_rules(trained_run, gradient, images, epsilon):
    agent = load_attack_agent(trained_run[0])
    result = agent.attack(gradient, images, epsilon)
    assert result.attack == "agent"
    _assert_labels_kept(result, gradient, images)
    _assert_in_ball(result, images, epsilon)
    n = len(images)
    assert n <= result.explanations <= n * (1 + 8)
    # Deterministic: the same attack twice gives the same images.
    np.testing.assert_array_equal(
        agent.attack(gradient, images, epsilon).adversarial, result.adversarial
    )


def test_load_attack_agent_refuses_other_agents():
    with pytest.raises(ValueError, match="attribution-attack"):
        load_attack_agent(PRETRAINED_DIR / "shapes_reveal.zip")
    with pytest.raises(ValueError):
        load_attack_agent("shapes_reveal")  # a saliency agent's name is no attack agent's
    with pytest.raises(ValueError, match="unknown"):
        load_attack_agent("no_such_attack_agent")


# ----------------------------------------------------------------------------- shipped agents


@pytest.mark.parametrize("name", shipped_attack_agents())
def test_shipped_attack_agent(name):
    agent = load_attack_agent(name)
    assert agent.name == name and agent.env_id.startswith("saliency_gym/AttributionAttack")
    assert agent.meta["train_seconds"] > 0
    assert name.endswith(f"_{agent.explainer}")
    dataset = name[: -len(agent.explainer) - 1]
    classifier = load_classifier(dataset, device="cpu")
    explainer = make_explainer(
        agent.explainer, classifier, **EXPLAINER_OPTIONS.get(agent.explainer, {})
    )
    images = load_dataset(dataset, "test", n=8).arrays().images
    result = agent.attack(explainer, images, EPS)
    _assert_labels_kept(result, explainer, images)
    _assert_in_ball(result, images, EPS)


def test_shipped_attack_agents_listing():
    names = shipped_attack_agents()
    assert names == sorted(names)
    assert "shapes_reveal" not in names  # the saliency agents are not attack agents
