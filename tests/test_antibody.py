"""Pretrained antibody LMs (real Sapiens and AntiBERTy weights from their pip packages),
antibody data on fixtures written here (never AbNatiV rows), and ESM-C on a tiny random
config. The Sapiens conversion is proven against a forward pass written from the raw
fairseq tensors."""

import importlib.util
import json
import math
import zipfile

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

import mdmi  # noqa: E402
from mdmi.cli import main  # noqa: E402
from mdmi.decode import decode  # noqa: E402
from mdmi.interface import masked_log_probs  # noqa: E402
from mdmi.mi import exact_mi  # noqa: E402
from mdmi.selectors import make_selector  # noqa: E402
from mdmi.tasks import antibody  # noqa: E402

# public therapeutic antibody VH sequences (INN), spans counted by hand: CDR1 after C-A-A-S,
# CDR2 after E-W-V-A/S, CDR3 from the second residue after the conserved Cys to before W-G-Q-G
TRASTUZUMAB = "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS"
ADALIMUMAB = "EVQLVESGGGLVQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNSLRAEDTAVYYCAKVSYLSTASSLDYWGQGTLVTVSS"
TRASTUZUMAB_SPANS = {"cdr1": (25, 35), "cdr2": (49, 59), "cdr3": (97, 109)}

needs_sapiens = pytest.mark.skipif(importlib.util.find_spec("sapiens") is None,
                                   reason="pip install --no-deps sapiens==1.0.5")
needs_antiberty = pytest.mark.skipif(importlib.util.find_spec("antiberty") is None,
                                     reason="pip install antiberty==0.1.3")


# ------------------------------------------------------------------ data on fixtures


def aligned_copy(seq, spans):
    """A 149-column AHo-style alignment of ``seq`` whose CDR columns hold exactly ``spans``:
    framework residues fill their columns left to right, CDR residues split around gaps."""
    cols, s = [], 0
    bounds = [("fw", 1, 26), ("cdr1", 27, 42), ("fw", 43, 56), ("cdr2", 57, 69), ("fw", 70, 107),
              ("cdr3", 108, 138), ("fw", 139, 149)]
    ends = {"cdr1": spans["cdr1"][0], "cdr2": spans["cdr2"][0], "cdr3": spans["cdr3"][0]}
    for k, (kind, lo, hi) in enumerate(bounds):
        width = hi - lo + 1
        if kind == "fw":
            nxt = ends.get(bounds[k + 1][0], len(seq)) if k + 1 < len(bounds) else len(seq)
            part = seq[s:nxt]
            assert len(part) <= width
            cols.append(part + "-" * (width - len(part)) if k == len(bounds) - 1 else "-" * (width - len(part)) + part)
            s = nxt
        else:
            part = seq[spans[kind][0]: spans[kind][1]]
            half = (len(part) + 1) // 2
            cols.append(part[:half] + "-" * (width - len(part)) + part[half:])
            s = spans[kind][1]
    out = "".join(cols)
    assert len(out) == 149 and out.replace("-", "") == seq
    return out


def test_cdr_spans_by_hand():
    aligned = aligned_copy(TRASTUZUMAB, TRASTUZUMAB_SPANS)
    spans = antibody.cdr_spans(aligned)
    assert spans == TRASTUZUMAB_SPANS
    assert TRASTUZUMAB[slice(*spans["cdr3"])] == "RWGGDGFYAMDY"
    assert TRASTUZUMAB[slice(*spans["cdr1"])] == "GFNIKDTYIH"
    with pytest.raises(ValueError, match="149"):
        antibody.cdr_spans(aligned[:-1])
    with pytest.raises(ValueError, match="cdr2"):
        antibody.cdr_spans(aligned[:56] + "-" * 13 + aligned[69:])


