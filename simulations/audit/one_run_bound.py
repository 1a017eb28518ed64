"""From canary scores to ε: the one-run lower bound of Steinke, Nasr & Jagielski (2023) and, as
an estimate only, the Gaussian-DP fit of Nasr et al. (2023).

Each of m canaries was included with probability ½. The auditor guesses "in" for the k
highest scores and "out" for the k lowest and abstains on the rest; under (ε, δ)-DP the number
of right guesses among r is dominated by Binomial(r, e^ε/(1+e^ε)) up to a δ term (their
Theorem 5.2), which gives a p-value for each ε and, inverted, an ε that the run exceeds with
95% confidence. The guess counts tried are Bonferroni-corrected, so the bound stays valid.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
GUESS_FRACTIONS = (0.05, 0.1, 0.2, 0.5)  # of m, guessed at each end of the ranking


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P[≥ v of r guesses right] if the mechanism were (ε, δ)-DP (their Algorithm 3)."""
    q = 1 / (1 + math.exp(-epsilon))
    beta = stats.binom.sf(v - 1, r, q)
    if v == 0:
        return 1.0
    tails = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    alpha = float(np.max(tails / np.arange(1, v + 1)))
    return min(1.0, float(beta) + alpha * delta * 2 * m)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, p: float) -> float:
    """The largest ε whose p-value for (r guesses, v right) is below `p` (0 if none)."""
    if p_value(m, r, v, 0.0, delta) >= p:
        return 0.0
    low, high = 0.0, 1.0
    while p_value(m, r, v, high, delta) < p:
        low, high = high, high * 2
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if p_value(m, r, v, middle, delta) < p else (low, middle)
    return low


@dataclass(frozen=True)
class OneRunBound:
    """The best bound over the guess counts tried, how it was reached, and its ceiling."""

    epsilon: float
    guesses: int
    correct: int
    ceiling: float


def one_run_bound(scores: np.ndarray, included: np.ndarray, delta: float,
                  confidence: float = CONFIDENCE) -> OneRunBound:
    """The ε that the run exceeds with `confidence` (Bonferroni over `GUESS_FRACTIONS`)."""
    m = len(scores)
    p = (1 - confidence) / len(GUESS_FRACTIONS)
    order = np.argsort(scores)
    best, ceiling = OneRunBound(0.0, 0, 0, 0.0), 0.0
    for k in sorted({max(1, int(fraction * m)) for fraction in GUESS_FRACTIONS}):
        right = int(included[order[-k:]].sum() + (~included[order[:k]]).sum())
        bound = epsilon_lower_bound(m, 2 * k, right, delta, p)
        ceiling = max(ceiling, epsilon_lower_bound(m, 2 * k, 2 * k, delta, p))
        if bound >= best.epsilon:
            best = OneRunBound(bound, 2 * k, right, 0.0)
    return OneRunBound(best.epsilon, best.guesses, best.correct, ceiling)


def gaussian_dp_estimate(scores: np.ndarray, included: np.ndarray, delta: float) -> float:
    """An ESTIMATE, not a bound: fit μ-GDP to the scores (μ = mean gap / pooled standard
    deviation) and convert μ to ε at δ; infinite when the two groups do not overlap."""
    inside, outside = scores[included], scores[~included]
    spread = math.sqrt((inside.var(ddof=1) + outside.var(ddof=1)) / 2)
    if spread == 0:
        return math.inf
    mu = max(0.0, (inside.mean() - outside.mean()) / spread)
    if mu == 0:
        return 0.0

    def excess(epsilon: float) -> float:
        return (stats.norm.cdf(-epsilon / mu + mu / 2)
                - math.exp(epsilon) * stats.norm.cdf(-epsilon / mu - mu / 2) - delta)

    if excess(0.0) <= 0:
        return 0.0
    high = 1.0
    while excess(high) > 0:
        high *= 2
    return float(optimize.brentq(excess, 0.0, high))
