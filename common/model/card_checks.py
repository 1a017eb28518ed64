"""Checking what a model card's architecture asks for before a model is built from it.

A card is input like any other: a hand-edited or hostile one can ask for a negative width (a
traceback deep in torch) or a width of 100000 (tens of gigabytes allocated before anything
fails). Every value is checked for type and bounds first, and refused with a `ModelError`
naming the card.
"""

import reprlib

from emofl.common.model.model_cards import ModelError


def architecture_section(architecture: object, source: str) -> dict:
    """The card's architecture object ({} when absent); ModelError naming `source` when it is
    not a JSON object."""
    if architecture is None:
        return {}
    if not isinstance(architecture, dict):
        raise ModelError(f"{source}: architecture must be a JSON object, "
                         f"got {reprlib.repr(architecture)}")
    return architecture


def bounded_int(architecture: dict, name: str, default: int, largest: int, source: str) -> int:
    """`architecture[name]` (`default` when absent) when it is an integer in 1..`largest`;
    ModelError naming `source` otherwise."""
    value = architecture.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
        raise ModelError(f"{source}: {name} must be an integer 1..{largest}, "
                         f"got {reprlib.repr(value)}")
    return value


def one_of(architecture: dict, name: str, default: str, allowed: tuple[str, ...],
           source: str) -> str:
    """`architecture[name]` (`default` when absent) when it is one of `allowed`; ModelError
    naming `source` otherwise."""
    value = architecture.get(name, default)
    if not isinstance(value, str) or value not in allowed:
        raise ModelError(f"{source}: {name} must be one of {', '.join(allowed)}, "
                         f"got {reprlib.repr(value)}")
    return value
