"""A counter-based random number generator with one independent stream per game.

Batched environments keep the state of N games in tensors. To make game ``i`` of a batch behave
exactly like a single game seeded with the same seed, every game draws from its own stream:
``value = hash(key_i, counter_i + j)``, and only the games that actually draw advance their
counter. The hash is integer arithmetic on int64 tensors, so the streams are identical on CPU
and CUDA and need no Python loop over games.

The mixing function is Chris Wellons' ``lowbias32`` (a 32-bit integer hash with good
avalanche); multiplications are split into 16-bit halves so no int64 product overflows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.checks import is_int
from envs.errors import ReprlError

_M32 = 0xFFFFFFFF
_M16 = 0xFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``(x * c) mod 2**32`` for ``x`` in [0, 2**32) without int64 overflow."""
    lo = (x & _M16) * c
    hi = ((x >> 16) * c) & _M16
    return (lo + (hi << 16)) & _M32


def mix32(x: Tensor) -> Tensor:
    """The ``lowbias32`` hash.

    Args:
        x: int64 tensor of any shape; only its low 32 bits are used.

    Returns:
        int64 tensor of the same shape, values in [0, 2**32).
    """
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def seed_to_key(seeds: Tensor) -> Tensor:
    """Turns non-negative integer seeds (int64) into stream keys in [0, 2**32)."""
    return mix32(mix32(seeds & _M32) ^ (seeds >> 32) ^ 0x5BD1E995)


SEED_BOUND = 2**31
"""Seeds made by :func:`spawn_seeds` lie in [0, SEED_BOUND): ALE takes int32 seeds, and every
seed below 2**32 maps to its own stream key here (:func:`seed_to_key` is a bijection there)."""


def spawn_seeds(seed: int, n: int, *, purpose: str) -> list[int]:
    """``n`` per-env seeds for one purpose, from ``numpy.random.SeedSequence``.

    The seeds are keyed on ``(purpose, seed)``: the SeedSequence's entropy is ``seed`` and its
    spawn key the first 128 bits of SHA-256 of ``purpose``. So training seed 0 and training
    seed 1 share no env stream (unlike ``seed + i``, where they share n - 1 of n), and purpose
    ``"train"`` never draws the streams of ``"evaluate"`` or ``"collect"`` for the same seed.

    Collisions: within one call the n seeds are distinct (a duplicate is skipped and the next
    value of the same sequence taken, deterministically). Across calls (another purpose or
    seed) each seed is an independent uniform draw from [0, 2**31), so two sets of n and m seeds
    share a value with probability about ``n * m / 2**31`` (16 x 16 envs: 1.2e-7). Every seed
    below 2**32 gets its own stream key in :class:`StreamRNG` (a 32-bit key space; larger seeds
    would fold 64 bits into 32), and ALE uses these seeds unchanged (it takes int32 seeds), so
    distinct seeds mean distinct streams on both paths.

    Args:
        seed: the experiment's seed (a training seed, an evaluation seed), an int >= 0.
        n: number of env seeds, >= 1.
        purpose: what the streams are for, e.g. ``"train"``, ``"evaluate"``, ``"collect"``
            (any string; different strings give independent streams).

    Returns:
        ``n`` distinct ints in [0, 2**31), a pure function of (seed, n, purpose); the first k
        seeds of a call with n > k equal the seeds of the call with k.

    Raises:
        ReprlError: a negative or non-integer seed, n < 1, or a purpose that is not a string.
    """
    if not is_int(seed) or seed < 0:
        raise ReprlError(f"seed: expected an integer >= 0, got {seed!r}")
    if not is_int(n) or n < 1:
        raise ReprlError(f"n: expected an integer >= 1, got {n!r}")
    if not isinstance(purpose, str):
        raise ReprlError(f"purpose: expected a string, got {type(purpose).__name__}")
    digest = hashlib.sha256(purpose.encode()).digest()[:16]
    key = tuple(int(w) for w in np.frombuffer(digest, dtype="<u4"))
    sequence = np.random.SeedSequence(int(seed), spawn_key=key)
    out: list[int] = []
    seen: set[int] = set()
    drawn = 0
    while len(out) < n:
        want = drawn + (n - len(out)) + 4
        state = sequence.generate_state(want, dtype=np.uint32)[drawn:]  # a prefix is stable
        drawn = want
        for v in (int(x) % SEED_BOUND for x in state):
            if v not in seen and len(out) < n:
                seen.add(v)
                out.append(v)
    assert len(set(out)) == n
    return out


