"""Planning a budget: the noise a run's DP-SGD needs so that all its steps spend exactly ε."""

from opacus.accountants.utils import get_noise_multiplier


def noise_for_budget(
    epsilon: float, delta: float, sample_rate: float, total_steps: int, accountant: str
) -> float:
    """The smallest noise multiplier σ whose `total_steps` steps at `sample_rate` fit (ε, δ)."""
    if epsilon <= 0:
        raise ValueError(f"target epsilon must be positive, got {epsilon}")
    return float(
        get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=total_steps,
            accountant=accountant,
            epsilon_tolerance=0.005,
        )
    )