def fake_wheel(tmp_path, n=30):
    """A wheel-shaped zip holding AbNatiV-style CSVs of ``n`` made-up VH and VL rows."""
    cache = tmp_path / "cache"
    cache.mkdir()
    g = torch.Generator().manual_seed(0)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    with zipfile.ZipFile(cache / "abnativ-2.0.9-py3-none-any.whl", "w") as z:
        for chain in ("vh", "vl"):
            lines = ["seq_id,input_seq,aligned_seq,score"]
            for i in range(n):
                cdr3 = "".join(aa[int(t)] for t in torch.randint(20, (5 + i % 7,), generator=g))
                seq = TRASTUZUMAB[:97] + cdr3 + TRASTUZUMAB[109:]
                spans = dict(TRASTUZUMAB_SPANS, cdr3=(97, 97 + len(cdr3)))
                lines.append(f"{chain}{i},{seq},{aligned_copy(seq, spans)},0.5")
            z.writestr(f"abnativ/model/percentiles/test_{chain}_v2_abnativ_seq_scores.csv", "\n".join(lines) + "\n")
    return cache


def test_load_antibodies_splits_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MDMI_CACHE", str(tmp_path / "empty"))
    if importlib.util.find_spec("abnativ") is None:
        with pytest.raises(FileNotFoundError, match="make antibody-data"):
            antibody.load_antibodies("vh")
    monkeypatch.setenv("MDMI_CACHE", str(fake_wheel(tmp_path)))
    parts = {s: antibody.load_antibodies("vh", s, seed=3) for s in ("train", "valid", "test")}
    assert [len(p) for p in parts.values()] == [24, 3, 3]
    names = [r.name for p in parts.values() for r in p]
    assert len(set(names)) == 30  # disjoint and complete
    assert [r.name for r in antibody.load_antibodies("vh", "test", seed=3)] == [r.name for r in parts["test"]]
    assert [r.name for r in antibody.load_antibodies("vh", "test", seed=4)] != [r.name for r in parts["test"]]
    r = parts["train"][0]
    assert r.sequence[r.spans["cdr3"][1]:].startswith("WGQG") and r.chain == "vh"
    with pytest.raises(ValueError, match="chain"):
        antibody.load_antibodies("vhh")
    with pytest.raises(ValueError, match="split"):
        antibody.load_antibodies("vh", "dev")


def test_fasta_spans_round_trip_and_partial_headers(tmp_path):
    recs = [antibody.Antibody("a", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS), antibody.Antibody("b", ADALIMUMAB)]
    f = tmp_path / "ab.fasta"
    antibody.write_antibody_fasta(f, recs)
    back = antibody.read_antibody_fasta(f)
    assert [(r.name, r.sequence) for r in back] == [(r.name, r.sequence) for r in recs]
    assert back[0].spans == TRASTUZUMAB_SPANS
    # a record written without spans is numbered on reading (AHo CDRs, as in the shipped data)
    assert back[1].spans == {"cdr1": (25, 35), "cdr2": (49, 59), "cdr3": (97, 110)}
    f.write_text(">x cdr3=97-109 some note\n" + TRASTUZUMAB + "\n")  # by hand, only CDR3
    assert antibody.read_antibody_fasta(f)[0].spans == {"cdr3": (97, 109)}
    for bad, msg in [("cdr3=9", "malformed"), ("cdr3=10-5", "reversed"), ("cdr3=100-500", "runs past")]:
        f.write_text(f">x {bad}\n{TRASTUZUMAB}\n")
        with pytest.raises(ValueError, match=msg):
            antibody.read_antibody_fasta(f)


def test_residue_masks():
    rec = antibody.Antibody("t", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS)
    m = antibody.residue_mask(rec, "cdr3")
    assert m.sum() == 12 and m[97:109].all()
    assert antibody.residue_mask(rec, "cdrs").sum() == 10 + 10 + 12
    r = antibody.residue_mask(rec, "random:0.3", torch.Generator().manual_seed(0))
    assert torch.equal(r, antibody.residue_mask(rec, "random:0.3", torch.Generator().manual_seed(0)))
    assert 0 < r.sum() < len(TRASTUZUMAB)
    with pytest.raises(ValueError, match="no cdr3"):
        antibody.residue_mask(antibody.Antibody("n", TRASTUZUMAB), "cdr3")
    for bad in ("cdr4", "random:0", "random:x", "random:1.5"):
        with pytest.raises(ValueError, match="mask"):
            antibody.parse_mask(bad)
    regions = antibody.region_labels(rec)
    assert regions[0] == "fw" and regions[97] == "cdr3" and regions[30] == "cdr1"
    assert antibody.pair_category("cdr3", "cdr3") == "within cdr3"
    assert antibody.pair_category("cdr1", "cdr3") == "cdr-cdr" and antibody.pair_category("fw", "cdr2") == "cdr-fw"


