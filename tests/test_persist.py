"""mdmi.persist: save/load round trips, every refusal with its message, and the shipped
checkpoints loading to exactly the weights and outputs they gave before."""

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import mdmi
from mdmi.estimator import Estimator, EstimatorConfig
from mdmi.models.transformer import MaskedTransformer, MDMConfig
from mdmi.persist import fingerprint, load_module, save_module

REPO = Path(__file__).resolve().parent.parent

# each class: a tiny instance, its weights file, a config edit no weight shape shows, one that
# changes a shape, a field saved at its default, and a fixed input -> output
CASES = {
    "transformer": dict(
        make=lambda: MaskedTransformer(MDMConfig(vocab_size=4, seq_len=6, d_model=16, n_layers=1, n_heads=2)),
        cls=MaskedTransformer, weights="model.safetensors", hidden_edit=("n_heads", 4), shape_edit=("d_model", 32),
        newer_field="dropout",
        run=lambda m: m(torch.tensor([[0, 1, 4, 2, 4, 3]])).logits),
    "estimator": dict(
        make=lambda: Estimator(EstimatorConfig(d_hidden=16, width=8, rank=4)),
        cls=Estimator, weights="estimator.safetensors", hidden_edit=("scale", 0.02), shape_edit=("rank", 3),
        newer_field="prob_features",
        run=lambda m: m.predict(torch.linspace(-1, 1, 160).reshape(2, 5, 16), torch.ones(2, 5, dtype=torch.bool))),
}


@pytest.fixture(params=sorted(CASES))
def saved(request, tmp_path):
    torch.manual_seed(0)
    case = CASES[request.param]
    module = case["make"]().eval()
    module.save(tmp_path / "m", extra={"note": "hello", "history": [{"epoch": 1}]})
    return case, module, tmp_path / "m"


def edit_config(d: Path, change) -> None:
    meta = json.loads((d / "config.json").read_text())
    change(meta)
    (d / "config.json").write_text(json.dumps(meta, indent=2))


@torch.no_grad()
def test_round_trip_keeps_outputs_config_and_extra(saved):
    case, module, d = saved
    back = case["cls"].load(d)
    assert type(back) is case["cls"] and back.config == module.config and not back.training
    assert torch.equal(case["run"](module), case["run"](back))
    meta = json.loads((d / "config.json").read_text())
    assert list(meta) == ["kind", "config", "note", "history", "mdmi_version", "fingerprint"]
    assert meta["mdmi_version"] == mdmi.__version__ and back.meta == meta
    assert meta["fingerprint"] == fingerprint(meta["config"], load_file(str(d / case["weights"])))
    assert sorted(p.name for p in d.iterdir()) == sorted(["config.json", case["weights"]])  # no temporary left


