"""The AtariARI probe (Anand et al. 2019, ``mila-iqia/atari-representation-learning``).

An encoder is scored by how well a *linear classifier* on its frozen features recovers each
ground-truth state variable, a RAM byte with 256 possible values, on held-out episodes of a
random agent. As their code does it (``atariari/benchmark/episodes.py``, ``probe.py``,
``utils.py``, ``label_preprocess.py``, ``methods/majority.py``; their argparser's defaults):

- **Episodes**: those of at most ``min_episode_length`` (64) frames are dropped; the rest are
  split by episode 70 / 10 / 20 into train / validation / test (at least 4 episodes). Test
  frames identical to a train or validation frame are dropped (``remove_duplicates``).
  Their code shuffles the episode indices with the seed and then slices the *unshuffled*
  list, so their split is in collection order; here the episodes are shuffled with the seed
  (what the shuffle was for: random-agent episodes are exchangeable either way).
- **Variables**: a variable whose label entropy over all kept frames is below 0.6 *nats*
  (``torch.distributions.Categorical(...).entropy()``, natural log) is dropped
  (``remove_low_entropy_labels``, before the split).
- **Probe**: per variable one ``nn.Linear(D, 256)``, cross-entropy, Adam (lr 3e-4, eps
  1e-5), ``ReduceLROnPlateau`` on the validation accuracy (mode max, patience 5, factor 0.2,
  min lr 1e-5), early stopping when the validation accuracy has not risen for 15 epochs, at
  most 100 epochs; the last weights are tested (their ``EarlyStopping`` saves none). An epoch
  is ``n_train // 64`` batches of 64 frames, each batch 64 episodes drawn uniformly with
  replacement and one uniform frame of each (their ``generate_batch``).
  The probes of all variables train at once here, as one stacked weight tensor with a
  per-variable Adam (Adam is elementwise: the same numbers as separate optimisers), so each
  variable keeps its own learning rate and stopping epoch. Two deliberate differences: the
  validation accuracy is taken on every validation frame (theirs: the mean over the batches
  of a random resample) and the test scores on every test frame once (theirs: a resample with
  replacement, one frame per drawn episode), so both are deterministic.
- **Score**: F1 with ``average="weighted"`` (sklearn's, as their ``compute_f1``: per-class F1
  weighted by the class's support in the test labels), per variable; the game's score is the
  mean over the kept variables, and (what the paper's tables report per game) the mean over
  their categories of the mean within each (:func:`atariari_categories`, their
  ``categorization.py``). The majority classifier (their ``majority.py``: the training
  split's most frequent value, predicted for every test frame) is scored the same way.

Their supervised row trains encoder and probe end to end on the probe's labels
(``FullySupervisedLinearProbe``); reprl's supervised encoder is pretrained on the factors,
then probed frozen like the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from envs.errors import ReprlError
from representations.metrics.data import FactorData, _check_latents, _to_plain

NUM_CLASSES = 256
"""Classes of every probe: the values of one RAM byte."""
ENTROPY_THRESHOLD = 0.6
"""Variables whose label entropy (nats) is below this are dropped."""
MIN_EPISODE_LENGTH = 64
"""Episodes of at most this many frames are dropped."""
EPOCHS = 100
PATIENCE = 15
BATCH_SIZE = 64
LR = 3e-4
ADAM_EPS = 1e-5
PLATEAU_PATIENCE, PLATEAU_FACTOR, MIN_LR = 5, 0.2, 1e-5
SPLIT = (0.7, 0.8)
"""Where validation and test start, as fractions of the kept episodes."""


def label_entropy(labels: np.ndarray) -> float:
    """Entropy in nats of the empirical distribution of ``labels``.

    Args:
        labels: ``(N,)`` values of one variable, ``N >= 1``.

    Returns:
        ``-sum_v p_v ln p_v`` over the distinct values ``v``, in ``[0, ln N]``.
    """
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 averaged over classes weighted by their support, as sklearn's ``average="weighted"``.

    Classes are those in ``y_true`` or ``y_pred``; a class's precision or recall whose
    denominator is 0 counts as 0 (sklearn's ``zero_division`` default, with its warning left
    out); classes absent from ``y_true`` weigh 0.

    Args:
        y_true: ``(N,)`` integer labels, ``N >= 1``.
        y_pred: ``(N,)`` integer predictions.

    Returns:
        The weighted F1 in ``[0, 1]``.
    """
    t, p = np.asarray(y_true).astype(np.int64), np.asarray(y_pred).astype(np.int64)
    if t.shape != p.shape or t.ndim != 1 or t.size == 0:
        raise ReprlError(f"weighted_f1: expected two (N,) arrays, N >= 1, got {t.shape}, {p.shape}")
    lo = min(int(t.min()), int(p.min()))
    t, p = t - lo, p - lo
    n = int(max(t.max(), p.max())) + 1
    support = np.bincount(t, minlength=n).astype(np.float64)
    predicted = np.bincount(p, minlength=n).astype(np.float64)
    tp = np.bincount(t[t == p], minlength=n).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    return float((f1 * support).sum() / support.sum())


