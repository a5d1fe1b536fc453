"""MaskedTransformer's key padding mask and approximate prefix KV cache, on tiny random models."""

import pytest
import torch

from tiny import tiny_model


def close(got, want):
    """Equal up to float32 rounding. forward_cached runs a full pass's ops, grouped
    differently (matrix products over S rows instead of L, attention over a concatenated
    key list), so the two differ by a few ulps of the largest value: allowed 1e-5 of it
    (~80 ulps); measured on these models up to 5e-7 of it. Weights scaled by 12 (attention
    near argmax) amplify rounding to ~1e-5, hence the milder scale here and float64 below;
    a wrong cache is off by whole nats."""
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * want.abs().max().item())


def left_padded(m, L, pads, seed=0):
    """(B, L) random tokens (some masked), row b left-padded by pads[b]; and its (B, L) mask."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, m.mask_id + 1, (len(pads), L), generator=g)
    am = (torch.arange(L)[None] >= torch.tensor(pads)[:, None]).long()
    return x, am


@torch.no_grad()
def test_all_ones_mask_is_no_mask():
    m = tiny_model(V=4, L=7)
    x, _ = left_padded(m, 7, [0, 0, 0])
    a, b = m(x), m(x, attention_mask=torch.ones_like(x))
    assert torch.equal(a.logits, b.logits) and torch.equal(a.hidden, b.hidden)


@torch.no_grad()
def test_pad_ids_do_not_reach_real_positions():
    m = tiny_model(V=4, L=7)
    x, am = left_padded(m, 7, [0, 2, 5, 7])  # the last row is all padding
    real = am.bool()
    y = torch.where(real, x, (x + 1) % (m.mask_id + 1))  # every pad id changed
    a, b = m(x, attention_mask=am), m(y, attention_mask=am)
    torch.testing.assert_close(a.logits[real], b.logits[real], rtol=0, atol=1e-6)
    torch.testing.assert_close(a.hidden[real], b.hidden[real], rtol=0, atol=1e-6)
    assert a.logits.isfinite().all() and b.hidden.isfinite().all()  # padded positions too
    # the check has teeth: without the mask the pads do reach the real positions
    assert (m(x).logits[real] - m(y).logits[real]).abs().max() > 1e-2


@pytest.mark.parametrize("P", [0, 1, 4, 8])
@pytest.mark.parametrize("padded", [False, True])
@torch.no_grad()
def test_cache_exact_on_unchanged_sequence(P, padded):
    m = tiny_model(V=4, L=9, scale=3.0)
    x, am = left_padded(m, 9, [0, 3, 6] if padded else [0, 0, 0])
    am = am if padded else None
    full = m(x, attention_mask=am)
    cache, out = m.prefix_cache(x, P, attention_mask=am)
    assert torch.equal(out.logits, full.logits) and torch.equal(out.hidden, full.hidden)
    got = m.forward_cached(x[:, P:], cache, attention_mask=None if am is None else am[:, P:])
    keep = slice(None) if am is None else am[:, P:].bool()  # padded outputs are meaningless
    close(got.logits[keep], full.logits[:, P:][keep])
    close(got.hidden[keep], full.hidden[:, P:][keep])


@torch.no_grad()
def test_cache_exact_in_float64_strongly_coupled_and_grid(tiny_sudoku_model):
    """In float64 rounding is ~1e-16, so even weights scaled by 12 match to 1e-9."""
    g = torch.Generator().manual_seed(1)
    for m, L, P in ((tiny_model(V=4, L=9).double(), 9, 4), (tiny_sudoku_model.double(), 81, 30)):
        x = torch.randint(0, m.mask_id + 1, (3, L), generator=g)  # grid: row/col/box follow the positions
        cache, _ = m.prefix_cache(x, P)
        torch.testing.assert_close(m.forward_cached(x[:, P:], cache).logits, m(x).logits[:, P:], rtol=0, atol=1e-9)


@torch.no_grad()
def test_cache_shapes_and_rows():
    m = tiny_model(V=4, L=9, scale=3.0)
    c = m.config
    x, _ = left_padded(m, 9, [0, 0, 0])
    cache, out = m.prefix_cache(x, 5)
    assert cache.prefix_len == 5 and len(cache.keys) == len(cache.values) == c.n_layers
    assert all(k.shape == (3, c.n_heads, 5, c.d_model // c.n_heads) for k in cache.keys + cache.values)
    got = m.forward_cached(x[:, 5:], cache)
    assert got.logits.shape == (3, 4, 4) and got.hidden.shape == (3, 4, c.d_model)
    rows = torch.tensor([2, 0])  # the unfinished sequences of a batch
    sub = m.forward_cached(x[rows, 5:], cache.select(rows))
    close(sub.logits, got.logits[rows])


@torch.no_grad()
def test_cache_is_stale_once_the_suffix_changes():
    """The approximation: the prefix's keys/values attended to the old suffix."""
    m = tiny_model(V=4, L=9)
    x = torch.full((2, 9), m.mask_id)
    x[:, :4] = torch.randint(0, 4, (2, 4), generator=torch.Generator().manual_seed(2))
    cache, _ = m.prefix_cache(x, 4)
    y = x.clone()
    y[:, 4:6] = 1  # two suffix positions filled
    stale = m.forward_cached(y[:, 4:], cache).logits
    assert (stale - m(y).logits[:, 4:]).abs().max() > 1e-1


@torch.no_grad()
def test_errors():
    m = tiny_model(V=4, L=9)
    x, _ = left_padded(m, 6, [0, 0])
    for bad in (-1, 6, 7, 2.5, True):
        with pytest.raises(ValueError, match="prefix_len"):
            m.prefix_cache(x, bad)
    with pytest.raises(ValueError, match="attention_mask"):
        m(x, attention_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="attention_mask"):
        m(x, attention_mask=torch.full((2, 6), 2))
    cache, _ = m.prefix_cache(x, 3)
    with pytest.raises(ValueError, match="attention_mask"):
        m.forward_cached(x[:, 3:], cache, attention_mask=torch.ones(2, 6))  # the suffix's, (B, S)
    with pytest.raises(ValueError, match="rows"):
        m.forward_cached(x[:1, 3:], cache)
    with pytest.raises(ValueError, match="seq_len"):
        m.forward_cached(torch.zeros(2, 7, dtype=torch.long), cache)  # 3 + 7 > 9
    with pytest.raises(ValueError, match="token ids"):
        m.forward_cached(torch.full((2, 3), 9), cache)
