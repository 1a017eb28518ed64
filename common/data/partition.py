"""Seeded splits of a training set: across simulated federated clients, and into a public part.

`partition_indices` simulates how faces are spread over clients: IID, or label-skewed with
per-class Dirichlet proportions (Hsu et al. 2019, "Measuring the effects of non-identical
data distribution"; the scheme of Flower Datasets' DirichletPartitioner), where a smaller
alpha gives each client fewer dominant classes. `split_public` sets aside a fixed fraction of
the training data as public, consented faces held by the server.
"""

import numpy as np

MAX_DIRICHLET_DRAWS = 1_000


def partition_indices(
    labels: np.ndarray, num_partitions: int, alpha: float | None, seed: int, min_size: int = 10
) -> list[np.ndarray]:
    """Split the indices of `labels` into `num_partitions` disjoint, sorted int64 arrays that
    together cover every index.

    alpha None gives an IID split (shuffled, sizes differing by at most one); alpha > 0 gives a
    Dirichlet label skew, redrawn until every partition holds at least `min_size` examples.
    The result depends only on the arguments, so a seed reproduces it exactly.
    """
    labels = np.asarray(labels)
    _check_arguments(labels, num_partitions, alpha, min_size)
    rng = np.random.default_rng(seed)
    if alpha is None:
        shuffled = rng.permutation(len(labels))
        return [np.sort(part) for part in np.array_split(shuffled, num_partitions)]
    return _dirichlet_partition(labels, num_partitions, alpha, min_size, rng)


def _check_arguments(
    labels: np.ndarray, num_partitions: int, alpha: float | None, min_size: int
) -> None:
    """Raise ValueError naming the first unusable argument of partition_indices."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    if alpha is not None and not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive number or None (IID), got {alpha}")
    if min_size < 0:
        raise ValueError(f"min_size must be non-negative, got {min_size}")
    if len(labels) < max(num_partitions * min_size, num_partitions):
        raise ValueError(
            f"{len(labels)} examples cannot fill {num_partitions} partitions "
            f"with at least {max(min_size, 1)} examples each"
        )


def _dirichlet_partition(
    labels: np.ndarray, num_partitions: int, alpha: float, min_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per class, hand out its shuffled indices in Dir(alpha) proportions over the partitions;
    redraw the proportions until every partition reaches `min_size`."""
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    for _ in range(MAX_DIRICHLET_DRAWS):
        # Cut points of each class's indices: only sizes are checked before accepting a draw.
        cuts = [
            (np.cumsum(rng.dirichlet(np.full(num_partitions, alpha)))[:-1] * len(idx)).astype(int)
            for idx in by_class
        ]
        sizes = sum(
            np.diff(cut, prepend=0, append=len(idx))
            for cut, idx in zip(cuts, by_class, strict=True)
        )
        if sizes.min() >= min_size:
            pieces = [np.split(idx, cut) for cut, idx in zip(cuts, by_class, strict=True)]
            return [np.sort(np.concatenate(parts)) for parts in zip(*pieces, strict=True)]
    raise ValueError(
        f"no Dirichlet(alpha={alpha}) draw gave all {num_partitions} partitions at least "
        f"{min_size} examples in {MAX_DIRICHLET_DRAWS} tries; raise alpha, or lower "
        "num_partitions or min_size"
    )


def split_public(num_examples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(public_indices, private_indices): a seeded, disjoint split of range(num_examples) with
    round(fraction * num_examples) public examples; both arrays sorted int64."""
    if num_examples < 0:
        raise ValueError(f"num_examples must be non-negative, got {num_examples}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    shuffled = np.random.default_rng(seed).permutation(num_examples)
    num_public = round(fraction * num_examples)
    return np.sort(shuffled[:num_public]), np.sort(shuffled[num_public:])