def atariari_categories(name: str) -> list[str]:
    """The categories a variable counts in, by its name (their ``categorization.py``).

    ``small_object_localization`` (a position of a ball or missile),
    ``agent_localization`` (of the agent or player), ``other_localization`` (other
    positions: ``_x``, ``_y``, ``_z``, ``_column``), ``score_clock_lives_display`` and
    ``misc_keys`` (counts, existence bit maps, level / room / game state, directions).

    Args:
        name: A variable (factor column) name, such as ``"ball_x"``.

    Returns:
        The categories, possibly none.
    """
    n = name.lower()
    out = []
    if any(c in n for c in ("_x", "_y", "_z", "_column")):
        if any(s in n for s in ("ball", "missile")):
            out.append("small_object_localization")
        elif any(a in n for a in ("agent", "player")):
            out.append("agent_localization")
        else:
            out.append("other_localization")
    if any(s in n for s in ("score", "clock", "lives", "lifes", "meter", "display")):
        out.append("score_clock_lives_display")
    misc = ("count", "bit_map", "existence", "level", "room", "game_state", "direction")
    if any(s in n for s in misc):
        out.append("misc_keys")
    return out


def atariari_split(
    episode: np.ndarray, seed: int = 0, min_episode_length: int = MIN_EPISODE_LENGTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episode-disjoint 70 / 10 / 20 split of the episodes longer than ``min_episode_length``.

    Args:
        episode: ``(T,)`` integer episode id of every frame.
        seed: Seed of the episodes' order.
        min_episode_length: Episodes of at most this many frames are left out.

    Returns:
        ``(train, val, test)``: sorted int64 frame indices.

    Raises:
        ReprlError: Fewer than 4 long enough episodes (no non-empty three-way split).
    """
    episode = np.asarray(episode)
    ids, counts = np.unique(episode, return_counts=True)
    kept = ids[counts > min_episode_length]
    n = kept.size
    val_at, test_at = int(SPLIT[0] * n), int(SPLIT[1] * n)
    if not 0 < val_at < test_at < n:
        raise ReprlError(
            f"the AtariARI split needs at least 4 episodes longer than {min_episode_length} "
            f"frames (70/10/20 by episode), got {n} of {ids.size} episodes"
        )
    order = np.random.default_rng(seed).permutation(kept)
    parts = (order[:val_at], order[val_at:test_at], order[test_at:])
    return tuple(np.flatnonzero(np.isin(episode, p)) for p in parts)  # type: ignore[return-value]


def _episode_batches(episode: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``(n // batch_size, batch_size)`` row indices: each row ``batch_size`` episodes drawn
    uniformly with replacement, one uniform frame of each (their ``generate_batch``)."""
    order = np.argsort(episode, kind="stable")  # frames grouped by episode
    _, starts, lengths = np.unique(episode[order], return_index=True, return_counts=True)
    steps = len(episode) // batch_size
    ep = rng.integers(0, len(starts), size=(steps, batch_size))
    offset = (rng.random((steps, batch_size)) * lengths[ep]).astype(np.int64)
    return order[starts[ep] + offset]


def train_probes(
    x_train: np.ndarray,
    y_train: np.ndarray,
    episode_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    num_classes: int = NUM_CLASSES,
    epochs: int = EPOCHS,
    patience: int = PATIENCE,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Trains one linear classifier per variable on frozen features (module doc).

    Args:
        x_train: ``(N, D)`` features of the training frames.
        y_train: ``(N, V)`` integer labels in ``[0, num_classes)``, one column per variable.
        episode_train: ``(N,)`` episode ids of the training frames (batches draw episodes).
        x_val: ``(M, D)`` features of the validation frames.
        y_val: ``(M, V)`` their labels.
        num_classes: Classes of every probe.
        epochs: Most epochs, >= 1.
        patience: Epochs without a rise of the validation accuracy before a probe stops.
        batch_size: Frames per batch, >= 1 and at most ``N``.
        lr: Adam's initial learning rate.
        seed: Seed of the initial weights and the batches.
        device: Torch device of the training.

    Returns:
        ``(weight (V, D, K), bias (V, K), epochs_trained (V,))`` on the CPU.
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=dev)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=dev)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=dev)
    yv = torch.as_tensor(y_val, dtype=torch.long, device=dev)
    v, d = yt.shape[1], xt.shape[1]
    bound = 1.0 / d**0.5  # nn.Linear's initialisation
    w = ((torch.rand(v, d, num_classes, generator=gen) * 2 - 1) * bound).to(dev)
    b = ((torch.rand(v, num_classes, generator=gen) * 2 - 1) * bound).to(dev)
    params = [w.requires_grad_(), b.requires_grad_()]
    adam = _Adam(params, v, lr, dev)
    stop = _Stopping(v, patience)
    for _ in range(epochs):
        if stop.all_stopped():
            break
        active = torch.as_tensor(~stop.stopped, device=dev)
        for rows in _episode_batches(np.asarray(episode_train), batch_size, rng):
            idx = torch.as_tensor(rows, device=dev)
            logits = torch.einsum("nd,vdk->nvk", xt[idx], w) + b  # (B, V, K)
            loss = F.cross_entropy(logits.transpose(1, 2), yt[idx], reduction="none")
            loss.mean(0).sum().backward()  # each probe's own mean loss; gradients independent
            adam.step(active)
        stop.update(_accuracy(xv, yv, w.detach(), b.detach()), adam)
    return w.detach().cpu(), b.detach().cpu(), stop.epochs


