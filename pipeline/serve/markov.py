"""The data-driven `markov` model (SPEC section 14): first-order Markov chain removal effects, in closed form.

States are start, the group values, conversion and null; transition probabilities come from the counted
transitions of the paths (consecutive repeats collapsed). With Q the transitions among start and the values
and N = (I - Q)^-1 the chain's fundamental matrix, h = N r (r: one step to conversion) is each state's
probability to end in conversion, and P(conversion) = h[start]. Removing a value v (its incoming transitions
sent to null) leaves exactly the paths that never visit v, so

    P(conversion without v) = h[start] - f(v) h[v],   f(v) = N[start, v] / N[v, v] (the chance to ever visit v)
    removal effect of v     = f(v) h[v] / h[start]

One sparse LU factorisation of I - Q gives h, the start row of N (a transposed solve) and the diagonal of N
(solves on blocks of unit columns), instead of one chain per removed value. No library was used: the
maintained ones estimate by simulation (ChannelAttribution), pull in Polars or plotting stacks, or are too
young to rely on; this closed form is exact up to floating point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, identity
from scipy.sparse.linalg import splu

BLOCK = 256  # unit columns solved at once for the diagonal of N


def transition_counts(paths: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """(values, source states, target states, counts) of the paths' transitions.

    `paths`: one row per step, in order within each path: `path` (id), `value` (text) and `converted` (bool,
    the same on every row of a path). States: 0 start, 1..m the values, m + 1 conversion, m + 2 null.
    """
    codes, values = pd.factorize(paths["value"], sort=True)
    path, state = paths["path"].to_numpy(), codes.astype("int64") + 1
    m = len(values)
    keep = np.r_[True, (path[1:] != path[:-1]) | (state[1:] != state[:-1])] if len(path) else np.zeros(0, bool)
    path, state, converted = path[keep], state[keep], paths["converted"].to_numpy(dtype=bool)[keep]
    first = np.r_[True, path[1:] != path[:-1]] if len(path) else np.zeros(0, bool)
    last = np.r_[path[1:] != path[:-1], True] if len(path) else np.zeros(0, bool)
    inner = np.flatnonzero(~last)
    source = np.concatenate([np.zeros(int(first.sum()), "int64"), state[inner], state[last]])
    target = np.concatenate([state[first], state[inner + 1], np.where(converted[last], m + 1, m + 2)])
    pairs, counts = np.unique(source * (m + 3) + target, return_counts=True)
    return values, pairs // (m + 3), pairs % (m + 3), counts


def removal_effects(paths: pd.DataFrame) -> pd.Series:
    """Removal effect of every value on the paths (index: value, sorted); all 0 when no path converts."""
    values, source, target, counts = transition_counts(paths)
    m = len(values)
    if m == 0 or not paths["converted"].any():
        return pd.Series(0.0, index=values, dtype="float64")
    out = np.bincount(source, weights=counts, minlength=m + 1)
    probability = counts / out[source]
    transient = target <= m
    q = coo_matrix((probability[transient], (source[transient], target[transient])), shape=(m + 1, m + 1))
    to_conversion = np.bincount(source[target == m + 1], weights=probability[target == m + 1], minlength=m + 1)
    lu = splu((identity(m + 1, format="csc") - q.tocsc()).tocsc())
    h = lu.solve(to_conversion)
    start_row = lu.solve(np.eye(m + 1, 1).ravel(), trans="T")  # N[start, :]
    visit = start_row[1:] / _fundamental_diagonal(lu, m + 1)[1:]
    return pd.Series(visit * h[1:] / h[0], index=values, dtype="float64")


def _fundamental_diagonal(lu, size: int) -> np.ndarray:
    """N[v, v] for every state: N's columns solved a block of unit vectors at a time."""
    diagonal = np.empty(size)
    for begin in range(0, size, BLOCK):
        columns = np.arange(begin, min(begin + BLOCK, size))
        units = np.zeros((size, len(columns)))
        units[columns, np.arange(len(columns))] = 1.0
        diagonal[columns] = lu.solve(units)[columns, np.arange(len(columns))]
    return diagonal


def markov_credits(paths: pd.DataFrame, conversions: int) -> pd.Series:
    """Each value's share of the conversions: removal effect / sum of removal effects × conversions."""
    effects = removal_effects(paths)
    total = effects.sum()
    return effects * (conversions / total) if total > 0 else effects * 0.0
