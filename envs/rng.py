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

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

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
