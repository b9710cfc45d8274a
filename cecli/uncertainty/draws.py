"""Counter-based random draws keyed by seed and global row number: Poisson(1) bootstrap counts and the sign
swaps of approximate randomization. A row's draws depend on neither the batch, file nor task it is read in."""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np

_BOOTSTRAP_STREAM, _RANDOMIZATION_STREAM = 0, 1


def _poisson_thresholds() -> tuple[int, ...]:
    """``round(F(k) * 2**16)`` for the Poisson(1) CDF ``F``, in exact decimal arithmetic."""
    with localcontext() as context:
        context.prec = 50
        term, cdf, thresholds = Decimal(-1).exp(), Decimal(0), []
        for k in range(1, 30):
            cdf += term
            term /= k
            threshold = int((cdf * 65536).to_integral_value())
            if threshold >= 65536:
                return tuple(thresholds)
            thresholds.append(threshold)
    raise AssertionError("unreachable")  # pragma: no cover


POISSON_THRESHOLDS = _poisson_thresholds()


_THRESHOLDS_16 = np.asarray(POISSON_THRESHOLDS, dtype=np.uint16)


def _poisson_of_uniforms(uniforms: np.ndarray) -> np.ndarray:
    """The Poisson(1) count of each uniform 16-bit `uniforms` entry, as float64: the number of thresholds ``<= u``.

    Poisson(1) with probabilities rounded to multiples of ``2**-16`` (at most ``2**-17`` off each, counts
    0..8). Counted as ``sum_k (u >= threshold_k)`` in uint8: on a bootstrap's draw matrices about twice
    as fast as a gather from a 65,536-entry float table, which misses the cache on every element.
    """
    counts = np.greater_equal(uniforms, _THRESHOLDS_16[0]).view(np.uint8)
    for threshold in _THRESHOLDS_16[1:]:
        counts += uniforms >= threshold
    return counts.astype(np.float64)


_MAX_COUNT = len(POISSON_THRESHOLDS)


_SIGN_TABLE = np.array([1.0, -1.0])


def _check_draws(resamples: int, seed: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"the number of resamples must be a positive integer; received {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"`seed` must be an integer from 0 to 2**64 - 1; received {seed!r}")


def _philox(seed: int, stream: int, first_row: int, rows: int, counters: int) -> np.ndarray:
    """Random 64-bit words, shape ``(rows, 4 * counters)``: 4 per Philox counter.

    Philox4x64-10 (Salmon et al., 2011) is a counter-based generator: its output at a counter
    depends only on the key and that counter. Row ``i`` (0-based, global) and column block ``b``
    use the 256-bit counter ``i + 2**64 * b``, so a row's draws depend on neither the batch,
    file or task it is read in nor on how many draws are taken (resample ``r`` of a row is the
    same with 100 or 1000 resamples). The key is ``seed + 2**64 * stream``.
    """
    words = np.empty((rows, 4 * counters), dtype="<u8")
    for block in range(counters):
        generator = np.random.Philox(key=seed + (stream << 64), counter=first_row + (block << 64))
        # consecutive counters are consecutive rows; little-endian words make the 16-bit and 8-bit
        # views below the same on every machine
        words[:, 4 * block : 4 * block + 4] = generator.random_raw(4 * rows).reshape(rows, 4)
    return words


def poisson_counts(seed: int, first_row: int, rows: int, resamples: int) -> np.ndarray:
    """Poisson(1) bootstrap counts of `rows` rows from global row `first_row` (0-based).

    Returns a float64 array of shape ``(rows, resamples)``; entry ``(i, r)`` is how often row
    ``first_row + i`` occurs in resample ``r``. Each count is a 16-bit uniform draw of
    :func:`_philox` turned into a count by inverting the Poisson(1) CDF rounded to
    multiples of ``2**-16`` (:data:`POISSON_THRESHOLDS`): counts 0 to 8, each probability
    within ``2**-17`` of Poisson(1)'s, far below the Monte-Carlo error of any bootstrap.
    """
    _check_draws(resamples, seed)
    counters = -(-resamples // 16)  # 4 words of 4 counts of 16 bits per counter
    raw = _philox(seed, _BOOTSTRAP_STREAM, first_row, rows, counters)
    uniforms = raw.view("<u2").reshape(rows, 16 * counters)[:, :resamples]
    return _poisson_of_uniforms(uniforms)


def swap_signs(seed: int, first_row: int, rows: int, trials: int) -> np.ndarray:
    """Approximate-randomization signs, shape ``(rows, trials)``: -1 (swap A and B) or +1.

    Each is one fair random bit of :func:`_philox` (its own stream), so a row's swaps do
    not depend on batch boundaries either.
    """
    _check_draws(trials, seed)
    counters = -(-trials // 256)  # 4 words of 64 bits per counter
    raw = _philox(seed, _RANDOMIZATION_STREAM, first_row, rows, counters)
    bits = np.unpackbits(raw.view(np.uint8).reshape(rows, 32 * counters), axis=1, bitorder="little")[:, :trials]
    return _SIGN_TABLE.take(bits, mode="clip")
