"""Prompted, semi-autoregressive block decoding, EOS and padding in the one loop, and the
``generate text`` path (prompt -> answer) on a tiny text model."""

import subprocess
import sys

import pytest
import torch
from conftest import TableModel
from tiny import tiny_model

import mdmi
from mdmi.decode import block_index, replay
from mdmi.selectors import make_selector
from mdmi.tasks.text import CharTokenizer, generate, prompt_batch


def test_blocks_fill_left_to_right_and_never_touch_the_prompt():
    m = tiny_model(V=4, L=13, seed=1, scale=4.0)
    x = torch.full((2, 13), m.mask_id)
    x[:, :4] = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])  # the prompt
    for name in ("sequential", "threshold", "entropy_bound", "dilated"):
        res = mdmi.decode(m, x, make_selector(name), trace=True, block_length=3)
        assert torch.equal(res.tokens[:, :4], x[:, :4])
        blocks = block_index(x == m.mask_id, 3)
        last = {0: -1, 1: -1}
        for step in res.trace:
            for r, filled in zip(step["rows"], step["filled"]):
                b = {int(blocks[r, i]) for i in filled}
                assert len(b) == 1, (name, filled)  # one block per step
                assert b.pop() >= last[r]
                last[r] = int(blocks[r, filled[0]])
        assert not (res.tokens == m.mask_id).any()


def test_steps_per_block_caps_the_passes():
    m = tiny_model(V=4, L=12, seed=2, scale=4.0)
    x = torch.full((3, 12), m.mask_id)
    res = mdmi.decode(m, x, make_selector("sequential"), block_length=4, steps_per_block=2)
    assert res.nfe.tolist() == [6, 6, 6]  # 3 blocks x 2 passes, the second filling what is left
    assert not (res.tokens == m.mask_id).any()


def _eos_table():
    # vocabulary 0, 1, EOS = 2; the mask id 3. Position 2 is sure to be EOS, positions 0 and 1
    # fairly sure of their token, the tail undecided between 0 and 1
    t = torch.tensor([[4.0, 0, -9], [0, 3.0, -9], [-9, -9, 9.0]] + [[0.1, 0.0, -1.0]] * 6)
    return TableModel(t, mask_id=3)


def test_eos_ends_the_answer_without_a_pass():
    m = _eos_table()
    x = torch.full((1, 9), 3)
    res = mdmi.decode(m, x, make_selector("sequential"), eos_id=2, trace=True)
    assert res.tokens[0].tolist() == [0, 1, 2] + [2] * 6
    assert res.nfe.tolist() == [3] and res.eos_filled.tolist() == [6]  # EOS first, then 0 and 1; the tail for free
    assert res.trace[-1]["eos"] == [[3, 4, 5, 6, 7, 8]]
    states = [s for _, s, _ in replay(x, res)]
    assert len(states) == 3 and states[-1].tolist() == [0, 3, 2] + [3] * 6  # before the last pass: 1 still masked
    plain = mdmi.decode(m, x, make_selector("sequential"))  # without eos_id every position costs a pass
    assert plain.nfe.tolist() == [9]


def test_eos_waits_for_everything_before_it():
    m = _eos_table()
    x = torch.full((1, 9), 3)
    res = mdmi.decode(m, x, make_selector("sequential"), eos_id=2, block_length=3, trace=True)
    first = res.trace[0]["filled"][0]
    assert first == [2] and "eos" not in res.trace[0]  # EOS filled first, 0 and 1 still masked: no early stop
    assert res.tokens[0].tolist() == [0, 1, 2] + [2] * 6


