"""Ground-truth state variables of ALE games read from the console RAM (AtariARI's labels).

AtariARI (Anand et al. 2019, "Unsupervised State Representation Learning in Atari") labels
every frame with state variables that are bytes of the Atari 2600's 128-byte RAM; its probes
fit one 256-class linear classifier per variable. The addresses and names here are AtariARI's,
from ``atariari/benchmark/ram_annotations.py`` in ``mila-iqia/atari-representation-learning``
(its ``atari_dict``), with its convention that a variable spanning several bytes (Breakout's
``block_bit_map``, ``range(30)``) becomes one variable per byte, ``<name>_<i>``, listed after
the single-byte ones.

A label is the raw byte, an int in [0, 255], as AtariARI uses it: no decoding of binary-coded
decimal scores or bit maps (what the probes classify is the byte). What the bytes mean, as
checked against the screen and the rewards in ``tests/envs/test_atari_labels.py``:

- Breakout: ``ball_x`` = the ball's left pixel column + 49, ``ball_y`` = its top pixel row - 9
  (while it is between the wall and the paddle), ``player_x`` = the paddle's left column + 47.
  ``blocks_hit_count`` (address 77) is in fact the low byte of the score in binary-coded decimal
  (ALE reads the score from 77 and 76): it grows by each brick's points, not by one per brick.
  ``score`` (address 84) changes by 5 per point scored, modulo its wrap-around: it changes
  exactly on the steps with a reward. ``block_bit_map_0..29`` are 30 of the 36 playfield bytes
  of the wall (bytes 30-35 hold the rest, AtariARI leaves them out): every brick is 2 bits.
- Pong: ``player_x`` / ``enemy_x`` never change (the paddles' columns, left pixel + 48);
  ``player_y`` is the right (green, the agent's) paddle's top row + 13 or 14, ``enemy_y`` the
  left (orange) one's + 15; ``ball_x`` = the ball's left column + 49, ``ball_y`` its top row
  + 14 or 15; ``player_score`` / ``enemy_score`` count the points (+1 exactly on a reward of
  +1 / -1).
- Boxing: ``player_x`` / ``player_y`` the white boxer's (the agent's), ``enemy_x`` /
  ``enemy_y`` the black boxer's position: the body's left column - 3 or - 5, its top row - 37
  or - 38; ``player_score`` / ``enemy_score`` the points in binary-coded decimal (a reward of
  +k is a rise of k of the player's, -k of the enemy's); ``clock`` the seconds of the
  countdown in binary-coded decimal (0x59 = 89 for 59 s).

Where two offsets are listed both occur, in most frames one or the other (not traced further:
sprite shapes, or the RAM read a frame after the screen was drawn); the tests allow both.
"""

from __future__ import annotations

import numpy as np

from envs.errors import ReprlError

RAM_SIZE = 128
"""Bytes of Atari 2600 RAM (what ``ale.getRAM()`` returns)."""

# AtariARI's atari_dict entries for the games reprl serves (mila-iqia/atari-representation-
# learning, atariari/benchmark/ram_annotations.py): name -> RAM address, or a range of addresses
# for a variable of several bytes.
_ATARIARI: dict[str, dict[str, int | range]] = {
    "breakout": {
        "ball_x": 99,
        "ball_y": 101,
        "player_x": 72,
        "blocks_hit_count": 77,
        "block_bit_map": range(30),
        "score": 84,
    },
    "pong": {
        "player_y": 51,
        "player_x": 46,
        "enemy_y": 50,
        "enemy_x": 45,
        "ball_x": 49,
        "ball_y": 54,
        "enemy_score": 13,
        "player_score": 14,
    },
    "boxing": {
        "player_x": 32,
        "player_y": 34,
        "enemy_x": 33,
        "enemy_y": 35,
        "enemy_score": 19,
        "clock": 17,
        "player_score": 18,
    },
}

_IDS = {"breakout": "ALE/Breakout-v5", "pong": "ALE/Pong-v5", "boxing": "ALE/Boxing-v5"}


def _flatten(table: dict[str, int | range]) -> dict[str, int]:
    """AtariARI's expansion: single bytes first, then ``<name>_<i>`` per byte of each range."""
    single = {k: v for k, v in table.items() if isinstance(v, int)}
    for name, addrs in table.items():
        if not isinstance(addrs, int):
            single.update({f"{name}_{i}": a for i, a in enumerate(addrs)})
    return single


RAM_ANNOTATIONS: dict[str, dict[str, int]] = {g: _flatten(t) for g, t in _ATARIARI.items()}
"""ALE ROM name -> {label name: RAM address in [0, 128)}, in AtariARI's order."""
ANNOTATED_IDS: tuple[str, ...] = tuple(sorted(_IDS.values()))
"""The ALE ids whose frames can carry RAM labels (``ram_labels=True``)."""


def _rom_of(game: str) -> str:
    """``"ALE/SpaceInvaders-v5"`` or ``"spaceinvaders"`` -> ``"spaceinvaders"``."""
    if not isinstance(game, str):
        raise ReprlError(f"expected an ALE id or ROM name string, got {game!r}")
    name = game.removeprefix("ALE/").split("-v")[0] if game.startswith("ALE/") else game
    return name.lower()


def check_annotated(game: str) -> str:
    """The ROM name of ``game`` if it has RAM annotations.

    Args:
        game: an ALE id (``"ALE/Pong-v5"``) or ROM name (``"pong"``).

    Returns:
        The ROM name, a key of :data:`RAM_ANNOTATIONS`.

    Raises:
        ReprlError: no annotations for it; the message names it and lists the games that have.
    """
    rom = _rom_of(game)
    if rom not in RAM_ANNOTATIONS:
        raise ReprlError(
            f"RAM labels were asked of {game!r}, which has no RAM annotations; games with "
            f"annotations (AtariARI's): {', '.join(ANNOTATED_IDS)}"
        )
    return rom


def label_names(game: str) -> tuple[str, ...]:
    """The label names of ``game`` (an ALE id or ROM name), in AtariARI's order.

    Raises:
        ReprlError: ``game`` has no annotations (:func:`check_annotated`).
    """
    return tuple(RAM_ANNOTATIONS[check_annotated(game)])


def ram_labels(game: str, ram: np.ndarray) -> dict[str, np.ndarray]:
    """The labels of a batch of RAM snapshots.

    Args:
        game: an ALE id or ROM name with annotations.
        ram: ``(N, 128)`` uint8, one ``ale.getRAM()`` per env (or ``(128,)`` for one).

    Returns:
        Label name -> ``(N,)`` int64 in [0, 255] (``()`` arrays for a single ``(128,)``
        snapshot), in :func:`label_names` order.

    Raises:
        ReprlError: ``game`` has no annotations, or ``ram`` is not ``(..., 128)``.
    """
    table = RAM_ANNOTATIONS[check_annotated(game)]
    ram = np.asarray(ram)
    if ram.ndim not in (1, 2) or ram.shape[-1] != RAM_SIZE:
        raise ReprlError(f"ram: expected (N, {RAM_SIZE}) or ({RAM_SIZE},) bytes, got {ram.shape}")
    values = ram[..., list(table.values())].astype(np.int64)
    return {name: values[..., j] for j, name in enumerate(table)}
