"""Client partitions and the public split are disjoint, complete, seeded and skewed as asked."""

import numpy as np
import pytest

from emofl.common.data.partition import partition_indices, split_public

LABELS = np.random.default_rng(0).integers(0, 7, 3000)


def assert_disjoint_and_complete(parts: list[np.ndarray], total: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == total
    np.testing.assert_array_equal(np.sort(joined), np.arange(total))


def label_skew(parts: list[np.ndarray]) -> float:
    """Mean share of each partition's most common label: 1/7 for IID-like, 1 for one label."""
    return float(np.mean([np.bincount(LABELS[p], minlength=7).max() / len(p) for p in parts]))


@pytest.mark.parametrize("alpha", [None, 1.0, 0.1])
def test_partitions_are_disjoint_complete_and_reproducible(alpha):
    parts = partition_indices(LABELS, 8, alpha, seed=5)
    assert len(parts) == 8
    assert_disjoint_and_complete(parts, len(LABELS))
    assert all(p.dtype == np.int64 for p in parts)
    again = partition_indices(LABELS, 8, alpha, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = partition_indices(LABELS, 8, alpha, seed=6)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def test_iid_sizes_are_near_equal():
    sizes = [len(p) for p in partition_indices(LABELS[:1003], 10, None, seed=0)]
    assert max(sizes) - min(sizes) <= 1


def test_skew_grows_as_alpha_shrinks():
    skews = [
        np.mean([label_skew(partition_indices(LABELS, 10, alpha, seed)) for seed in range(3)])
        for alpha in (None, 10.0, 1.0, 0.1)
    ]
    assert skews == sorted(skews)
    assert skews[-1] > 2 * skews[0]


def test_dirichlet_respects_min_size():
    parts = partition_indices(LABELS, 20, 0.1, seed=1, min_size=40)
    assert min(len(p) for p in parts) >= 40


def test_single_partition_holds_everything():
    (only,) = partition_indices(LABELS, 1, 0.5, seed=0)
    np.testing.assert_array_equal(only, np.arange(len(LABELS)))


@pytest.mark.parametrize(
    ("num_partitions", "alpha", "min_size", "fragment"),
    [
        (0, None, 10, "num_partitions"),
        (4, 0.0, 10, "alpha"),
        (4, -1.0, 10, "alpha"),
        (4, float("nan"), 10, "alpha"),
        (400, None, 10, "cannot fill"),
        (100, 0.01, 29, "no Dirichlet"),
    ],
)
def test_bad_arguments_raise_value_error(num_partitions, alpha, min_size, fragment):
    with pytest.raises(ValueError, match=fragment):
        partition_indices(LABELS, num_partitions, alpha, seed=0, min_size=min_size)


def test_split_public_is_disjoint_sized_and_seeded():
    public, private = split_public(1000, 0.1, seed=2)
    assert len(public) == 100 and len(private) == 900
    assert_disjoint_and_complete([public, private], 1000)
    again, _ = split_public(1000, 0.1, seed=2)
    other, _ = split_public(1000, 0.1, seed=3)
    np.testing.assert_array_equal(public, again)
    assert not np.array_equal(public, other)


def test_split_public_edge_fractions_and_errors():
    assert len(split_public(50, 0.0, seed=0)[0]) == 0
    assert len(split_public(50, 1.0, seed=0)[1]) == 0
    with pytest.raises(ValueError, match="fraction"):
        split_public(50, 1.5, seed=0)
