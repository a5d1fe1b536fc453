import pytest
import torch

from mdmi.interface import ModelOutput
from mdmi.models.transformer import MaskedTransformer, MDMConfig

# tiny models run fastest on one thread, and never fight a training job for cores
torch.set_num_threads(1)


class CountingModel:
    """Wraps a model and counts passes and the sequences in each."""

    def __init__(self, model):
        self.model = model
        self.mask_id = model.mask_id
        self.vocab_size = model.vocab_size
        self.calls = 0
        self.rows = 0

    def __call__(self, x):
        self.calls += 1
        self.rows += x.shape[0]
        return self.model(x)


class TableModel:
    """Hand-made logits: returns a fixed (L, V) table for every sequence (independent positions)."""

    def __init__(self, table, mask_id):
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.vocab_size = self.table.shape[-1]
        self.mask_id = mask_id

    def __call__(self, x):
        B, L = x.shape
        return ModelOutput(logits=self.table[:L].expand(B, L, -1).clone(), hidden=None)


@pytest.fixture
def tiny_sudoku_model():
    torch.manual_seed(0)
    return MaskedTransformer(MDMConfig(vocab_size=9, seq_len=81, grid=9, d_model=32, n_layers=2, n_heads=2)).eval()