def per_env_seeds(seed: int | Sequence[int] | None, num_envs: int) -> list[int] | None:
    """The seeds of ``num_envs`` envs from ``make_vec``'s ``seed`` argument.

    Args:
        seed: an int (env i gets ``seed + i``, SB3's convention), a sequence of ``num_envs``
            ints (env i gets ``seed[i]``, e.g. from :func:`spawn_seeds`), or None (fresh
            entropy, left to the env).
        num_envs: N.

    Returns:
        N non-negative ints, or None for ``seed=None``.

    Raises:
        ReprlError: a negative or non-integer seed, or a sequence of the wrong length.
    """
    if seed is None:
        return None
    if is_int(seed):
        if seed < 0:
            raise ReprlError(f"seed: expected None, an integer >= 0 or a list of them, got {seed}")
        return [int(seed) + i for i in range(num_envs)]
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise ReprlError(
            f"seed: expected None, an integer >= 0 or a list of {num_envs} of them, "
            f"got {type(seed).__name__}"
        )
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ReprlError(
            f"seed: expected one seed per env ({num_envs}), got a sequence of {len(seeds)}"
        )
    if not all(is_int(s) and s >= 0 for s in seeds):
        raise ReprlError(f"seed: expected integers >= 0 per env, got {seeds}")
    return [int(s) for s in seeds]


def fresh_seeds(n: int) -> list[int]:
    """``n`` seeds drawn from the operating system's entropy (for ``seed=None``)."""
    return [int(s) for s in np.random.SeedSequence().generate_state(n, dtype=np.uint64) >> 1]


class StreamRNG:
    """N independent random streams, one per game, living on ``device``.

    Args:
        num_streams: number of streams (games), N >= 1.
        device: torch device for the key and counter tensors.
    """

    def __init__(self, num_streams: int, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.key = torch.zeros(num_streams, dtype=torch.int64, device=self.device)
        self.counter = torch.zeros(num_streams, dtype=torch.int64, device=self.device)

    def seed(self, index: Tensor, seeds: Sequence[int]) -> None:
        """Restarts the streams ``index`` (int64 (K,)) from ``seeds`` (K non-negative ints)."""
        s = torch.as_tensor(list(seeds), dtype=torch.int64, device=self.device)
        self.key[index] = seed_to_key(s)
        self.counter[index] = 0

    def seed_all(self, seed: int | Sequence[int | None] | None) -> None:
        """Seeds the streams from a batched env's ``reset(seed)`` argument.

        Args:
            seed: an int (stream i gets ``seed + i``), one seed or None per stream (None keeps
                that stream going), or None (every stream keeps going).

        Raises:
            ReprlError: a sequence of the wrong length, a negative or non-integer seed.
        """
        n = len(self.key)
        if seed is None:
            return
        if is_int(seed):
            seeds: list[int | None] = list(per_env_seeds(int(seed), n) or [])
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ReprlError(f"seed: expected {n} seeds, got {len(seeds)}")
        given = [i for i, s in enumerate(seeds) if s is not None]
        if given:
            per_env_seeds([seeds[i] for i in given], len(given))  # ints >= 0, else ReprlError
            self.seed(torch.tensor(given, device=self.device), [seeds[i] for i in given])

    def draw(self, index: Tensor, num: int) -> Tensor:
        """Draws ``num`` raw 32-bit values for each stream in ``index``.

        Args:
            index: int64 (K,) stream indices, no repeats.
            num: values per stream.

        Returns:
            int64 (K, num), values in [0, 2**32). The counters of ``index`` advance by ``num``.
        """
        offs = torch.arange(num, dtype=torch.int64, device=self.device)
        ctr = self.counter[index].unsqueeze(1) + offs
        self.counter[index] += num
        return mix32(self.key[index].unsqueeze(1) ^ mix32(ctr * 0x9E3779B9 + 0x632BE5AB))

    def integers(self, index: Tensor, low: Tensor | int, high: Tensor | int, num: int) -> Tensor:
        """Uniform integers in [low, high) (bias below 2**-20 for ranges under 4096).

        Args:
            index: int64 (K,) stream indices.
            low, high: bounds, ints or int64 tensors broadcastable to (K, num), high > low.
            num: values per stream.

        Returns:
            int64 (K, num).
        """
        return low + self.draw(index, num) % (high - low)
