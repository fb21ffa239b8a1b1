"""Short GIFs of an agent playing: one episode, as rl_zoo3's ``record_video`` does for mp4.

The frames are the env's RGB renderings (``VecEnv.get_images()``, ``(H, W, 3)`` uint8, not
stacked); for an env that has none, the observation's last three channels (the newest frame
of a stack). The GIF is written atomically (temporary name, then rename).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from envs.storage.files import atomic_path


def _rgb(frame: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(H, W, 3)``: the last three channels, or grey repeated."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] >= 3:
        return np.ascontiguousarray(frame[..., -3:], dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(frame[..., -1:], 3, axis=-1), dtype=np.uint8)


def _frame(venv: Any, obs: np.ndarray) -> np.ndarray:
    """The current RGB frame of env 0: ``get_images()`` if the env renders, else the obs."""
    try:
        image = venv.get_images()[0]
    except (AttributeError, NotImplementedError, IndexError, TypeError):
        image = None
    if image is not None and np.ndim(image) == 3 and np.shape(image)[-1] == 3:
        return np.asarray(image, dtype=np.uint8)
    return _rgb(obs[0])


def record_gif(
    model: Any,
    env_id: str,
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    max_frames: int = 1000,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
    device: str = "cpu",
    fps: int = 30,
    scale: int = 1,
    agent_meanings: list[str] | None = None,
    action_mapping: str = "none",
) -> Path:
    """Records the first episode of env 0 of ``env_id`` played by ``model`` as a GIF.

    Args:
        model: anything with SB3's ``predict(obs, deterministic=...) -> (actions, state)``
            (an SB3 agent, :class:`envs.exploration.RandomPolicy`, ...).
        env_id: a gymnasium id of :func:`envs.make_vec`.
        path: the GIF to write; parent directories are created.
        seed: the env's seed (the episode recorded is the one seeded ``seed``).
        max_frames: the most frames kept, >= 1 (the recording stops there if the episode is
            longer).
        env_kwargs: kwargs of the env (e.g. ``max_episode_steps``).
        deterministic: greedy actions (True) or sampled.
        device: torch device of a batched env.
        fps: frames per second of the GIF, >= 1.
        scale: integer upscaling of every frame (nearest neighbour), >= 1.
        agent_meanings: the agent's action meanings; None: the target's own (as
            :func:`experiments.evaluation.evaluate_agent`).
        action_mapping: ``none`` or ``by_meaning`` (see :mod:`envs.actions`).

    Returns:
        ``path``. The GIF's frames are ``(H * scale, W * scale)`` RGB, the reset frame first
        and (where the observation has the rendering's size) the episode's last observation
        last.

    Raises:
        envs.errors.ReprlError: ``max_frames``, ``fps`` or ``scale`` below 1, a bad env id, or
            (before the first step) an agent whose observation or action space does not fit
            the target's (:func:`agents.space_check.check_agent_spaces`).
    """
    import envs
    from envs.errors import ReprlError

    for name, value in (("max_frames", max_frames), ("fps", fps), ("scale", scale)):
        if not isinstance(value, int) or value < 1:
            raise ReprlError(f"record_gif {name}: expected an integer >= 1, got {value!r}")
    from PIL import Image

    from agents.space_check import check_agent_spaces
    from envs.actions import MappedActions

    kwargs = dict(env_kwargs or {})
    venv = envs.make_vec(env_id, 1, seed=seed, device=device, info_factors=False, **kwargs)
    try:  # the agent's spaces (and meanings) against the target's, before the first step
        agent = model.loaded() if hasattr(model, "loaded") else model
        if check_agent_spaces(
            agent,
            venv,
            env_id,
            env_kwargs=kwargs,
            agent_meanings=agent_meanings,
            action_mapping=action_mapping,
        ):
            venv = MappedActions(venv, agent_meanings)
    except BaseException:
        venv.close()
        raise
    try:
        obs = venv.reset()
        frames = [_frame(venv, obs)]
        state, starts = None, np.ones(1, bool)  # a recurrent policy's state (else None)
        while len(frames) < max_frames:
            actions, state = model.predict(
                obs, state=state, episode_start=starts, deterministic=deterministic
            )
            obs, _, dones, infos = venv.step(actions)
            starts = dones
            if dones[0]:  # the env has reset: its last frame is the terminal observation
                last = infos[0].get("terminal_observation")
                if last is not None and _rgb(last).shape == frames[0].shape:
                    frames.append(_rgb(last))
                break
            frames.append(_frame(venv, obs))
    finally:
        venv.close()
    images = [Image.fromarray(f) for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    dest = Path(path)
    with atomic_path(dest) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
        )
    return dest


__all__ = ["record_gif"]
