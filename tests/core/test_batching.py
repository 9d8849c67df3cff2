"""Batches: dynamic padding, lengths, labels, row recovery, epoch coverage, seeding, truncation."""
import numpy as np
import pytest
import torch

from sentiment_lib.batching import BucketBatchSampler, EncodedSplit, make_loader
from sentiment_lib.text import PAD, truncate


def random_split(n=53, seed=0, max_tokens=30):
    """``n`` reviews of 1..max_tokens ids in 2..99 (never PAD), labels alternate 0/1."""
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, 100, size=rng.integers(1, max_tokens + 1)).astype(np.int32) for _ in range(n)]
    return EncodedSplit(ids, np.arange(n) % 2, np.arange(n) % 10 + 1)


def batches(loader):
    return [b.index.tolist() for b in loader]


def test_batches_are_padded_to_their_longest_review_and_recover_their_rows():
    split = random_split()
    loader = make_loader(split, batch_size=8, max_len=1000, bucket=False)
    seen = 0
    for batch in loader:
        rows = batch.index.numpy()
        lengths = np.array([len(split.ids[i]) for i in rows])
        assert batch.tokens.dtype == torch.int64 and batch.lengths.dtype == torch.int64
        assert batch.tokens.shape == (len(rows), lengths.max())
        assert batch.lengths.tolist() == lengths.tolist()
        for r, i in enumerate(rows):
            n = lengths[r]
            assert batch.tokens[r, :n].tolist() == split.ids[i].tolist()
            assert (batch.tokens[r, n:] == PAD).all()
        assert batch.labels.dtype == torch.float32
        assert batch.labels.tolist() == split.labels[rows].astype(float).tolist()
        seen += len(batch)
    assert seen == len(split)


def test_labels_are_class_indices_when_not_binary():
    split = random_split(n=12).with_labels(np.arange(12) % 3)
    batch = next(iter(make_loader(split, 5, 50, binary=False)))
    assert batch.labels.dtype == torch.int64
    assert batch.labels.tolist() == (batch.index.numpy() % 3).tolist()


@pytest.mark.parametrize("bucket", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_row_appears_exactly_once_per_epoch(bucket, shuffle):
    split = random_split(n=203)
    loader = make_loader(split, batch_size=16, max_len=20, shuffle=shuffle, bucket=bucket, seed=3)
    assert len(loader) == 13
    for _ in range(2):
        order = [i for b in batches(loader) for i in b]
        assert sorted(order) == list(range(len(split)))


def test_shuffled_loaders_are_seeded_and_epochs_differ():
    split = random_split(n=120)
    for bucket in (True, False):
        a = make_loader(split, 10, 40, shuffle=True, bucket=bucket, seed=5)
        b = make_loader(split, 10, 40, shuffle=True, bucket=bucket, seed=5)
        c = make_loader(split, 10, 40, shuffle=True, bucket=bucket, seed=6)
        a1, a2 = batches(a), batches(a)
        assert a1 == batches(b) and a2 == batches(b)
        assert a1 != a2
        assert a1 != batches(c)


def test_unshuffled_loader_is_the_same_every_epoch():
    split = random_split(n=40)
    loader = make_loader(split, 8, 40, shuffle=False, bucket=True)
    first = batches(loader)
    assert first == batches(loader)
    lengths = split.lengths[[i for b in first for i in b]]
    assert (np.diff(lengths) >= 0).all()  # sorted by length for evaluation


def test_bucketing_groups_similar_lengths():
    split = random_split(n=400, max_tokens=200)
    def padding(loader):
        return sum(int(b.tokens.numel() - b.lengths.sum()) for b in loader)
    bucketed = padding(make_loader(split, 16, 500, shuffle=True, bucket=True, seed=0))
    plain = padding(make_loader(split, 16, 500, shuffle=True, bucket=False, seed=0))
    assert bucketed < plain / 4


def test_pad_to_max_len_gives_every_batch_that_width():
    split = random_split(n=30, max_tokens=12)
    widths = {b.tokens.shape[1] for b in make_loader(split, 7, 20, bucket=False, pad_to_max_len=True)}
    assert widths == {20}


@pytest.mark.parametrize("side", ["head", "tail", "head+tail"])
def test_long_reviews_are_truncated_per_side(side):
    ids = [np.arange(2, 22, dtype=np.int32), np.arange(2, 5, dtype=np.int32)]
    split = EncodedSplit(ids, [1, 0])
    batch = next(iter(make_loader(split, 2, 8, truncation=side, bucket=False)))
    assert batch.tokens.shape == (2, 8) and batch.lengths.tolist() == [8, 3]
    assert batch.tokens[0].tolist() == truncate(ids[0], 8, side).tolist()
    assert batch.tokens[1].tolist() == [2, 3, 4, PAD, PAD, PAD, PAD, PAD]
    expected_first = {"head": list(range(2, 10)), "tail": list(range(14, 22)),
                      "head+tail": [2, 3] + list(range(16, 22))}[side]
    assert batch.tokens[0].tolist() == expected_first


def test_encoded_split_checks_its_inputs():
    with pytest.raises(ValueError, match="same length"):
        EncodedSplit([np.array([2, 3])], [0, 1])
    with pytest.raises(ValueError, match="no tokens"):
        EncodedSplit([np.array([2]), np.array([], dtype=np.int32)], [0, 1])
    split = random_split(n=6)
    sub = split.select([4, 1])
    assert sub.labels.tolist() == [0, 1] and sub.ids[0].tolist() == split.ids[4].tolist()
    assert sub.ratings.tolist() == [5, 2]


def test_bad_sizes_are_refused():
    split = random_split(n=6)
    with pytest.raises(ValueError, match="MAX_LEN"):
        make_loader(split, 2, 0)
    with pytest.raises(ValueError, match="BATCH_SIZE"):
        BucketBatchSampler(split.lengths, 0)
