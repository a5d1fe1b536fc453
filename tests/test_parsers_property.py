"""Property tests for every parser that reads outside input: random junk gives either a
valid parse or a ValueError with a message, never another exception."""

import string

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdmi.cli.nll import read_sequences
from mdmi.labels import LabelConfig
from mdmi.selectors import NAMES, check_params, parse_knob_list, parse_spec
from mdmi.tasks import antibody, sudoku
from mdmi.tasks.protein import read_fasta

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
sudokuish = st.text(alphabet="0123456789. \n,#x", max_size=200)
fastaish = st.text(alphabet=">ACDEFGHIKLMNPQRSTVWYBXZ cdr123=-0123456789;\n", max_size=300)


def valid_or_value_error(fn, *a):
    try:
        return fn(*a)
    except ValueError as e:
        assert str(e), "a ValueError must say what is wrong"
        return None


@SETTINGS
@given(st.one_of(junk, st.text(alphabet="0123456789.", min_size=81, max_size=81)))
def test_puzzle_lines(s):
    cells = valid_or_value_error(sudoku.parse, s)
    if cells is not None:
        assert len(cells) == 81 and all(0 <= c <= 9 for c in cells)


@SETTINGS
@given(st.one_of(junk, sudokuish))
def test_puzzle_files(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("p") / "p.txt"
    f.write_text(text)
    got = valid_or_value_error(sudoku.read_puzzles, f)
    if got is not None:
        assert all(len(p.puzzle) == 81 for p in got)


@SETTINGS
@given(st.one_of(junk, fastaish))
def test_fasta_and_antibody_headers(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("f") / "f.fasta"
    f.write_text(text)
    got = valid_or_value_error(read_fasta, f)
    if got is not None:
        assert all(seq and set(seq) <= set("ACDEFGHIKLMNPQRSTVWY") for _, seq in got)
    ab = valid_or_value_error(antibody.read_antibody_fasta, f)
    if ab is not None:
        for r in ab:
            assert all(0 <= a < b <= len(r.sequence) for a, b in r.spans.values())


@SETTINGS
@given(st.lists(st.one_of(junk, st.from_regex(r"[a-z_]{1,6}=[-+0-9.eEnaif]{0,6}", fullmatch=True)), max_size=4),
       st.sampled_from(sorted(NAMES)))
def test_param_strings(items, selector):
    params = valid_or_value_error(parse_knob_list, selector, items)
    if params is not None:
        assert check_params(selector, params) == params


@SETTINGS
@given(st.one_of(junk, st.from_regex(r"[a-z_]{1,9}(:[a-z_]{1,6}=[-+0-9.eEnaif/]{0,8}([,+][a-z_]{1,5}=[-0-9.e]{0,4})?)?",
                                     fullmatch=True)))
def test_selector_specs(spec):
    jobs = valid_or_value_error(parse_spec, spec)
    for name, params in jobs or []:
        assert check_params(name, params) == params


@SETTINGS
@given(st.one_of(junk, st.text(alphabet="0123456789 ,#\n-", max_size=120)))
def test_token_id_files(tmp_path_factory, text):
    class M:
        mask_id, vocab_size, meta = 4, 4, {}

    f = tmp_path_factory.mktemp("t") / "t.txt"
    f.write_text(text)
    x = valid_or_value_error(read_sequences, f, M())
    if x is not None:
        assert x.dim() == 2 and int(x.min()) >= 0 and int(x.max()) < 4


@SETTINGS
@given(st.dictionaries(st.sampled_from(["contexts", "shard_size", "decode_frac", "min_masked", "delta", "batch_size"]),
                       st.one_of(st.integers(-5, 50), st.floats(-1, 2), st.just(float("nan")))))
def test_label_specs(kw):
    cfg = valid_or_value_error(lambda: LabelConfig(**kw))
    if cfg is not None:
        assert cfg.n_shards >= 1 and 0 <= cfg.delta <= 0.5


def test_residue_mask_specs_reject_junk():
    rec = antibody.Antibody("x", "ACDEFGHIK", spans={"cdr3": (2, 5)})
    for s in ["", "cdr", "random", "random:", "random:-1", "random:nan", "cdr3x", string.ascii_letters]:
        with pytest.raises(ValueError):
            antibody.residue_mask(rec, s, torch.Generator().manual_seed(0))
