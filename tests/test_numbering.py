"""AHo numbering of bare VH/VL sequences (ANARCI): the spans of the shipped trastuzumab file,
a kappa and a lambda VL, bare FASTA records through the reader and the CLI, and the errors."""

import importlib.util
import json
from pathlib import Path

import pytest

from mdmi.tasks import antibody, numbering

DATA = Path(__file__).resolve().parents[1] / "data"
needs_anarci = pytest.mark.skipif(importlib.util.find_spec("anarci") is None, reason=numbering.INSTALL)
needs_sapiens = pytest.mark.skipif(importlib.util.find_spec("sapiens") is None or
                                   importlib.util.find_spec("transformers") is None,
                                   reason="pip install --no-deps sapiens==1.0.5")

# public sequences: trastuzumab VL (kappa, INN) and a human IGLV2-14/IGLJ lambda domain
TRASTUZUMAB_VL = "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"
LAMBDA = "QSALTQPASVSGSPGQSITISCTGTSSDVGGYNYVSWYQQHPGKAPKLMIYDVSNRPSGVSNRFSGSKSGNTASLTISGLQAEDEADYYCSSYTSSSTRVFGTGTKVTVL"
JUNK = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDW"  # not an antibody


def trastuzumab_vh() -> antibody.Antibody:
    return antibody.read_antibody_fasta(DATA / "trastuzumab_vh.fasta")[0]


def assert_aho_anchors(seq, spans):
    """What AbNatiV's AHo ranges mean on a sequence: CDR3 starts two residues after the
    conserved Cys and ends before the W/F of WGxG/FGxG; CDRs are ordered and disjoint."""
    a, b = spans["cdr3"]
    assert seq[a - 2] == "C" and seq[b] in "WF" and seq[b + 1] == "G" and seq[b + 3] == "G"
    assert spans["cdr1"][1] <= spans["cdr2"][0] and spans["cdr2"][1] <= a


@needs_anarci
def test_trastuzumab_vh_reproduces_the_shipped_spans():
    rec = trastuzumab_vh()
    assert rec.spans == {"cdr1": (25, 35), "cdr2": (49, 59), "cdr3": (97, 109)}  # from its header
    n = numbering.number_antibody(rec.sequence, rec.name)
    assert n.spans == rec.spans and n.chain == "vh" and n.domain == (0, len(rec.sequence))
    assert_aho_anchors(rec.sequence, n.spans)


@needs_anarci
def test_vl_kappa_and_lambda():
    n = numbering.number_antibody(TRASTUZUMAB_VL, "trastuzumab_VL")
    assert n.chain == "vl" and n.domain == (0, len(TRASTUZUMAB_VL))
    assert n.spans == {"cdr1": (26, 34), "cdr2": (48, 53), "cdr3": (89, 97)}
    assert TRASTUZUMAB_VL[89:97] == "QHYTTPPT"
    assert_aho_anchors(TRASTUZUMAB_VL, n.spans)
    lam = numbering.number_antibody(LAMBDA, "lambda")
    assert lam.chain == "vl"
    assert_aho_anchors(LAMBDA, lam.spans)


@needs_anarci
def test_residues_outside_the_domain_keep_their_indices():
    seq = "MGSS" + trastuzumab_vh().sequence + "ASTKGPS"  # a tag before, the start of CH1 after
    n = numbering.number_antibody(seq)
    assert n.spans == {k: (a + 4, b + 4) for k, (a, b) in trastuzumab_vh().spans.items()}
    assert n.domain == (4, 4 + len(trastuzumab_vh().sequence))


@needs_anarci
def test_bare_fasta_through_the_reader(tmp_path):
    vh = trastuzumab_vh()
    f = tmp_path / "bare.fasta"
    f.write_text(f">trastuzumab_VH\n{vh.sequence}\n>kappa a note\n{TRASTUZUMAB_VL}\n"
                 f">explicit cdr3=90-100\n{vh.sequence}\n>junk\n{JUNK}\n")
    got = antibody.read_antibody_fasta(f)
    assert (got[0].name, got[0].spans, got[0].chain) == (vh.name, vh.spans, "vh")
    assert got[1].chain == "vl" and got[1].spans["cdr3"] == (89, 97)
    assert got[2].spans == {"cdr3": (90, 100)} and got[2].chain == ""  # explicit spans win, nothing added
    assert got[3].spans == {} and "junk" in got[3].unnumbered
    assert antibody.residue_mask(got[0], "cdr3").nonzero().squeeze(1).tolist() == list(range(97, 109))
    assert antibody.residue_mask(got[3], "random:0.3").any()  # a random mask needs no CDR
    with pytest.raises(ValueError, match=r"no cdr3 span.*'>junk cdr3=95-107'.*0-based.*token i\+1"):
        antibody.residue_mask(got[3], "cdr3")
    antibody.write_antibody_fasta(tmp_path / "w.fasta", got[:1])  # numbered spans are written out
    assert (tmp_path / "w.fasta").read_text().startswith(">trastuzumab_VH cdr1=25-35 cdr2=49-59 cdr3=97-109\n")


@needs_anarci
def test_what_cannot_be_numbered():
    with pytest.raises(ValueError, match="record 'junk'.*no antibody variable domain"):
        numbering.number_antibody(JUNK, "junk")
    with pytest.raises(ValueError, match="record 'x'.*'J'"):
        numbering.number_antibody("EVQLVJSGG", "x")
    with pytest.raises(ValueError, match="record 'e'.*empty"):
        numbering.number_antibody("", "e")
    with pytest.raises(ValueError, match="record 'scfv'.*2 variable domains"):
        numbering.number_antibody(trastuzumab_vh().sequence + "GGGGS" * 3 + TRASTUZUMAB_VL, "scfv")
    with pytest.raises(ValueError, match="record 'short'.*cdr3"):
        numbering.number_antibody(trastuzumab_vh().sequence[:96], "short")  # stops at the Cys


def test_missing_library_names_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "anarci" else real(name, *a))
    with pytest.raises(ImportError, match=r"mdmi\[numbering\]"):
        numbering.number_antibody(TRASTUZUMAB_VL)
    f = tmp_path / "bare.fasta"
    f.write_text(f">t\n{TRASTUZUMAB_VL}\n")
    rec = antibody.read_antibody_fasta(f)[0]  # still readable: only a CDR mask needs the spans
    with pytest.raises(ValueError, match=r"mdmi\[numbering\].*'>t cdr3=95-107'"):
        antibody.residue_mask(rec, "cdrs")


@needs_anarci
@needs_sapiens
def test_cli_mi_on_a_bare_fasta_equals_the_spanned_file(tmp_path):
    from mdmi.cli import main

    bare = tmp_path / "bare.fasta"
    bare.write_text(f">trastuzumab_VH\n{trastuzumab_vh().sequence}\n")
    outs = []
    for i, f in enumerate([bare, DATA / "trastuzumab_vh.fasta"]):
        out = tmp_path / f"m{i}.json"
        main(["mi", "--model", "sapiens:vh", "--fasta", str(f), "--mask", "cdr3", "--out", str(out)])
        outs.append(json.loads(out.read_text()))
    assert outs[0]["masked"] == list(range(97, 109))
    assert outs[0] == outs[1]
