"""Files from strangers: crafted model, weights and agent files never run their payload.

Every crafted file is built here from a real one, with a payload that creates a marker file when
unpickled (or evaluated). Each test asserts that the marker is not created and that the error
names the file and the offending entry; where a test says "the payload is live", the same file
handed to torch's (or SB3's) own loader does create the marker.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import pathlib
import pickle
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import torch

from saliency_gym.checkpoint import CheckpointError, resolve_checkpoint
from saliency_gym.model_files import UnsafeModelFileError, load_model
from tests.byo_models import FileWritingNet, seeded_tiny_cnn
from tests.models.test_model_files import SHAPE, save_export, save_torchscript, write_pngs

FACTORY = "tests.byo_models:tiny_cnn"


class Payload:
    """Unpickling this creates ``marker`` (a stand-in for any code an attacker runs)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.marker,))


def torch_saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def rewrite_zip(
    source: Path, target: Path, changes: dict[str, bytes | None], *, root: str | None = None
) -> Path:
    """``source`` with its entries (named without the archive's root folder) replaced, added
    (``bytes``) or removed (``None``); ``root`` renames the root folder ("" puts entries at the top)."""
    changes = dict(changes)
    with zipfile.ZipFile(source) as src:
        old_root = src.namelist()[0].split("/", 1)[0]
        new_root = old_root if root is None else root
        prefix = f"{new_root}/" if new_root else ""
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as dst:
            for item in src.namelist():
                name = item.split("/", 1)[1]
                data = changes.pop(name) if name in changes else src.read(item)
                if data is not None:
                    dst.writestr(prefix + name, data)
            for name, data in changes.items():
                if data is not None:
                    dst.writestr(prefix + name, data)
    return target


def read_entry(archive: Path, name: str) -> bytes:
    with zipfile.ZipFile(archive) as src:
        root = src.namelist()[0].split("/", 1)[0]
        return src.read(f"{root}/{name}")


@pytest.fixture()
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "payload_ran"
    yield path
    assert not path.exists(), "the payload ran"


@pytest.fixture()
def exported(tmp_path: Path) -> Path:
    return save_export(tmp_path / "good.pt2", seeded_tiny_cnn())


@pytest.fixture()
def torch_never_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.export.load must not even be called on a refused archive."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(
            "torch.export.load was called on an archive that should have been refused"
        )

    monkeypatch.setattr(torch.export, "load", refuse)


