"""The markov model's removal effects and credits against examples worked out by hand (SPEC section 14)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.serve.markov import markov_credits, removal_effects, transition_counts


def paths_frame(*paths: tuple[list[str], bool]) -> pd.DataFrame:
    """One row per step: (path id, value, converted)."""
    rows = [(i, value, converted) for i, (values, converted) in enumerate(paths) for value in values]
    return pd.DataFrame(rows, columns=["path", "value", "converted"])


def exact(value: float):
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def test_a_chain_with_a_cycle_worked_by_hand():
    """Paths: A > B > A > conversion, A > null, B > conversion.

    Counts: start→A 2, start→B 1; A→B 1, A→conversion 1, A→null 1; B→A 1, B→conversion 1.
    Probabilities: start→A 2/3, start→B 1/3; A→B, A→conv, A→null 1/3 each; B→A 1/2, B→conv 1/2.
    Conversion from A and B: h_A = h_B / 3 + 1/3, h_B = h_A / 2 + 1/2 → h_A = 3/5, h_B = 4/5;
    P(conversion) = 2/3 · 3/5 + 1/3 · 4/5 = 2/3.
    Without A (start→A and B→A go to null): P = 1/3 · 1/2 = 1/6 → removal effect 1 - (1/6)/(2/3) = 3/4.
    Without B (start→B and A→B go to null): P = 2/3 · 1/3 = 2/9 → removal effect 1 - (2/9)/(2/3) = 2/3.
    Credits over 2 conversions: A = (3/4) / (3/4 + 2/3) · 2 = 18/17, B = (2/3) / (17/12) · 2 = 16/17.
    """
    paths = paths_frame((["A", "B", "A"], True), (["A"], False), (["B"], True))
    effects = removal_effects(paths)
    assert effects.index.tolist() == ["A", "B"]
    assert effects.tolist() == [exact(3 / 4), exact(2 / 3)]
    credits = markov_credits(paths, conversions=2)
    assert credits.tolist() == [exact(18 / 17), exact(16 / 17)]
    assert credits.sum() == exact(2.0)


def test_a_value_only_on_paths_that_never_convert_can_still_be_credited():
    """Paths: X > Y > null, Y > conversion. P(start→X) = P(start→Y) = 1/2; X→Y 1; Y→null 1/2, Y→conversion 1/2.
    P(conversion) = 1/2 · 1/2 + 1/2 · 1/2 = 1/2. Without X: 1/4 → effect 1/2. Without Y: 0 → effect 1.
    One conversion: X gets (1/2) / (3/2) = 1/3, Y gets 2/3."""
    credits = markov_credits(paths_frame((["X", "Y"], False), (["Y"], True)), conversions=1)
    assert credits.to_dict() == {"X": exact(1 / 3), "Y": exact(2 / 3)}


def test_repeats_collapse_to_one_step():
    collapsed = paths_frame((["A", "B"], True), (["B"], False))
    repeated = paths_frame((["A", "A", "B", "B", "B"], True), (["B", "B"], False))
    assert removal_effects(repeated).tolist() == removal_effects(collapsed).tolist()
    values, source, target, counts = transition_counts(repeated)
    # states: 0 start, 1 A, 2 B, 3 conversion, 4 null
    assert list(values) == ["A", "B"]
    assert sorted(zip(source.tolist(), target.tolist(), counts.tolist())) == [(0, 1, 1), (0, 2, 1), (1, 2, 1), (2, 3, 1), (2, 4, 1)]


def test_one_value_takes_every_conversion():
    credits = markov_credits(paths_frame((["A"], True), (["A"], False), (["A"], True)), conversions=2)
    assert credits.to_dict() == {"A": 2.0}


def test_no_conversion_gives_no_credit():
    assert markov_credits(paths_frame((["A", "B"], False)), conversions=0).to_dict() == {"A": 0.0, "B": 0.0}
    assert markov_credits(paths_frame(), conversions=0).empty


def brute_force_effects(paths: list[tuple[list[str], bool]], only: list[str] | None = None) -> dict[str, float]:
    """Removal effects with a dense solve per removed value (the textbook way), for comparison."""
    values = sorted({v for p, _ in paths for v in p})
    index = {v: i + 1 for i, v in enumerate(values)}
    m = len(values)
    counts = np.zeros((m + 1, m + 3))
    for steps, converted in paths:
        states = [0] + [index[v] for i, v in enumerate(steps) if i == 0 or steps[i - 1] != v] + [m + 1 if converted else m + 2]
        for a, b in itertools.pairwise(states):
            counts[a, b] += 1
    p = counts / counts.sum(axis=1, keepdims=True)

    def conversion(removed: int | None) -> float:
        q, r = p[:, : m + 1].copy(), p[:, m + 1].copy()
        if removed is not None:
            q[:, removed] = 0.0
            r[removed] = 0.0
        return np.linalg.solve(np.eye(m + 1) - q, r)[0]

    base = conversion(None)
    return {v: 1 - conversion(index[v]) / base for v in (only or values)}


@hsettings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=6), st.booleans()), min_size=1, max_size=12))
def test_closed_form_equals_one_chain_per_removed_value(paths):
    if not any(converted for _, converted in paths):
        assert (removal_effects(paths_frame(*paths)) == 0).all()
        return
    effects = removal_effects(paths_frame(*paths))
    expected = brute_force_effects(paths)
    assert effects.to_dict() == {v: pytest.approx(e, rel=1e-9, abs=1e-12) for v, e in expected.items()}
    conversions = sum(converted for _, converted in paths)
    assert markov_credits(paths_frame(*paths), conversions).sum() == pytest.approx(conversions, rel=1e-12)


def test_many_values_are_solved_in_blocks():
    """More values than one block of the diagonal's solves (600 > 256): a chain V000 > … > V599 > conversion,
    and every value once alone to null; compared with one dense chain per removed value on a sample."""
    chain = [f"V{i:03d}" for i in range(600)]
    paths = [(chain, True), *(([v], False) for v in chain)]
    effects = removal_effects(paths_frame(*paths))
    assert len(effects) == 600
    sample = ["V000", "V255", "V256", "V511", "V512", "V599"]
    assert effects[sample].to_dict() == {v: pytest.approx(e, rel=1e-9) for v, e in brute_force_effects(paths, only=sample).items()}