def test_mi_structure_sums_by_hand():
    mi = torch.zeros(5, 5)
    mi[0, 1] = mi[1, 0] = 0.5  # fw-fw, distance 1
    mi[1, 3] = mi[3, 1] = 0.25  # fw-cdr3, distance 2
    mi[3, 4] = mi[4, 3] = 0.25  # within cdr3, distance 1
    st = antibody.mi_structure(mi, ["fw", "fw", "fw", "cdr3", "cdr3"])
    assert st["masked"] == 4 and math.isclose(st["total"], 1.0)
    assert st["by_region"] == {"fw-fw": 0.5, "cdr-fw": 0.25, "within cdr3": 0.25}
    assert st["by_distance"]["1-1"] == {"sum": 0.75, "pairs": 2}


# ------------------------------------------------------------------ Sapiens (real weights)


def fairseq_forward(tensors, args, tokens, pad=1):
    """RoBERTa as fairseq computes it, from the raw checkpoint tensors: learned positions
    numbered from pad+1 over non-pad tokens, embedding LayerNorm, post-norm layers, GELU,
    LM head dense-GELU-LayerNorm-linear. (B, L) -> (B, L, V) logits."""
    p = "decoder.sentence_encoder."
    t = tensors
    nonpad = tokens.ne(pad)
    positions = torch.cumsum(nonpad, 1) * nonpad + pad
    x = t[p + "embed_tokens.weight"][tokens] + t[p + "embed_positions.weight"][positions]
    x = F.layer_norm(x, (x.shape[-1],), t[p + "emb_layer_norm.weight"], t[p + "emb_layer_norm.bias"], 1e-5)
    x = x * nonpad[..., None]
    H = args.encoder_attention_heads
    B, L, D = x.shape
    for n in range(args.encoder_layers):
        q_ = f"{p}layers.{n}."

        def lin(name, h):
            return h @ t[q_ + name + ".weight"].T + t[q_ + name + ".bias"]

        q = lin("self_attn.q_proj", x).view(B, L, H, D // H).transpose(1, 2) * (D // H) ** -0.5
        k = lin("self_attn.k_proj", x).view(B, L, H, D // H).transpose(1, 2)
        v = lin("self_attn.v_proj", x).view(B, L, H, D // H).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)).masked_fill(~nonpad[:, None, None, :], float("-inf")).softmax(-1)
        a = lin("self_attn.out_proj", (att @ v).transpose(1, 2).reshape(B, L, D))
        x = F.layer_norm(x + a, (D,), t[q_ + "self_attn_layer_norm.weight"], t[q_ + "self_attn_layer_norm.bias"], 1e-5)
        h = lin("fc2", F.gelu(lin("fc1", x)))
        x = F.layer_norm(x + h, (D,), t[q_ + "final_layer_norm.weight"], t[q_ + "final_layer_norm.bias"], 1e-5)
    h = F.gelu(x @ t["decoder.lm_head.dense.weight"].T + t["decoder.lm_head.dense.bias"])
    h = F.layer_norm(h, (D,), t["decoder.lm_head.layer_norm.weight"], t["decoder.lm_head.layer_norm.bias"], 1e-5)
    return h @ t["decoder.lm_head.weight"].T + t["decoder.lm_head.bias"]


@pytest.fixture(scope="module")
def sapiens_vh():
    if importlib.util.find_spec("sapiens") is None:
        pytest.skip("pip install --no-deps sapiens==1.0.5")
    return mdmi.load("sapiens:vh")


@needs_sapiens
@pytest.mark.parametrize("chain", ["vh", "vl"])
def test_sapiens_matches_a_forward_written_from_the_raw_tensors(chain):
    from mdmi.models.antibody import read_sapiens

    # both in float64, so that float32 rounding (about 1e-5 on logits of size 6) cannot hide a
    # conversion error; the adapter returns float32
    model = mdmi.load(f"sapiens:{chain}", dtype=torch.float64)
    tensors, args, tokens = read_sapiens(chain)
    tensors = {k: v.double() for k, v in tensors.items()}
    assert model.vocab_size == 25 and tokens[model.mask_id] == "<mask>" and int(model.allowed.sum()) == 20
    x = model.encode([TRASTUZUMAB, ADALIMUMAB[:90]])  # two lengths: the shorter is padded
    g = torch.Generator().manual_seed(0)
    hide = (torch.rand(x.shape, generator=g) < 0.2) & ~model.fixed(x)
    x = torch.where(hide, torch.full_like(x, model.mask_id), x)
    ours = model(x).logits
    ref = fairseq_forward(tensors, args, x).float()
    real = x != 1
    assert torch.allclose(ours[real], ref[real], atol=1e-5, rtol=0)


@needs_sapiens
def test_sapiens_recovers_masked_residues(sapiens_vh):
    m = sapiens_vh
    x = m.encode([TRASTUZUMAB, ADALIMUMAB])
    hide = (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.15) & ~m.fixed(x)
    pred = masked_log_probs(m(torch.where(hide, torch.full_like(x, m.mask_id), x)).logits, m.allowed).argmax(-1)
    acc = (pred[hide] == x[hide]).float().mean()
    assert acc > 0.6  # a mis-converted model recovers about 5-20%


@needs_sapiens
def test_sapiens_exact_mi_and_decoding(sapiens_vh):
    m = sapiens_vh
    rec = antibody.Antibody("t", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS)
    x, residues = antibody.masked_batch(m, [rec, rec], "cdr3")
    res = exact_mi(m, x[:1])
    hid = res.masked[0]
    assert int(hid.sum()) == 12 and not hid[~residues[0]].any()  # specials never masked
    assert torch.allclose(res.mi, res.mi.transpose(1, 2)) and (res.mi >= 0).all()
    assert res.mi[0][~hid].abs().sum() == 0
    assert 1 < int(res.passes[0]) <= 1 + 12 * 20  # one base pass + at most 20 probes per masked residue
    assert res.mi[0][hid][:, hid].sum() > 0.1  # CDR3 residues do depend on each other
    seq = decode(m, x, make_selector("sequential"))
    par = decode(m, x, make_selector("topk", k=4))
    for r in (seq, par):
        assert (r.tokens[x != m.mask_id] == x[x != m.mask_id]).all()  # framework and specials untouched
        assert m.allowed[r.tokens[x == m.mask_id]].all()  # amino acids only
    assert seq.nfe.tolist() == [12, 12] and par.nfe.tolist() == [3, 3]
    assert torch.equal(seq.tokens[0], seq.tokens[1])  # greedy is deterministic


def test_missing_packages_name_the_pip_line(monkeypatch):
    from mdmi.models import antibody as ab

    monkeypatch.setattr(ab.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps sapiens==1\.0\.5"):  # at load, before any work
        mdmi.load("sapiens:vh")
    with pytest.raises(ImportError, match=r"pip install antiberty==0\.1\.3"):
        mdmi.load("antiberty")
    with pytest.raises(ValueError, match="chain"):
        ab.load_sapiens("vhh")


@needs_sapiens
def test_cli_mi_on_a_real_antibody(tmp_path):
    f = tmp_path / "t.fasta"
    f.write_text(">trastuzumab cdr3=97-109\n" + TRASTUZUMAB + "\n")
    out, png = tmp_path / "m.json", tmp_path / "m.png"
    main(["mi", "--model", "sapiens:vh", "--fasta", str(f), "--mask", "cdr3", "--out", str(out), "--plot", str(png)])
    got = json.loads(out.read_text())
    assert got["masked"] == list(range(97, 109)) and len(got["mi_nats"]) == len(TRASTUZUMAB)
    assert png.stat().st_size > 1000
    with pytest.raises(SystemExit, match="no cdr1"):
        main(["mi", "--model", "sapiens:vh", "--fasta", str(f), "--mask", "cdr1"])
    with pytest.raises(SystemExit, match="record 3"):
        main(["mi", "--model", "sapiens:vh", "--fasta", str(f), "--record", "3"])


def test_cli_data_antibodies(tmp_path, monkeypatch):
    monkeypatch.setenv("MDMI_CACHE", str(fake_wheel(tmp_path)))
    out = tmp_path / "t.fasta"
    main(["data", "antibodies", "--chain", "vl", "--n", "2", "--split", "valid", "--out", str(out)])
    recs = antibody.read_antibody_fasta(out)
    assert len(recs) == 2 and set(recs[0].spans) == {"cdr1", "cdr2", "cdr3"}
    with pytest.raises(SystemExit, match="--n"):
        main(["data", "antibodies", "--n", "0", "--out", str(out)])


# ------------------------------------------------------------------ AntiBERTy (real weights)


@needs_antiberty
def test_antiberty_equals_bert_for_masked_lm_loaded_directly(tmp_path):
    from transformers import BertForMaskedLM

    from mdmi.models.antibody import package_file

    weights = package_file("antiberty", "trained_models/AntiBERTy_md_smooth/pytorch_model.bin")
    cfg = json.loads(weights.with_name("config.json").read_text())
    cfg["architectures"] = ["BertForMaskedLM"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "pytorch_model.bin").symlink_to(weights)
    direct = BertForMaskedLM.from_pretrained(str(tmp_path)).eval()
    m = mdmi.load("antiberty")
    x = m.encode([TRASTUZUMAB, ADALIMUMAB[:100]])
    hide = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.15) & ~m.fixed(x)
    x = torch.where(hide, torch.full_like(x, m.mask_id), x)
    with torch.no_grad():
        ref = direct(input_ids=x, attention_mask=(x != m.pad_id).long()).logits
    real = x != m.pad_id
    assert torch.allclose(m(x).logits[real], ref[real], atol=1e-5, rtol=0)
    pred = masked_log_probs(m(x).logits, m.allowed).argmax(-1)
    assert (pred[hide] == m.encode([TRASTUZUMAB, ADALIMUMAB[:100]])[hide]).float().mean() > 0.6


# ------------------------------------------------------------------ ESM-C (tiny random config)


def test_esmc_adapter_on_a_tiny_random_config():
    from transformers import EsmcConfig, EsmcForMaskedLM, EsmcTokenizer

    from mdmi.models.hf import HFMaskedLM

    torch.manual_seed(0)
    tok = EsmcTokenizer()
    cfg = EsmcConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=64)
    m = HFMaskedLM(EsmcForMaskedLM(cfg).eval(), tok, allowed="protein")
    x = m.encode(["MKTAYIAKQR", "GAVLIP"])
    assert m.decode_tokens(x) == ["MKTAYIAKQR", "GAVLIP"]
    assert m.fixed(x)[:, 0].all() and m.fixed(x)[1, -1]  # <cls> and padding stay out of play
    xm = x.clone()
    xm[:, 2:5] = m.mask_id
    out = m(xm)
    assert out.logits.shape == (2, x.shape[1], 64) and out.hidden.shape == (2, x.shape[1], 32)
    res = exact_mi(m, xm)
    assert torch.allclose(res.mi, res.mi.transpose(1, 2)) and int(res.masked.sum()) == 6
    r = decode(m, xm, make_selector("topk", k=2))
    assert r.nfe.tolist() == [2, 2] and m.allowed[r.tokens[xm == m.mask_id]].all()


@needs_sapiens
def test_bench_antibody_greedy_and_sampled(tmp_path, capsys):
    f = tmp_path / "ab.fasta"
    antibody.write_antibody_fasta(f, [antibody.Antibody("t", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS),
                                      antibody.Antibody("a", ADALIMUMAB, spans={"cdr3": (98, 108)})])
    out = tmp_path / "b.json"
    main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--task", "cdr3",
          "--selectors", "topk:k=3,sequential,dilated,remask", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [r["selector"] for r in rows][0] == "sequential"  # the reference runs first
    seq = rows[0]
    assert seq["mean_nfe"] == (12 + 10) / 2 and seq["nfe_reduction_vs_sequential"] == 1.0
    topk = next(r for r in rows if r["selector"] == "topk")
    assert topk["mean_nfe"] == (4 + 4) / 2
    for r in rows:
        assert 0 <= r["recovery"] <= 1 and r["pll"] <= 0 and "provenance" in r
        # per sequence (12 and 10 filled residues): weighted back, they give the pooled means
        for k in ("recovery", "pll"):
            a, b = r["per_seq"][k]
            assert math.isclose((12 * a + 10 * b) / 22, r[k], abs_tol=1e-5)
    # sampling: JSD against sequential's samples, with the floor of two sequential runs
    main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--task", "cdr3", "--temperature", "1",
          "--samples", "3", "--selectors", "sequential,topk:k=4", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert rows[0]["jsd_floor"] >= 0 and all(r["jsd"] >= 0 for r in rows) and rows[0]["samples"] == 3
    for r in rows:
        a, b = r["per_seq"]["jsd"]
        assert math.isclose((12 * a + 10 * b) / 22, r["jsd"], abs_tol=1e-5)
    # --reference caches sequential: a second run reuses it (same rows); another run's cache is an error
    ref, out2 = tmp_path / "seq.pt", tmp_path / "b2.json"
    args = ["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--task", "cdr3", "--temperature", "1",
            "--samples", "3", "--pll-samples", "2", "--reference", str(ref)]
    main(args + ["--selectors", "sequential", "--json", str(out)])
    assert ref.exists()
    main(args + ["--selectors", "topk:k=4", "--json", str(out2)])
    first, second = json.loads(out.read_text()), json.loads(out2.read_text())
    assert [r["selector"] for r in second] == ["sequential", "topk"]
    assert {k: v for k, v in second[0].items() if k != "provenance"} == \
        {k: v for k, v in first[0].items() if k != "provenance"}  # not decoded again
    assert second[1]["jsd"] == rows[1]["jsd"] and second[1]["recovery"] == rows[1]["recovery"]
    with pytest.raises(SystemExit, match="another run"):
        main(args + ["--samples", "2", "--selectors", "topk:k=4"])
    assert not (tmp_path / "b_partial.json").exists()  # a finished run leaves only its JSON


@needs_sapiens
def test_bench_antibody_killed_run_keeps_finished_rows(tmp_path, monkeypatch):
    import mdmi.bench.antibody as ba

    f = tmp_path / "ab.fasta"
    antibody.write_antibody_fasta(f, [antibody.Antibody("t", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS)])
    real, calls = ba.score, []

    def dies_on_the_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the job were killed during the second setting
        return real(*a, **k)

    monkeypatch.setattr(ba, "score", dies_on_the_second)
    out = tmp_path / "b.json"
    with pytest.raises(KeyboardInterrupt):
        main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--task", "cdr3",
              "--selectors", "sequential,topk:k=3", "--json", str(out)])
    rows = json.loads((tmp_path / "b_partial.json").read_text())
    assert not out.exists() and [r["selector"] for r in rows] == ["sequential"] and rows[0]["mean_nfe"] == 12
    with pytest.raises(SystemExit, match="samples"):
        main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--temperature", "1"])