def test_missing_directory_and_files(saved, tmp_path):
    case, _, d = saved
    with pytest.raises(FileNotFoundError, match="does not exist"):
        case["cls"].load(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        case["cls"].load(tmp_path / "file")
    w = (d / case["weights"]).read_bytes()
    (d / case["weights"]).unlink()
    with pytest.raises(FileNotFoundError, match=f"{d} has no {case['weights']}"):
        case["cls"].load(d)
    (d / case["weights"]).write_bytes(w)
    (d / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=f"{d} has no config.json"):
        case["cls"].load(d)


def test_wrong_kind(saved):
    case, _, d = saved
    edit_config(d, lambda m: m.update(kind="mdmi.Something"))
    with pytest.raises(ValueError, match=r"config.json is not an mdmi\.\w+ config \(kind='mdmi.Something'\)"):
        case["cls"].load(d)


def test_unknown_config_field(saved):
    case, _, d = saved
    edit_config(d, lambda m: m["config"].update(colour="blue"))
    with pytest.raises(ValueError, match=r"config.json: config fields do not match \w+: unknown \['colour'\]"):
        case["cls"].load(d)


def test_bad_config_value_names_the_file(saved):
    case, _, d = saved
    name = case["shape_edit"][0]
    edit_config(d, lambda m: m["config"].update({name: "wide"}))
    with pytest.raises(ValueError, match=rf"config.json: \w+Config.{name} must be int"):
        case["cls"].load(d)


def test_mismatched_shape(saved):
    case, module, d = saved
    name, value = case["shape_edit"]
    edit_config(d, lambda m: m["config"].update({name: value}))
    with pytest.raises(ValueError, match=rf"{case['weights']} does not match its config: .*: file \(\d+(, \d+)*\) "
                                         rf"vs config \(\d+(, \d+)*\)"):
        case["cls"].load(d)


def test_missing_and_unexpected_tensors(saved):
    case, _, d = saved
    w = d / case["weights"]
    state = load_file(str(w))
    first = sorted(state)[0]
    save_file({**{k: v for k, v in state.items() if k != first}, "stray": torch.zeros(2)}, str(w))
    with pytest.raises(ValueError, match=rf"missing \['{first}'\]; unexpected \['stray'\]"):
        case["cls"].load(d)


def test_altered_fingerprint_and_hidden_edit(saved):
    case, _, d = saved
    original = (d / "config.json").read_text()
    name, value = case["hidden_edit"]  # no weight shape shows this; the fingerprint does
    edit_config(d, lambda m: m["config"].update({name: value}))
    with pytest.raises(ValueError, match=f"no longer describes the weights in {case['weights']}"):
        case["cls"].load(d)
    (d / "config.json").write_text(original)
    edit_config(d, lambda m: m.update(fingerprint="0" * 16))
    with pytest.raises(ValueError, match="its fingerprint differs from the one recorded at save"):
        case["cls"].load(d)


def test_file_without_fingerprint_loads(saved):
    """Files written before fingerprints (and before a config field existed) still load."""
    case, module, d = saved
    edit_config(d, lambda m: (m.pop("fingerprint"), m.pop("mdmi_version"), m["config"].pop(case["newer_field"])))
    back = case["cls"].load(d)
    assert back.config == module.config  # the missing field took its default
    assert torch.equal(case["run"](module), case["run"](back))


@torch.no_grad()
def test_older_transformer_logit_fingerprint(tmp_path):
    """Older MaskedTransformer files record eight logits in place of the hash: still checked."""
    from mdmi.models.transformer import _matches_recorded_logits

    torch.manual_seed(0)
    m = CASES["transformer"]["make"]()
    m.save(tmp_path / "m")
    L, V = m.config.seq_len, m.config.vocab_size
    x = torch.arange(L)[None] % V
    x[:, ::3] = m.mask_id
    logits = [float(v) for v in copy.deepcopy(m).double()(x).logits[0, :8, 0]]
    edit_config(tmp_path / "m", lambda meta: meta.update(fingerprint=logits))
    assert _matches_recorded_logits(m, logits)
    assert torch.equal(MaskedTransformer.load(tmp_path / "m").head.weight, m.head.weight)
    edit_config(tmp_path / "m", lambda meta: meta["config"].update(n_heads=4))
    with pytest.raises(ValueError, match="no longer describes the weights"):
        MaskedTransformer.load(tmp_path / "m")
    edit_config(tmp_path / "m", lambda meta: meta.update(fingerprint={"not": "numbers"}))
    with pytest.raises(ValueError, match="no longer describes the weights"):
        MaskedTransformer.load(tmp_path / "m")


@dataclass
class NeedsWidth:
    width: int  # no default: a file must give it


class Lin(torch.nn.Module):
    def __init__(self, cfg: NeedsWidth):
        super().__init__()
        self.lin = torch.nn.Linear(cfg.width, 1)


def test_missing_field_without_default_and_reserved_extra(tmp_path):
    save_module(tmp_path / "m", Lin(NeedsWidth(3)), NeedsWidth(3), "test.Lin")
    assert load_module(tmp_path / "m", Lin, NeedsWidth, "test.Lin").lin.in_features == 3
    edit_config(tmp_path / "m", lambda m: m["config"].pop("width"))
    with pytest.raises(ValueError, match=r"config fields do not match NeedsWidth: missing \['width'\]"):
        load_module(tmp_path / "m", Lin, NeedsWidth, "test.Lin")
    with pytest.raises(ValueError, match=r"extra may not set \['fingerprint', 'kind'\]"):
        save_module(tmp_path / "n", Lin(NeedsWidth(3)), NeedsWidth(3), "test.Lin",
                    extra={"kind": "x", "fingerprint": "y", "ok": 1})
    with pytest.raises(TypeError):  # not JSON: refused before anything is written
        save_module(tmp_path / "n", Lin(NeedsWidth(3)), NeedsWidth(3), "test.Lin", extra={"bad": object()})
    assert not (tmp_path / "n").exists()


# ------------------------------------------------------------------ shipped checkpoints
# (sha256 of the loaded weights, sha256 of the outputs on a fixed input), recorded with the
# loaders this module replaced. Outputs are computed in float64 and written to 9 significant
# digits, so that the record holds on any CPU.
SHIPPED = {
    "antiberty/estimator": ("84800617c68c37d0", "3dd87961c91c7916"),
    "hmm": ("8f458b1b09494891", "240e093dc9edf9cf"),
    "hmm/estimator": ("6a0e378f20566ccd", "1f37c6b1ddc880fe"),
    "sapiens_vh/estimator": ("7af9bfefad224ac8", "c1cbdc5c22201fbb"),
    "sapiens_vl/estimator": ("2faaf30e3f875856", "b6982fa3d2ed203d"),
    "sudoku": ("cf0f3f6e2e02f6f7", "0ea986dff7187e51"),
    "sudoku/estimator": ("152df1680914b525", "954dff67953b9ed2"),
    "text": ("b530d225a36366f2", "bb66e02f3a742ffb"),
    "text/estimator": ("450bfbd70f4c7c61", "0dd711c2f96473ab"),
}


def shipped_dir(name: str) -> Path:
    """Where a shipped checkpoint lies: inside the package (wherever it is installed) or at
    the repository root."""
    places = [Path(mdmi.__file__).parent / "checkpoints" / name, REPO / "mdmi" / "checkpoints" / name,
              REPO / "checkpoints" / name]
    for p in places:
        if (p / "config.json").is_file():
            return p
    pytest.fail(f"shipped checkpoint {name!r} not found in {[str(p) for p in places]}")


def weights_digest(module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(f"{k} {tuple(v.shape)} {v.dtype}".encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def outputs_digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(" ".join(f"{v:.8e}" for v in t.double().flatten().tolist()).encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def shipped_outputs(module) -> list:
    g = torch.Generator().manual_seed(0)
    if isinstance(module, MaskedTransformer):
        x = torch.randint(0, module.mask_id + 1, (2, module.config.seq_len), generator=g)
        return [copy.deepcopy(module).double()(x).logits]  # (2, L, V)
    hidden = torch.randn(2, 12, module.config.d_hidden, dtype=torch.float64, generator=g)
    masked = torch.rand(2, 12, generator=g) < 0.7
    feats = torch.randn(2, 12, 4, dtype=torch.float64, generator=g) if module.config.prob_features else None
    head = copy.deepcopy(module).double()
    return [head.predict(hidden, masked, "mi", feats=feats), head.predict(hidden, masked, "tv", feats=feats)]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_loads_unchanged(name):
    d = shipped_dir(name)
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    kind = json.loads((d / "config.json").read_text())["kind"]
    module = mdmi.load(d) if kind == "mdmi.MaskedTransformer" else Estimator.load(d)
    assert (weights_digest(module), outputs_digest(shipped_outputs(module))) == SHIPPED[name]
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == before  # loading writes nothing