@torch.no_grad()
def _predict(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """``(N, V)`` argmax classes of the probes ``w (V, D, K)``, ``b (V, K)`` on ``x (N, D)``."""
    out = [
        (torch.einsum("nd,vdk->nvk", x[i : i + chunk], w) + b).argmax(-1)
        for i in range(0, len(x), chunk)
    ]
    return torch.cat(out)


def _accuracy(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``(V,)`` accuracy of each probe on every row."""
    return (_predict(x, w, b) == y).float().mean(0).cpu().numpy()


class _Adam:
    """Adam (betas 0.9, 0.999; eps 1e-5) with a learning rate per variable (row 0 of each
    parameter) and updates only for the active variables."""

    def __init__(self, params: list[torch.Tensor], v: int, lr: float, dev: torch.device) -> None:
        self.params = params
        self.lr = np.full(v, float(lr))
        self.m = [torch.zeros_like(p) for p in params]
        self.s = [torch.zeros_like(p) for p in params]
        self.t = 0
        self.dev = dev

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        self.t += 1
        c1, c2 = 1 - 0.9**self.t, 1 - 0.999**self.t
        lr = torch.as_tensor(self.lr, dtype=torch.float32, device=self.dev) * active
        for p, m, s in zip(self.params, self.m, self.s):
            g = p.grad
            assert g is not None
            m.mul_(0.9).add_(g, alpha=0.1)
            s.mul_(0.999).addcmul_(g, g, value=0.001)
            shape = (-1,) + (1,) * (p.dim() - 1)
            p.sub_(lr.view(shape) * (m / c1) / ((s / c2).sqrt() + ADAM_EPS))
            p.grad = None


class _Stopping:
    """Per variable: early stopping on the validation accuracy (their ``EarlyStopping``) and
    ``ReduceLROnPlateau`` (mode max, relative threshold 1e-4, as torch's default)."""

    def __init__(self, v: int, patience: int) -> None:
        self.patience = patience
        self.stopped = np.zeros(v, dtype=bool)
        self.best = np.full(v, -np.inf)
        self.counter = np.zeros(v, dtype=np.int64)
        self.plateau_best = np.full(v, -np.inf)
        self.plateau_bad = np.zeros(v, dtype=np.int64)
        self.epochs = np.zeros(v, dtype=np.int64)

    def all_stopped(self) -> bool:
        return bool(self.stopped.all())

    def update(self, acc: np.ndarray, adam: _Adam) -> None:
        live = ~self.stopped
        self.epochs[live] += 1
        better = acc > self.best
        self.counter = np.where(live, np.where(better, 0, self.counter + 1), self.counter)
        self.best = np.where(live & better, acc, self.best)
        self.stopped |= live & (self.counter >= self.patience)
        sched = ~self.stopped & live
        improved = acc > self.plateau_best * (1 + 1e-4)
        self.plateau_best = np.where(sched & improved, acc, self.plateau_best)
        self.plateau_bad = np.where(sched & ~improved, self.plateau_bad + 1, 0)
        cut = sched & (self.plateau_bad > PLATEAU_PATIENCE)
        adam.lr = np.where(cut, np.maximum(adam.lr * PLATEAU_FACTOR, MIN_LR), adam.lr)
        self.plateau_bad[cut] = 0


def _labels(
    data: FactorData, factor_names: Sequence[str] | None, num_classes: int
) -> tuple[list[str], np.ndarray]:
    """The discrete columns as ``(names, (T, V) int64 labels)``, checked to be class ids."""
    columns, values, mask = data.factor_matrix(factor_names)
    names = [c for c, m in zip(columns, mask) if m]
    if not names:
        raise ReprlError(
            f"the AtariARI probe classifies discrete factors (RAM bytes); the dataset's factors "
            f"{columns} has none marked discrete"
        )
    y = values[:, mask]
    ok = (y == np.round(y)).all(0) & (y.min(0) >= 0) & (y.max(0) < num_classes)
    if not ok.all():
        bad = [n for n, good in zip(names, ok) if not good]
        raise ReprlError(
            f"AtariARI labels must be integers in [0, {num_classes}) (RAM byte values); "
            f"{bad} are not"
        )
    return names, y.astype(np.int64)


def _summary(f1: dict[str, float]) -> dict[str, Any]:
    """The mean over variables and over categories of ``name -> F1``."""
    cats: dict[str, list[float]] = {}
    for name, score in f1.items():
        for c in atariari_categories(name):
            cats.setdefault(c, []).append(score)
    means = {c: float(np.mean(s)) for c, s in cats.items()}
    return {
        "mean_f1": float(np.mean(list(f1.values()))) if f1 else None,
        "across_categories_f1": float(np.mean(list(means.values()))) if means else None,
        "categories": means,
    }


def atariari_probe(
    latents: np.ndarray,
    data: FactorData,
    *,
    frame_keys: np.ndarray | None = None,
    factor_names: Sequence[str] | None = None,
    entropy_threshold: float = ENTROPY_THRESHOLD,
    min_episode_length: int = MIN_EPISODE_LENGTH,
    epochs: int = EPOCHS,
    patience: int = PATIENCE,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    num_classes: int = NUM_CLASSES,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """The AtariARI probe of an encoder's features, and the majority classifier (module doc).

    Args:
        latents: ``(T, D)`` frozen features, one row per frame of ``data``.
        data: Labels (its discrete factors: RAM byte values, integers in ``[0, 256)``) and
            episode ids of the frames.
        frame_keys: ``(T,)`` a digest of every frame (equal frames, equal keys), to drop test
            frames that also occur in train or validation; ``None``: nothing dropped.
        factor_names: Factors to probe; ``None``: every discrete one.
        entropy_threshold: Variables whose label entropy (nats) is below it are dropped.
        min_episode_length: Episodes of at most this many frames are left out.
        epochs, patience, batch_size, lr: The probes' training (:func:`train_probes`).
        num_classes: Classes of every probe.
        seed: Seed of the split, the initial weights and the batches.
        device: Torch device of the probes' training.

    Returns:
        JSON-plain: ``per_variable`` (name -> ``f1``, ``accuracy``, ``majority_f1``,
        ``entropy``, ``epochs``, ``categories``), ``dropped`` (name -> its entropy, below the
        threshold), ``mean_f1``, ``across_categories_f1`` and ``categories`` (category -> mean
        F1) of the probes, ``majority`` (the same three of the majority classifier),
        ``split`` (episodes and frames of each part, ``test_duplicates_removed``) and
        ``settings``. Scores are in ``[0, 1]``.

    Raises:
        ReprlError: No discrete factors, labels that are no class ids, too few episodes,
            mismatched lengths or non-finite latents, or no variable above the threshold.
    """
    x = _check_latents(latents, data.num_samples).astype(np.float32)
    names, y = _labels(data, factor_names, num_classes)
    train, val, test = atariari_split(data.episode, seed, min_episode_length)
    kept_rows = np.concatenate([train, val, test])
    entropy = {n: label_entropy(y[kept_rows, j]) for j, n in enumerate(names)}
    keep = [j for j, n in enumerate(names) if entropy[n] >= entropy_threshold]
    if not keep:
        raise ReprlError(
            f"no AtariARI variable has a label entropy >= {entropy_threshold} nats: {entropy}"
        )
    n_test = test.size
    if frame_keys is not None:
        keys = np.asarray(frame_keys)
        if keys.shape != (data.num_samples,):
            raise ReprlError(f"frame_keys: expected shape ({data.num_samples},), got {keys.shape}")
        test = test[~np.isin(keys[test], keys[np.concatenate([train, val])])]
    if test.size == 0:
        raise ReprlError("every test frame also occurs in the train or validation episodes")
    w, b, trained = train_probes(
        x[train], y[train][:, keep], data.episode[train], x[val], y[val][:, keep],
        num_classes=num_classes, epochs=epochs, patience=patience,
        batch_size=min(batch_size, train.size), lr=lr, seed=seed, device=device,
    )  # fmt: skip
    pred = _predict(torch.from_numpy(x[test]), w, b).numpy()
    per: dict[str, dict[str, Any]] = {}
    for i, j in enumerate(keep):
        values, counts = np.unique(y[train, j], return_counts=True)
        majority = np.full(test.size, values[np.argmax(counts)])
        truth = y[test, j]
        per[names[j]] = {
            "f1": weighted_f1(truth, pred[:, i]),
            "accuracy": float((truth == pred[:, i]).mean()),
            "majority_f1": weighted_f1(truth, majority),
            "entropy": entropy[names[j]],
            "epochs": int(trained[i]),
            "categories": atariari_categories(names[j]),
        }
    return _to_plain(
        {
            "per_variable": per,
            "dropped": {n: e for n, e in entropy.items() if e < entropy_threshold},
            **_summary({n: r["f1"] for n, r in per.items()}),
            "majority": _summary({n: r["majority_f1"] for n, r in per.items()}),
            "split": {
                "episodes": [int(np.unique(data.episode[p]).size) for p in (train, val, test)],
                "frames": [int(train.size), int(val.size), int(test.size)],
                "test_duplicates_removed": int(n_test - test.size),
            },
            "settings": {
                "entropy_threshold": entropy_threshold,
                "min_episode_length": min_episode_length,
                "epochs": epochs,
                "patience": patience,
                "batch_size": batch_size,
                "lr": lr,
                "num_classes": num_classes,
                "seed": seed,
            },
        }
    )