def test_jsd_by_hand():
    from mdmi.bench.antibody import jsd

    a, b = torch.tensor([2.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64)
    assert math.isclose(float(jsd(a, b)), math.log(2), rel_tol=1e-9)  # disjoint: log 2
    assert float(jsd(a, a)) == 0.0


# ------------------------------------------------------------------ labels, heads and bench on a real model


def test_region_masks_by_hand():
    from mdmi.labels import region_masks

    # -1 start/end, 0 framework, 3 CDR3; the second row has no CDR (only framework)
    regions = torch.tensor([[-1, 0, 1, 1, 0, 3, 3, 3, 0, -1],
                            [-1, 0, 0, 0, 0, 0, 0, 0, 0, -1]], dtype=torch.int8)
    cdr3 = region_masks(regions, torch.tensor([0, 0]), min_masked=2)
    assert cdr3[0].nonzero().squeeze(1).tolist() == [5, 6, 7]
    assert cdr3[1].nonzero().squeeze(1).tolist() == list(range(1, 9))  # no CDR3: every residue instead
    cdrs = region_masks(regions, torch.tensor([1, 2]), min_masked=2)
    assert cdrs[0].nonzero().squeeze(1).tolist() == [2, 3, 5, 6, 7]
    assert cdrs[1].nonzero().squeeze(1).tolist() == list(range(1, 9))  # kind 2: every residue, never start/end


@needs_sapiens
def test_antibody_label_contexts_mask_whole_cdrs(sapiens_vh, tmp_path):
    from mdmi.labels import LabelConfig, shard_contexts
    from mdmi.tasks import clean_sampler

    f = tmp_path / "ab.fasta"
    antibody.write_antibody_fasta(f, [antibody.Antibody("t", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS)])
    m = sapiens_vh
    sample = clean_sampler("antibody", model=m, fasta=str(f))
    cfg = LabelConfig(contexts=30, shard_size=30, decode_frac=0.1)
    clean, x, src = shard_contexts(m, sample, cfg, 0)
    assert (clean == m.encode([TRASTUZUMAB])[0]).all()
    hidden = x == m.mask_id
    cdr3 = torch.zeros(clean.shape[1], dtype=torch.bool)
    cdr3[1 + 97: 1 + 109] = True  # token 0 is the start token
    cdrs = cdr3.clone()
    cdrs[1 + 25: 1 + 35] = cdrs[1 + 49: 1 + 59] = True
    assert src[:3].tolist() == [0, 0, 0] and set(src[3:].tolist()) == {1, 2, 3}
    for row, s in zip(hidden, src.tolist()):
        if s == 2:
            assert (row == cdr3).all()
        if s == 3:
            assert (row == cdrs).all()
        assert row.sum() >= 2 and not row[0] and not row[-1]  # start/end never masked
    assert ((x == clean) | hidden)[src > 0].all()  # decoding states hold what the model filled
    again = shard_contexts(m, sample, cfg, 0)  # all from the shard's own seed
    assert all(torch.equal(a, b) for a, b in zip((clean, x, src), again))
    # --kinds cdr3: every masked context hides CDR3, every decoding state starts from it
    only = LabelConfig(contexts=30, shard_size=30, decode_frac=0.1, kinds="cdr3")
    _, x3, src3 = shard_contexts(m, sample, only, 0)
    assert set(src3[3:].tolist()) == {2} and ((x3 == m.mask_id) & ~cdr3).sum() == 0
    with pytest.raises(ValueError, match="kinds must be"):
        LabelConfig(kinds="cdr3,cdr9")


@needs_sapiens
def test_label_train_bench_path_on_real_sapiens(tmp_path):
    f = tmp_path / "ab.fasta"
    antibody.write_antibody_fasta(f, [antibody.Antibody("t", TRASTUZUMAB, spans=TRASTUZUMAB_SPANS),
                                      antibody.Antibody("a", ADALIMUMAB, spans={"cdr3": (98, 108)})])
    labels, head, out = tmp_path / "labels", tmp_path / "head", tmp_path / "bench.json"
    main(["label", "--model", "sapiens:vh", "--task", "antibody", "--fasta", str(f), "--contexts", "6",
          "--shard-size", "3", "--decode-frac", "0.34", "--out", str(labels)])
    spec = json.loads((labels / "spec.json").read_text())
    assert spec["model"].startswith("sapiens:vh") and spec["task"] == "antibody"
    main(["train-estimator", "--model", "sapiens:vh", "--labels", str(labels), "--out", str(head), "--epochs", "2",
          "--heldout-frac", "0.34", "--batch-size", "2"])
    meta = json.loads((head / "config.json").read_text())
    assert meta["model"] == spec["model"] and meta["labels_partial"] is False
    main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--task", "cdr3", "--estimator", str(head),
          "--selectors", "sequential,mi_budget:gamma=3,mi_budget:gamma=0.3+eta=0", "--json", str(out)])
    rows = json.loads(out.read_text())
    mi = [r for r in rows if r["selector"] == "mi_budget"]
    assert len(mi) == 2 and all(r["mean_nfe"] <= rows[0]["mean_nfe"] and r["pll"] <= 0 for r in mi)
    main(["bench", "antibody", "--model", "sapiens:vh", "--fasta", str(f), "--task", "cdr3", "--estimator", str(head),
          "--selectors", "sequential,factor:f=2/4,mi_budget:gamma=3,mi_budget:gamma=0.3+eta=0", "--json", str(out)])
    cmp = json.loads(out.with_name("bench_equal_nfe.json").read_text())
    assert set(cmp) == {"mi_budget vs factor", "mi_budget(eta=0) vs factor"}  # eta 0 is its own curve
    for key, entries in cmp.items():
        ours = key.split(" vs ")[0]
        assert all(f"{ours}_pll" in e or f"{ours}_pll_interp" in e for e in entries)
    with pytest.raises(SystemExit, match="belong"):  # a VH head is refused on the VL model
        main(["bench", "antibody", "--model", "sapiens:vl", "--fasta", str(f), "--estimator", str(head),
              "--selectors", "mi_budget"])
