"""The Hugging Face adapter on tiny randomly initialised ESM and BERT models (no network)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import BertConfig, BertForMaskedLM, BertTokenizer, EsmConfig, EsmForMaskedLM, EsmTokenizer  # noqa: E402

import mdmi  # noqa: E402
from mdmi.cli import main  # noqa: E402
from mdmi.interface import masked_log_probs  # noqa: E402
from mdmi.mi import exact_mi  # noqa: E402
from mdmi.models.hf import HFMaskedLM  # noqa: E402
from mdmi.tasks.protein import read_fasta  # noqa: E402
from tiny import free_port  # noqa: E402

ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q",
             "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>"]
SEQS = ["MKTAYIAKQR", "GAVLIPFWM", "ACDEFGHIKLMNPQRSTVWY"]


def tiny_esm(tmp_path, save=False):
    torch.manual_seed(0)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(ESM_VOCAB) + "\n")
    tok = EsmTokenizer(str(vocab))
    cfg = EsmConfig(vocab_size=33, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    max_position_embeddings=40, position_embedding_type="rotary", pad_token_id=1, mask_token_id=32,
                    token_dropout=False)
    model = EsmForMaskedLM(cfg).eval()
    if save:
        d = tmp_path / "esm"
        model.save_pretrained(d)
        tok.save_pretrained(d)
        return d
    return model, tok


def tiny_bert(tmp_path):
    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefgh")
    vocab = tmp_path / "bert_vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    tok = BertTokenizer(str(vocab), do_lower_case=True)
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32)
    return BertForMaskedLM(cfg).eval(), tok


@pytest.fixture(params=["esm", "bert"])
def adapter(request, tmp_path):
    if request.param == "esm":
        model, tok = tiny_esm(tmp_path)
        return HFMaskedLM(model, tok, allowed="protein"), SEQS
    model, tok = tiny_bert(tmp_path)
    return HFMaskedLM(model, tok), ["abcabc", "hgfe", "abcdefgh"]


def test_logits_equal_the_hf_model(adapter):
    a, seqs = adapter
    x = a.encode(seqs)
    with torch.no_grad():
        ref = a.model(input_ids=x, attention_mask=(x != a.pad_id).long()).logits
    out = a(x)
    assert torch.allclose(out.logits, ref, atol=1e-6)
    assert out.hidden.shape == (*x.shape, 32)


def test_attention_maps_on_request(adapter):
    """output_attentions: (B, n_layers, L, L) head-averaged rows that sum to one, the same
    logits as the fused attention, and DAWN decodes on them."""
    m, seqs = adapter
    x = m.encode(seqs[:2])
    plain = m(x)
    out = m(x, output_attentions=True)
    assert plain.attentions is None and m.supports_attentions
    assert torch.allclose(plain.logits, out.logits, atol=1e-4)
    n_layers = m.model.config.num_hidden_layers
    assert out.attentions.shape == (2, n_layers, x.shape[1], x.shape[1])
    real = ~m.fixed(x) | (x != m.pad_id)
    assert torch.allclose(out.attentions.sum(-1)[0][:, real[0]], torch.ones(n_layers, int(real[0].sum())), atol=1e-4)
    y = x.clone()
    y[:, 2:5] = m.mask_id
    res = mdmi.decode(m, y, mdmi.make_selector("dawn"))
    assert not (res.tokens == m.mask_id).any()


def test_padded_batch_equals_one_at_a_time(adapter):
    a, seqs = adapter
    x = a.encode(seqs)
    x[:, 2] = a.mask_id  # a masked position in each
    batch = a(x).logits
    for b, s in enumerate(seqs):
        single = a.encode([s])
        single[:, 2] = a.mask_id
        n = single.shape[1]
        assert torch.allclose(batch[b, :n], a(single).logits[0], atol=1e-5)


@pytest.mark.parametrize("name", ["sequential", "topk", "threshold", "factor", "entropy_bound",
                                  "mi_budget_oracle", "dependency_bound_oracle"])
def test_special_tokens_never_selected_or_changed(adapter, name):
    from mdmi.bench import SWEEPS, build

    a, seqs = adapter
    x = a.encode(seqs)
    fixed = a.fixed(x)
    x = torch.where(fixed, x, torch.full_like(x, a.mask_id))
    res = mdmi.decode(a, x, build(name, SWEEPS[name][0], a, None), trace=True)
    assert torch.equal(res.tokens[fixed], x[fixed])
    filled = res.tokens[~fixed]
    assert a.allowed[filled].all() and not (filled == a.mask_id).any()
    assert res.nfe.max() <= int((~fixed).sum(1).max())
    assert all(not fixed[r, i] for s in res.trace for r, f in zip(s["rows"], s["filled"]) for i in f)


def test_exact_mi_equals_brute_force_tiny_vocab(tmp_path):
    model, tok = tiny_esm(tmp_path)
    with torch.no_grad():
        model.lm_head.decoder.weight.mul_(30)  # sharper, more dependent conditionals
    a = HFMaskedLM(model, tok, allowed=["A", "G", "L"])  # a tiny vocabulary
    x = a.encode(["AGLAG", "GGA"])
    x[0, [1, 2, 4]] = a.mask_id
    x[1, [1, 3]] = a.mask_id
    res = exact_mi(a, x, delta=0.0)
    ids = a.allowed.nonzero().squeeze(1).tolist()
    for b in range(2):
        M = (x[b] == a.mask_id).nonzero().squeeze(1).tolist()
        base = masked_log_probs(a(x[b:b + 1]).logits, a.allowed)[0].double().exp()
        for j in M:
            conds = {}
            for v in ids:
                xv = x[b:b + 1].clone()
                xv[0, j] = v
                conds[v] = masked_log_probs(a(xv).logits, a.allowed)[0].double().exp()
            for i in M:
                if i == j:
                    continue
                mix = sum(base[j, v] * conds[v][i] for v in ids)
                ref = sum(base[j, v] * (conds[v][i][ids] * (conds[v][i][ids] / mix[ids]).log()).sum() for v in ids)
                assert abs(res.mi_directed[b, j, i].item() - ref.item()) < 1e-6
    assert res.passes.tolist() == [1 + 3 * 3, 1 + 2 * 3]
    assert (res.mi[~res.masked[:, :, None].expand_as(res.mi)] == 0).all()


def test_nll_scores_only_content_positions(tmp_path):
    from mdmi.likelihood import nll

    model, tok = tiny_esm(tmp_path)
    a = HFMaskedLM(model, tok, allowed="protein")
    x = a.encode(SEQS)
    r = nll(a, x, samples=8, generator=torch.Generator().manual_seed(0))
    assert r.tokens.tolist() == [len(s) for s in SEQS] and torch.isfinite(r.nll).all()


def test_fasta_errors(tmp_path):
    f = tmp_path / "x.fasta"
    f.write_text(">a\nMKT\n>b\n\n>c\nMK\n")
    with pytest.raises(ValueError, match="'b' is empty"):
        read_fasta(f)
    f.write_text(">a\nMKJ\n")
    with pytest.raises(ValueError, match="outside"):
        read_fasta(f)
    f.write_text("MKT\n")
    with pytest.raises(ValueError, match="before the first"):
        read_fasta(f)
    f.write_text(">a\nMKTAYIAKQR\n")
    with pytest.raises(ValueError, match="at most 5"):
        read_fasta(f, max_length=5)
    assert read_fasta(f) == [("a", "MKTAYIAKQR")]


def test_pipeline_end_to_end_on_tiny_esm(tmp_path):
    """label -> train-estimator (2 ranks) -> eval -> decode with the MI head -> generate -> nll -> mi --plot."""
    d = tiny_esm(tmp_path, save=True)
    m = f"hf:{d}"
    fasta = tmp_path / "train.fasta"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS * 4)))
    labels = tmp_path / "labels"
    main(["label", "--model", m, "--task", "protein", "--fasta", str(fasta), "--out", str(labels),
          "--contexts", "24", "--shard-size", "12", "--delta", "0.01"])
    assert json.loads((labels / "manifest.json").read_text())["contexts"] == 24
    torchrun = Path(sys.executable).with_name("torchrun")
    est = tmp_path / "est"
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", free_port(), "-m", "mdmi.cli",
                        "train-estimator", "--model", m, "--labels", str(labels), "--out", str(est),
                        "--epochs", "4", "--batch-size", "4", "--heldout-frac", "0.25"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # an estimator trains on the adapter's labels: held-out loss goes down (in process, more epochs)
    from mdmi.estimator import EstimatorConfig
    from mdmi.labels import load_labels
    from mdmi.train_estimator import EstimatorTrainConfig, train_estimator

    summary = train_estimator(mdmi.load(m), load_labels(labels), EstimatorConfig(d_hidden=32, width=16, rank=8),
                              EstimatorTrainConfig(epochs=25, batch_size=4, heldout_frac=0.25, patience=25, lr=1e-2),
                              tmp_path / "est_inproc", progress=False)
    h = [r["heldout_loss"] for r in summary.history]
    assert min(h) < 0.8 * h[0]
    main(["eval-estimator", "--model", m, "--estimator", str(est), "--labels", str(labels), "--task", "protein",
          "--json", str(tmp_path / "ev.json")])
    assert json.loads((tmp_path / "ev.json").read_text())["overall"]["pairs"] > 0
    out = tmp_path / "gen.fasta"
    for sel, param in [("mi_budget", "gamma=0.5"), ("dependency_bound", "tau=0.5"), ("entropy_bound", "gamma=1")]:
        main(["generate", "protein", "--model", m, "--length", "12", "--n", "3", "--out", str(out),
              "--selector", sel, "--param", param, "--estimator", str(est)])
        recs = read_fasta(out)
        assert len(recs) == 3 and all(len(s) == 12 for _, s in recs)
    main(["nll", "--model", m, "--input", str(out), "--samples", "4", "--json", str(tmp_path / "nll.json")])
    assert len(json.loads((tmp_path / "nll.json").read_text())["sequences"]) == 3
    main(["mi", "--model", m, "--fasta", str(fasta), "--estimator", str(est), "--plot", str(tmp_path / "mi.png")])
    assert (tmp_path / "mi.png").stat().st_size > 1000
