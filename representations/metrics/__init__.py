"""Scores for learned representations against ground-truth generative factors.

Metrics see only an ``encode`` callable (or latents it produced) and a :class:`FactorData`
holding frames and factors; they never import a model (as in disentanglement_lib's
``evaluation/metrics``). One module per metric family; everything is importable from here:

- :mod:`~representations.metrics.data`: :class:`FactorData`, :func:`encode_all`,
  :func:`episode_split` (held-out episodes), the shared input checks.
- :mod:`~representations.metrics.probes`: :func:`linear_probe`, AtariARI-style probes (Anand et
  al. 2019): ridge R^2 for continuous factors, logistic-regression macro-F1 for discrete ones,
  fitted on training episodes and scored on held-out episodes.
- :mod:`~representations.metrics.atariari`: :func:`atariari_probe`, the AtariARI benchmark's own
  protocol (Anand et al. 2019): a linear classifier per RAM byte (256 classes) trained with
  Adam and early stopping on frozen features, episodes split 70/10/20, weighted F1, variables
  of label entropy below 0.6 nats dropped, the majority classifier beside it;
  :func:`weighted_f1`, :func:`label_entropy`.
- :mod:`~representations.metrics.information`: :func:`mig`, the Mutual Information Gap (Chen et
  al. 2018) as in disentanglement_lib, with :func:`histogram_discretise`,
  :func:`discrete_entropy` and :func:`discrete_mutual_info`.
- :mod:`~representations.metrics.importance`: :func:`dci` (Eastwood & Williams 2018) from a
  random-forest or lasso importance matrix, and :func:`dci_from_importance`.
- :mod:`~representations.metrics.factor_vae`: :func:`factor_vae_score` (Kim & Mnih 2018),
  adapted to observational data.
- :mod:`~representations.metrics.activity`: :func:`latent_activity`, active units (Burda et
  al. 2016: a latent whose code varies over the data), and :func:`collapse_warning`.
- :mod:`~representations.metrics.evaluation`: :func:`evaluate`, one entry point running any
  subset of :data:`METRICS` with JSON-plain output.
- :mod:`~representations.metrics.table`: :func:`format_table`, that output as plain text.

Bad input (missing factors, mismatched lengths, NaN latents) raises
:class:`envs.errors.ReprlError` naming what was expected and what came.
"""

from representations.metrics.activity import (
    ACTIVE_THRESHOLD,
    collapse_warning,
    latent_activity,
)
from representations.metrics.atariari import atariari_probe, label_entropy, weighted_f1
from representations.metrics.data import EncodeFn, FactorData, encode_all, episode_split
from representations.metrics.evaluation import METRICS, evaluate
from representations.metrics.factor_vae import factor_vae_score
from representations.metrics.importance import dci, dci_from_importance
from representations.metrics.information import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretise,
    mig,
)
from representations.metrics.probes import linear_probe
from representations.metrics.table import format_table

__all__ = [
    "ACTIVE_THRESHOLD",
    "METRICS",
    "EncodeFn",
    "FactorData",
    "atariari_probe",
    "collapse_warning",
    "dci",
    "dci_from_importance",
    "discrete_entropy",
    "discrete_mutual_info",
    "encode_all",
    "episode_split",
    "evaluate",
    "factor_vae_score",
    "format_table",
    "histogram_discretise",
    "label_entropy",
    "latent_activity",
    "linear_probe",
    "mig",
    "weighted_f1",
]