@pytest.fixture()
def only_weights_only_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail on any torch.load(weights_only=False), pickle or cloudpickle load; records the calls."""
    real = torch.load
    calls: list[object] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("weights_only"))
        assert kwargs.get("weights_only", True) is not False, (
            "torch.load(weights_only=False) was called"
        )
        return real(*args, **kwargs)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pickle/cloudpickle was asked to unpickle")

    monkeypatch.setattr(torch, "load", spy)
    for module in (pickle, cloudpickle):
        monkeypatch.setattr(module, "loads", forbidden)
        monkeypatch.setattr(module, "load", forbidden)
    return calls


# ---------------------------------------------------------------- torch.export archives


def test_pickled_weight_is_refused_before_torch_reads_it(
    tmp_path: Path, exported: Path, marker: Path
) -> None:
    config = json.loads(read_entry(exported, "data/weights/model_weights_config.json"))
    fqn, entry = next(iter(config["config"].items()))
    entry["use_pickle"] = True
    stealth = rewrite_zip(exported, tmp_path / "stealth.pt2", {
        "data/weights/model_weights_config.json": json.dumps(config).encode(),
        f"data/weights/{entry['path_name']}": torch_saved(Payload(marker)),
    })  # fmt: skip
    with pytest.raises(UnsafeModelFileError, match=rf"stealth\.pt2.*weight '{fqn}'.*use_pickle"):
        load_model(stealth, device="cpu")
    assert not marker.exists()
    try:  # the payload is live: torch's own loader runs it (and then fails on the odd weight)
        torch.export.load(str(stealth))
    except Exception:  # noqa: BLE001, S110
        pass
    assert marker.exists()
    marker.unlink()


def test_pickled_weight_from_the_command_line_is_one_line_exit_2(
    tmp_path: Path, exported: Path, marker: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saliency_gym.cli.main import main

    config = json.loads(read_entry(exported, "data/weights/model_weights_config.json"))
    fqn, entry = next(iter(config["config"].items()))
    entry["use_pickle"] = True
    stealth = rewrite_zip(exported, tmp_path / "stealth.pt2", {
        "data/weights/model_weights_config.json": json.dumps(config).encode(),
        f"data/weights/{entry['path_name']}": torch_saved(Payload(marker)),
    })  # fmt: skip
    write_pngs(tmp_path / "images", 1)
    code = main(["explain", "--model", str(stealth), "--data", str(tmp_path / "images"), "--methods", "occlusion",
                 "--images", "1", "--out", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "stealth.pt2" in captured.err and fqn in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "occlusion" not in captured.out


@pytest.mark.parametrize("kind", ["tensor_0", "opaque_obj_0", "custom_obj_0"])
def test_pickled_or_object_constants_are_refused(
    tmp_path: Path, exported: Path, marker: Path, kind: str, torch_never_reads: None
) -> None:
    meta = next(
        iter(
            json.loads(read_entry(exported, "data/weights/model_weights_config.json"))[
                "config"
            ].values()
        )
    )["tensor_meta"]
    constants = {
        "config": {
            "evil": {
                "path_name": kind,
                "is_param": False,
                "use_pickle": kind == "tensor_0",
                "tensor_meta": meta,
            }
        }
    }
    blob = torch_saved(Payload(marker)) if kind == "tensor_0" else pickle.dumps(Payload(marker))
    crafted = rewrite_zip(exported, tmp_path / "const.pt2", {
        "data/constants/model_constants_config.json": json.dumps(constants).encode(), f"data/constants/{kind}": blob,
    })  # fmt: skip
    with pytest.raises(UnsafeModelFileError, match=rf"const\.pt2.*constant 'evil'.*{kind}"):
        load_model(crafted, device="cpu")


def test_sample_inputs_that_need_a_full_unpickle_are_refused(
    tmp_path: Path, exported: Path, marker: Path, torch_never_reads: None
) -> None:
    crafted = rewrite_zip(
        exported,
        tmp_path / "inputs.pt2",
        {"data/sample_inputs/model.pt": torch_saved(Payload(marker))},
    )
    with pytest.raises(
        UnsafeModelFileError, match=r"inputs\.pt2.*data/sample_inputs/model\.pt.*weights_only=False"
    ):
        load_model(crafted, device="cpu")


@pytest.mark.parametrize("name", ["data/weights/model.pt", "data/constants/model.pt"])
def test_legacy_weight_files_are_refused(
    tmp_path: Path, exported: Path, marker: Path, name: str, torch_never_reads: None
) -> None:
    crafted = rewrite_zip(
        exported, tmp_path / "legacy.pt2", {name: torch_saved({"w": Payload(marker)})}
    )
    with pytest.raises(UnsafeModelFileError, match=rf"legacy\.pt2.*{name}.*legacy format"):
        load_model(crafted, device="cpu")


def test_legacy_format_archive_is_refused(
    tmp_path: Path, exported: Path, marker: Path, torch_never_reads: None
) -> None:
    # Entries at the top of the zip: torch's pt2 reader fails and torch.export.load falls back to
    # the legacy format, whose serialized_*.pt members it unpickles with weights_only=False.
    crafted = rewrite_zip(exported, tmp_path / "old.pt2", {
        "version": b"8.0", "serialized_exported_program.json": b"{}",
        "serialized_state_dict.pt": torch_saved(Payload(marker)), "serialized_constants.pt": b"",
        "serialized_example_inputs.pt": b"",
    }, root="")  # fmt: skip
    with pytest.raises(
        UnsafeModelFileError, match=r"old\.pt2.*outside the archive's folder.*legacy"
    ):
        load_model(crafted, device="cpu")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("data/aotinductor/model/model.so", "AOTInductor"),
        ("serialized_state_dict.pt", "not part of"),
    ],
)
def test_native_code_and_unknown_entries_are_refused(
    tmp_path: Path, exported: Path, name: str, match: str, torch_never_reads: None
) -> None:
    crafted = rewrite_zip(exported, tmp_path / "extra.pt2", {name: b"\x7fELF not really"})
    with pytest.raises(UnsafeModelFileError, match=rf"extra\.pt2.*{name}.*{match}"):
        load_model(crafted, device="cpu")


def test_duplicate_entries_are_refused(
    tmp_path: Path, exported: Path, torch_never_reads: None
) -> None:
    crafted = rewrite_zip(exported, tmp_path / "twice.pt2", {})
    with zipfile.ZipFile(crafted, "a") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        archive.writestr(archive.namelist()[0], b"other")
    with pytest.raises(UnsafeModelFileError, match=r"twice\.pt2.*appears twice"):
        load_model(crafted, device="cpu")


def _program(archive: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(read_entry(archive, "models/model.json"))
    return document


def test_symbolic_shape_strings_are_not_evaluated(
    tmp_path: Path, exported: Path, marker: Path, torch_never_reads: None
) -> None:
    program = _program(exported)
    values = program["graph_module"]["graph"]["tensor_values"].values()
    size = next(v["sizes"][0] for v in values if "as_expr" in v["sizes"][0])  # the dynamic batch
    size["as_expr"]["expr_str"] = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    crafted = rewrite_zip(
        exported, tmp_path / "sym.pt2", {"models/model.json": json.dumps(program).encode()}
    )
    with pytest.raises(
        UnsafeModelFileError, match=r"sym\.pt2.*symbolic shape.*__import__.*sympify"
    ):
        load_model(crafted, device="cpu")


def test_guard_code_is_not_executed(
    tmp_path: Path, exported: Path, marker: Path, torch_never_reads: None
) -> None:
    program = _program(exported)
    program["guards_code"] = [f"__import__('pathlib').Path({str(marker)!r}).touch() is None"]
    crafted = rewrite_zip(
        exported, tmp_path / "guard.pt2", {"models/model.json": json.dumps(program).encode()}
    )
    with pytest.raises(UnsafeModelFileError, match=r"guard\.pt2.*guard.*guards_code\[0\]"):
        load_model(crafted, device="cpu")


@pytest.mark.parametrize(
    ("target", "match"),
    [("torch.os.system", "not one of torch's tensor operators"), ("_operator.call", "not one of"),
     ("torch.ops.aten.save.default", "file"), ("torch.ops.aten.from_file.default", "file"),
     ("torch.ops.higher_order.flat_apply", "not one of")],
)  # fmt: skip
def test_graph_operators_outside_torch_tensor_ops_are_refused(
    tmp_path: Path, exported: Path, target: str, match: str, torch_never_reads: None
) -> None:
    program = _program(exported)
    program["graph_module"]["graph"]["nodes"][1]["target"] = target
    crafted = rewrite_zip(
        exported, tmp_path / "op.pt2", {"models/model.json": json.dumps(program).encode()}
    )
    with pytest.raises(UnsafeModelFileError, match=rf"op\.pt2.*operator '{target}'.*{match}"):
        load_model(crafted, device="cpu")


def test_names_pasted_into_generated_code_are_checked(
    tmp_path: Path, exported: Path, marker: Path, torch_never_reads: None
) -> None:
    # torch.fx writes keyword names raw into the Python source of the module it builds:
    # ExportedProgram.module()(x) runs this payload.
    program = _program(exported)
    node = program["graph_module"]["graph"]["nodes"][1]
    node["target"] = "math.floor"  # arithmetic on sizes: an allowed target
    keyword = f"**{{'x': __import__('pathlib').Path({str(marker)!r}).touch()}}, a"
    node["inputs"] = [
        {"name": "", "arg": node["inputs"][0]["arg"], "kind": 1},
        {"name": keyword, "arg": {"as_int": 0}, "kind": 2},
    ]
    crafted = rewrite_zip(
        exported, tmp_path / "kw.pt2", {"models/model.json": json.dumps(program).encode()}
    )
    with pytest.raises(
        UnsafeModelFileError, match=r"kw\.pt2.*name .*touch.*not a Python identifier"
    ):
        load_model(crafted, device="cpu")

    program = _program(exported)
    program["graph_module"]["module_call_graph"][-1]["fqn"] = 'net"), print("x'
    crafted = rewrite_zip(
        exported, tmp_path / "fqn.pt2", {"models/model.json": json.dumps(program).encode()}
    )
    with pytest.raises(UnsafeModelFileError, match=r"fqn\.pt2.*path .*fqn in models/model\.json"):
        load_model(crafted, device="cpu")


def test_legitimate_archives_load_with_weights_only_reads(
    tmp_path: Path, exported: Path, only_weights_only_loads: list[object]
) -> None:
    classifier = load_model(exported, device="cpu")
    assert (
        classifier.input_shape == SHAPE and only_weights_only_loads
    )  # the sample inputs were read

    # dynamic spatial sizes: symbolic shapes with arithmetic and guards on the input's size
    class Strided(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = (
                torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
                torch.nn.Linear(4, 3),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.fc(y[:, :, : y.shape[2] // 2 + 1].mean((2, 3)))

    dims = {0: torch.export.Dim("batch", min=2), 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    program = torch.export.export(
        Strided().eval(), (torch.rand(2, 3, 32, 32),), dynamic_shapes=(dims,)
    )
    torch.export.save(program, str(tmp_path / "dynamic.pt2"))
    assert _program(tmp_path / "dynamic.pt2")[
        "guards_code"
    ]  # torch wrote guards: they are accepted
    assert (
        load_model(tmp_path / "dynamic.pt2", input_shape=(3, 32, 32), device="cpu").num_classes == 3
    )


def test_malformed_archive_gives_one_clear_error_without_torch_log(
    tmp_path: Path, exported: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    program = _program(exported)
    program["graph_module"]["graph"]["nodes"][1]["target"] = "torch.ops.aten.no_such_op.default"
    broken = rewrite_zip(
        exported, tmp_path / "broken.pt2", {"models/model.json": json.dumps(program).encode()}
    )
    filters = {
        name: list(logging.getLogger(name).filters)
        for name in ("torch.export", "torch._export.serde.serialize")
    }
    capfd.readouterr()
    with pytest.raises(
        ValueError,
        match=r"cannot read torch.export archive .*broken\.pt2: SerializeError: .*no_such_op",
    ):
        load_model(broken, device="cpu")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "no_such_op" not in err and err.strip() == ""
    assert {name: list(logging.getLogger(name).filters) for name in filters} == filters  # restored


def test_no_torch_future_warning_on_load(exported: Path) -> None:
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier = load_model(exported, device="cpu")
        classifier.probs(torch.rand(2, *SHAPE))
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [
        str(w.message) for w in caught
    ]
    assert warnings.filters == before


# ---------------------------------------------------------------- TorchScript


@pytest.mark.parametrize("entry", ["data.pkl", "constants.pkl"])
def test_torchscript_with_a_python_pickle_runs_nothing(
    tmp_path: Path, marker: Path, entry: str
) -> None:
    scripted = save_torchscript(tmp_path / "net.ts", seeded_tiny_cnn())
    crafted = rewrite_zip(
        scripted, tmp_path / "crafted.ts", {entry: pickle.dumps(Payload(marker), protocol=2)}
    )
    with pytest.raises(ValueError, match=r"cannot read TorchScript file .*crafted\.ts"):
        load_model(crafted, input_shape=SHAPE, device="cpu")


def test_torchscript_that_writes_files_is_refused(tmp_path: Path, marker: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(FileWritingNet(str(marker))).save(str(tmp_path / "writer.ts"))
    with pytest.raises(UnsafeModelFileError, match=r"writer\.ts.*code entry code/.*calls 'save'"):
        load_model(tmp_path / "writer.ts", input_shape=SHAPE, device="cpu")
    with warnings.catch_warnings():  # the payload is live: running the module writes the file
        warnings.simplefilter("ignore")
        torch.jit.load(str(tmp_path / "writer.ts"))(torch.rand(1, *SHAPE))
    assert marker.exists()
    marker.unlink()


# ---------------------------------------------------------------- weights and checkpoints


def test_factory_weights_with_a_pickle_are_refused(tmp_path: Path, marker: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(torch_saved({"state_dict": {"0.weight": Payload(marker)}}))
    with pytest.raises(CheckpointError, match=r"w\.pt.*weights-only load refuses.*not loaded"):
        load_model(FACTORY, weights=weights, input_shape=SHAPE)
    scripted = save_torchscript(
        tmp_path / "net.ts", seeded_tiny_cnn()
    )  # an archive with code, as weights
    with pytest.raises(CheckpointError, match=r"net\.ts"):
        load_model(FACTORY, weights=scripted, input_shape=SHAPE)


def test_classifier_and_agent_checkpoints_with_a_pickle_are_refused(
    tmp_path: Path, marker: Path
) -> None:
    from saliency_gym.agents.agent_checkpoints import AGENT_FORMAT, load_agent_payload
    from saliency_gym.zoo import load_classifier

    evil = tmp_path / "evil.pt"
    evil.write_bytes(torch_saved({"format": AGENT_FORMAT, "policy_state": {"w": Payload(marker)}}))
    with pytest.raises(CheckpointError, match=r"evil\.pt.*weights-only load refuses"):
        load_agent_payload(evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt.*weights-only load refuses"):
        load_classifier(evil)


def _crafted_agent_zip(tmp_path: Path, marker: Path, *, policy: bytes | None = None) -> Path:
    """A saliency-gym SB3 zip of the shipped shapes_reveal agent whose SB3 members carry payloads."""
    from saliency_gym.agents.agent_checkpoints import (
        ZIP_META_MEMBER,
        load_agent_payload,
        zip_metadata,
    )
    from saliency_gym.agents.pretrained import PRETRAINED_DIR

    payload = load_agent_payload(PRETRAINED_DIR / "shapes_reveal.zip")
    meta = zip_metadata(algo=payload["algo"], env_id=payload["env_id"], env_kwargs=payload["env_kwargs"],
                        hyperparameters=payload["hyperparameters"], seed=0, num_timesteps=payload["num_timesteps"])  # fmt: skip
    live = base64.b64encode(cloudpickle.dumps(Payload(marker))).decode()
    data = {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": live}}
    path = tmp_path / "agent.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr(
            "policy.pth", policy if policy is not None else torch_saved(payload["policy_state"])
        )
        archive.writestr("pytorch_variables.pth", torch_saved(Payload(marker)))
        archive.writestr("_stable_baselines3_version", "2.7.0")
        archive.writestr(ZIP_META_MEMBER, json.dumps(meta))
    return path


def test_agent_zip_loader_never_unpickles(
    tmp_path: Path, marker: Path, only_weights_only_loads: list[object]
) -> None:
    from saliency_gym.agents.agent_checkpoints import load_agent_payload
    from saliency_gym.agents.pretrained import load_agent_policy

    crafted = _crafted_agent_zip(tmp_path, marker)
    assert load_agent_payload(crafted)["algo"] == "maskable_ppo"
    load_agent_policy(crafted)
    assert only_weights_only_loads and not marker.exists()


def test_agent_zip_with_a_pickled_policy_is_refused(tmp_path: Path, marker: Path) -> None:
    from saliency_gym.agents.agent_checkpoints import load_agent_payload

    crafted = _crafted_agent_zip(tmp_path, marker, policy=torch_saved({"w": Payload(marker)}))
    with pytest.raises(
        CheckpointError, match=r"agent\.zip: policy\.pth.*weights-only load refuses"
    ):
        load_agent_payload(crafted)


def test_sb3_zip_from_elsewhere_is_refused_not_unpickled(tmp_path: Path, marker: Path) -> None:
    from saliency_gym.agents.agent_checkpoints import ZIP_META_MEMBER, load_agent_payload

    crafted = _crafted_agent_zip(tmp_path, marker)
    with zipfile.ZipFile(crafted) as src, zipfile.ZipFile(tmp_path / "plain.zip", "w") as dst:
        for item in src.namelist():
            if item != ZIP_META_MEMBER:
                dst.writestr(item, src.read(item))
    with pytest.raises(
        CheckpointError, match=r"plain\.zip has no saliency_gym\.json.*trusted files only"
    ):
        load_agent_payload(tmp_path / "plain.zip")


def test_rllib_loader_says_to_open_own_checkpoints_only() -> None:
    from saliency_gym.distributed import rllib_policy

    doc = " ".join((rllib_policy.load_rllib_policy.__doc__ or "").split()).lower()
    assert "only open rllib checkpoints you produced" in doc


# ---------------------------------------------------------------- factories, folders, outputs


def test_factory_without_weights_is_refused_unless_random_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saliency_gym.cli.main import main

    with pytest.raises(
        ValueError,
        match=r"tests\.byo_models:tiny_cnn.*random weights.*--weights.*random_weights=True",
    ):
        load_model(FACTORY, input_shape=SHAPE)
    classifier = load_model(FACTORY, input_shape=SHAPE, random_weights=True)
    assert classifier.meta["random_weights"] is True
    with pytest.raises(ValueError, match="not both"):
        load_model(FACTORY, input_shape=SHAPE, random_weights=True, weights=tmp_path / "w.pt")
    with pytest.raises(ValueError, match="module:factory' model only"):
        load_model("shapes", random_weights=True)

    write_pngs(tmp_path / "images", 1)
    argv = ["explain", "--model", FACTORY, "--input-shape", "3", "16", "16", "--data", str(tmp_path / "images"),
            "--methods", "occlusion", "--images", "1", "--out", str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "--random-weights" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    )
    assert main([*argv, "--random-weights"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("runtime", "RuntimeError: CUDA out of memory"),
        ("key", "KeyError: 'num_classes'"),
        ("exit0", r"SystemExit\(0\)"),
    ],
)
def test_factory_failures_become_one_value_error(kind: str, match: str) -> None:
    spec = "tests.byo_models:failing_factory"
    with pytest.raises(
        ValueError, match=rf"the model factory '{spec}' failed with \{{'kind': '{kind}'\}}: {match}"
    ):
        load_model(spec, model_kwargs={"kind": kind}, input_shape=SHAPE, random_weights=True)


def test_factory_keyboard_interrupt_still_stops() -> None:
    with pytest.raises(KeyboardInterrupt):
        load_model(
            "tests.byo_models:failing_factory",
            model_kwargs={"kind": "interrupt"},
            input_shape=SHAPE,
            random_weights=True,
        )


def test_factory_exiting_zero_is_exit_2_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saliency_gym.cli.main import main

    code = main(["explain", "--model", "tests.byo_models:failing_factory", "--model-kwargs", '{"kind": "exit0"}',
                 "--random-weights", "--input-shape", "3", "16", "16", "--data", "shapes", "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "SystemExit(0)" in err and len(err.strip().splitlines()) == 1


def test_factory_module_in_the_working_directory_is_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "byo_cwd_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "from tests.byo_models import tiny_cnn\n\ndef build():\n    return tiny_cnn()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))]
    )  # a console script's path
    path_before = list(sys.path)
    try:
        classifier = load_model("byo_cwd_pkg.models:build", input_shape=SHAPE, random_weights=True)
        assert classifier.num_classes == 3
        assert sys.path == path_before  # the working directory was taken off again
        with pytest.raises(
            ValueError, match=rf"No module named 'nope_pkg_xyz'.*looked in the folder {tmp_path}"
        ):
            load_model("nope_pkg_xyz.models:build", input_shape=SHAPE, random_weights=True)
    finally:
        for name in ("byo_cwd_pkg", "byo_cwd_pkg.models"):
            sys.modules.pop(name, None)


def test_integer_logits_are_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saliency_gym.cli.main import main

    with pytest.raises(
        ValueError, match=r"returns torch\.int64 scores.*float scores \(logits or probabilities\)"
    ):
        load_model("tests.byo_models:integer_logits", input_shape=SHAPE, random_weights=True)
    write_pngs(tmp_path / "images", 1)
    code = main(["explain", "--model", "tests.byo_models:integer_logits", "--random-weights", "--input-shape", "3", "16", "16",
                 "--data", str(tmp_path / "images"), "--methods", "gradient", "occlusion", "--images", "1",
                 "--out", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "int64" in captured.err and "Traceback" not in captured.err
    assert "gradient" not in captured.out and "occlusion" not in captured.out


def test_a_folder_as_the_model_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from saliency_gym.cli.main import main

    (tmp_path / "m").mkdir()
    with pytest.raises(ValueError, match=r"m is a folder; pass a model file \("):
        load_model(tmp_path / "m")
    assert main(["explain", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "out")]) == 2
    assert "is a folder; pass a model file" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"agent .*m is a folder"):
        resolve_checkpoint(tmp_path / "m", {}, "agent")