def test_bad_padding_and_eos_are_refused():
    m = _eos_table()
    x = torch.full((1, 5), 3)
    am = torch.tensor([[0, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="pad"):
        mdmi.decode(m, x, make_selector("sequential"), attention_mask=am)  # padding holds the mask id
    with pytest.raises(ValueError, match="eos_id"):
        mdmi.decode(m, x, make_selector("sequential"), eos_id=3)
    with pytest.raises(ValueError, match="block_length"):
        mdmi.decode(m, x, make_selector("sequential"), block_length=0)


def test_prompt_batch_left_pads():
    tok = CharTokenizer("0123456789+=")
    x, am = prompt_batch(tok, ["1+2=", "10+20="], 4, mask_id=tok.vocab_size)
    assert x.shape == (2, 10) and am[0].tolist() == [0, 0] + [1] * 8 and am[1].tolist() == [1] * 10
    assert x[0, :2].tolist() == [tok.pad_id] * 2 and (x[:, 6:] == tok.vocab_size).all()
    assert tok.decode(tok.encode("12+3=") + [tok.eos_id, 1]) == "12+3="
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("1*2")


def _text_model(tmp_path):
    tok = CharTokenizer("0123456789+=")
    torch.manual_seed(0)
    from mdmi.models.transformer import MaskedTransformer, MDMConfig

    m = MaskedTransformer(MDMConfig(vocab_size=tok.vocab_size, seq_len=24, d_model=16, n_layers=1, n_heads=2)).eval()
    m.save(tmp_path / "text", extra={"tokenizer": {**tok.to_dict(), "prompt_width": 8}})
    return tmp_path / "text"


def test_generate_text_answers_every_prompt(tmp_path):
    d = _text_model(tmp_path)
    m = mdmi.load(d)
    outs = generate(m, ["1+2=", "10+20=", "7="], make_selector("threshold", tau=0.5), gen_length=8, block_length=4)
    assert [g.prompt for g in outs] == ["1+2=", "10+20=", "7="]
    for g in outs:
        assert len(g.tokens) == 8 and 1 <= g.nfe <= 8 and g.tokens_per_pass >= 1
        assert all(c in "0123456789+=" for c in g.text)


def test_generate_text_cli(tmp_path):
    d = _text_model(tmp_path)
    (tmp_path / "p.txt").write_text("1+2=\t3\n40+2=\t42\n")
    out = subprocess.run([sys.executable, "-m", "mdmi.cli", "generate", "text", "--model", str(d), "--prompts",
                          str(tmp_path / "p.txt"), "--prompt", "5=", "--gen-length", "8", "--block-length", "4",
                          "--selector", "entropy_bound", "--param", "gamma=0.5", "--json", str(tmp_path / "o.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "3 prompts; mean NFE" in out.stdout and "tokens per forward pass" in out.stdout
    import json

    rows = json.loads((tmp_path / "o.json").read_text())["rows"]
    assert [r["prompt"] for r in rows] == ["5=", "1+2=", "40+2="]  # --prompt first, then the file


def test_textbed_problems_checkers_and_disjoint_splits():
    from mdmi.tasks import textbed

    for task in textbed.TASKS:
        test = textbed.problems(task, 30, seed=0, split="test")
        valid = textbed.problems(task, 30, seed=0, split="valid")
        assert not {p for p, _ in test} & {p for p, _ in valid}
        assert all(textbed.check(task, p, r) and textbed.task_of(p) == task for p, r in test)
        assert textbed.problems(task, 5, seed=0, split="test") == test[:5]  # seeded
    assert textbed.check("add", "19+3=", "22") and not textbed.check("add", "19+3=", "022")
    assert textbed.check("split", "10=", "0+10") and not textbed.check("split", "10=", "01+9")
    assert not textbed.check("split", "10=", "10") and not textbed.check("perm", "abc:", "ab")
    x, answer = textbed.train_sampler(0)(9, torch.Generator())
    assert x.shape == (9, textbed.SEQ_LEN) and answer[:, textbed.PROMPT_WIDTH:].all() and not answer[:, :26].any()


class Spy:
    """Wraps a model and keeps every input it was called on (``seen``)."""

    def __init__(self, m):
        self.m, self.mask_id, self.seen = m, m.mask_id, []

    def __call__(self, xt):
        self.seen.append(xt.clone())
        return self.m(xt)


def test_conditional_training_never_masks_the_prompt():
    from mdmi.train import diffusion_loss

    m = tiny_model(V=4, L=8, seed=0, scale=1.0)
    spy = Spy(m)
    seen = spy.seen

    x0 = torch.randint(0, 4, (64, 8))
    maskable = torch.zeros(64, 8, dtype=torch.bool)
    maskable[:, 5:] = True
    loss = diffusion_loss(spy, x0, torch.Generator().manual_seed(0), maskable=maskable)
    assert torch.isfinite(loss) and torch.equal(seen[0][:, :5], x0[:, :5]) and (seen[0][:, 5:] == m.mask_id).any()


def test_loss_weights_and_the_flat_loss_against_a_hand_computation():
    import torch.nn.functional as F

    from mdmi.tasks import textbed
    from mdmi.train import TrainConfig, diffusion_loss

    m = tiny_model(V=4, L=8, seed=0, scale=1.0)
    x0 = torch.randint(0, 4, (32, 8), generator=torch.Generator().manual_seed(1))
    maskable = torch.zeros(32, 8, dtype=torch.bool)
    maskable[:, 3:] = True
    spy = Spy(m)
    seen = spy.seen

    def run(**kw):
        seen.clear()
        return diffusion_loss(spy, x0, torch.Generator().manual_seed(0), maskable=maskable, **kw)

    elbo = run()
    assert torch.allclose(run(weight=torch.ones(32, 8)), elbo)  # all-ones weight: the ELBO itself
    w = torch.zeros(32, 8)
    w[:, 5:] = 1.0
    flat = run(weight=w, kind="flat")
    xt = seen[0]
    hidden = xt == m.mask_id
    logits = m(xt).logits
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x0.reshape(-1), reduction="none").view(32, 8)
    keep = hidden & (w > 0)
    assert torch.allclose(flat, ce[keep].mean(), atol=1e-6)  # zero-weight positions are masked but teach nothing
    assert hidden[:, 3:5].any()
    # the content weight zeroes EOS only; the split reference never borrows
    x, _ = textbed.encode_problems([("ab:", "ba")])
    cw = textbed.content_weight(x)
    assert cw[0, textbed.PROMPT_WIDTH:textbed.PROMPT_WIDTH + 2].tolist() == [1.0, 1.0]
    assert not cw[0, textbed.PROMPT_WIDTH + 2:].any()
    for p, r in textbed.problems("split", 50, seed=3, split="train"):
        a, _, b = r.partition("+")
        n = p[:-1]
        a, b = a.zfill(len(n)), b.zfill(len(n))
        assert all(int(da) + int(db) == int(dn) for da, db, dn in zip(a, b, n))
        assert len(r.partition("+")[0]) == len(n)  # A as long as N: its digits sit under N's
        assert n[0] == "1" or len(r.partition("+")[2]) == len(n)  # B too, unless N starts with 1
    # the training stream is a function of the generator alone (its state is what a checkpoint saves)
    sample = textbed.train_sampler(0)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    sample(5, g1)
    g2.set_state(g1.get_state())
    assert torch.equal(sample(7, g1)[0], textbed.train_sampler(0)(7, g2)[0])
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="mse")
    with pytest.raises(ValueError, match="kind must be one of"):
        run(kind="mse")


def _prompted(m, B=4, L=40, P=8):
    g = torch.Generator().manual_seed(0)
    x = torch.full((B, L), m.mask_id)
    x[:, :P] = torch.randint(0, m.vocab_size, (B, P), generator=g)
    return x


def test_prefix_cache_against_the_uncached_loop():
    """Tolerance: the cache is exact at the pass that builds it (the block's first, a full
    pass: bit-identical) and stale by the block's own changes afterwards; on a
    default-initialised model that drift is about 1e-4 nats (measured), below the gaps
    between its top tokens, so the greedy tokens and NFE must be identical (the order of
    near-tied positions within a block may differ)."""
    from mdmi.models.transformer import MaskedTransformer, MDMConfig

    torch.manual_seed(0)
    m = MaskedTransformer(MDMConfig(vocab_size=6, seq_len=40, d_model=32, n_layers=2, n_heads=2)).eval()
    x = _prompted(m)
    for name in ("sequential", "topk", "entropy_bound"):
        a = mdmi.decode(m, x, make_selector(name), block_length=8, trace=True)
        b = mdmi.decode(m, x, make_selector(name), block_length=8, trace=True, prefix_cache=True)
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.nfe, b.nfe), name
        assert a.trace[0] == b.trace[0]  # the building pass is the full pass
        assert torch.equal(b.tokens[:, :8], x[:, :8])


def test_prefix_cache_needs_a_model_that_has_one():
    m = _eos_table()
    with pytest.raises(ValueError, match="prefix_cache"):
        mdmi.decode(m, torch.full((1, 5), 3), make_selector("sequential"), prefix_cache=True)


def _textbed_model(tmp_path):
    """A random tiny model over the text testbed's tokens and lengths."""
    from mdmi.models.transformer import MaskedTransformer, MDMConfig
    from mdmi.tasks import textbed

    torch.manual_seed(0)
    m = MaskedTransformer(MDMConfig(vocab_size=textbed.TOKENIZER.vocab_size, seq_len=textbed.SEQ_LEN, d_model=16,
                                    n_layers=1, n_heads=2)).eval()
    m.save(tmp_path / "tb", extra={"task": "text", "tokenizer": {**textbed.TOKENIZER.to_dict(),
                                                                "prompt_width": textbed.PROMPT_WIDTH}})
    return tmp_path / "tb"


def test_bench_text_rows(tmp_path):
    import json

    from mdmi.resolve import reference
    from mdmi.tasks import textbed

    d = _textbed_model(tmp_path)
    pairs = [pr for t in textbed.TASKS for pr in textbed.problems(t, 2, seed=0, split="valid")]
    textbed.write_problems(tmp_path / "v.tsv", pairs)
    for extra in ([], ["--temperature", "1", "--samples", "2"]):
        out = subprocess.run([sys.executable, "-m", "mdmi.cli", "bench", "text", "--model", str(d), "--problems",
                              str(tmp_path / "v.tsv"), "--selectors", "threshold:tau=0.9/0.5", "--selector",
                              "mi_budget:pairwise=js,gamma=0.3", "--block-length", "8", *extra,
                              "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        rows = json.loads((tmp_path / "b.json").read_text())
        assert [r["selector"] for r in rows] == ["sequential", "threshold", "threshold", "mi_budget"]
        for r in rows:
            assert 0 <= r["validity"] <= 1 and len(r["per_seq"]["validity"]) == 6 and r["block_length"] == 8
            assert set(r["validity_by_task"]) == set(textbed.TASKS) and r["provenance"]["command"].startswith("mdmi")
            assert r["provenance"]["model"] == reference(d)  # the weights that ran, by digest
            assert r["validity"] == pytest.approx(sum(r["per_seq"]["validity"]) / 6)
        if extra:
            assert all(r["jsd_to_sequential"] is not None and 0 <= r["distinct_valid"] <= 1 for r in rows)
        assert (tmp_path / "b.png").stat().st_size > 0 and not (tmp_path / "b_partial.json").exists()


def test_label_text_contexts_never_mask_the_prompt(tmp_path):
    from mdmi.labels import load_labels
    from mdmi.tasks import textbed

    d = _textbed_model(tmp_path)
    out = subprocess.run([sys.executable, "-m", "mdmi.cli", "label", "--model", str(d), "--task", "text",
                          "--contexts", "4", "--shard-size", "4", "--block-length", "8", "--out", str(tmp_path / "lab")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lab = load_labels(tmp_path / "lab")
    masked = lab["masked"].bool()
    assert masked.any() and not masked[:, : textbed.PROMPT_WIDTH].any()
    assert torch.equal(lab["tokens"][:, : textbed.PROMPT_WIDTH], lab["clean"][:, : textbed.PROMPT_WIDTH])
