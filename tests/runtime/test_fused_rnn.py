"""The fused recurrence computes what the readable packed reference computes, outputs and gradients alike."""
import pytest
import torch

from sentiment_lib.runtime.fused_rnn import gather_steps, reversal_index
from sentiment_lib.models import RecurrentClassifier

VOCAB = 40


def test_reversal_index_reverses_each_review_within_its_length_and_is_its_own_inverse():
    lengths = torch.tensor([3, 1, 4])
    index = reversal_index(lengths, 4)
    assert index[:, 0].tolist() == [2, 1, 0, 3]  # padding (step 3) stays in place
    assert index[:, 1].tolist() == [0, 1, 2, 3]
    assert index[:, 2].tolist() == [3, 2, 1, 0]
    x = torch.arange(12.0).reshape(4, 3, 1)
    torch.testing.assert_close(gather_steps(gather_steps(x, index), index), x)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("readout, layers, bidirectional", [("pool", 1, True), ("last", 1, True),
                                                            ("attention", 2, True), ("last", 2, False),
                                                            ("pool", 1, False)])
def test_dense_recurrence_equals_packing_in_outputs_and_gradients(cell, readout, layers, bidirectional):
    lengths = torch.tensor([9, 3, 1, 6])
    tokens = torch.randint(2, VOCAB, (4, 12), generator=torch.Generator().manual_seed(0))
    tokens[torch.arange(12)[None, :] >= lengths[:, None]] = 0
    models, logits = {}, {}
    for recurrence in ("packed", "dense"):
        torch.manual_seed(0)
        models[recurrence] = RecurrentClassifier(VOCAB, 8, 6, cell=cell, bidirectional=bidirectional,
                                                 num_layers=layers, readout=readout, recurrence=recurrence)
        logits[recurrence] = models[recurrence](tokens, lengths)
        logits[recurrence].sum().backward()
    torch.testing.assert_close(logits["dense"], logits["packed"])
    for dense, packed in zip(models["dense"].parameters(), models["packed"].parameters()):
        torch.testing.assert_close(dense.grad, packed.grad)


def test_an_unknown_recurrence_names_the_two_there_are():
    with pytest.raises(ValueError, match="'dense'.*'packed'"):
        RecurrentClassifier(VOCAB, 8, 6, recurrence="padded")
