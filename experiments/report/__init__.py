"""Zero-shot transfer report: returns and normalised scores with CIs, comparisons, plots.

Reads the artefacts of the probe, train and evaluate stages from one or more roots and writes
``report.md``, ``results.csv``, ``runs.csv``, ``encoders.csv`` (where there are probe results),
``learning_curves.png`` and ``zero_shot.png``.
Modules: :mod:`~experiments.report.reading` (the file contract below),
:mod:`~experiments.report.tables` (numbers), :mod:`~experiments.report.provenance`,
:mod:`~experiments.report.markdown`, :mod:`~experiments.report.plots`,
:mod:`~experiments.report.build` (:func:`build_report`); the command line is ``reprl report``
(:mod:`experiments.cli`).

File contract
-------------
A *run* is one agent trained with one seed. Its name on disk is the *stem*
``<agent_slug>__<seed>``, where ``seed`` is a (possibly negative) integer and ``agent_slug`` is
the agent name with every run of characters outside ``[A-Za-z0-9._-]`` replaced by ``-``
(:func:`agent_slug`; a name such as ``beta_vae_dae/frozen`` becomes ``beta_vae_dae-frozen``,
a plain name such as ``pixels`` is unchanged). :func:`run_stem` builds stems. The stem is split
at its last ``__``.

Each ``ROOT`` may hold ``ROOT/eval/`` and ``ROOT/train/``; several roots merge into one report.

``ROOT/eval/<stem>.csv`` (required for a run to appear in the tables): UTF-8 CSV, one row per
evaluation episode, with a header containing at least these columns (order free, extra columns
ignored)::

    agent,seed,env_id,episode,return,length,deterministic

- ``agent``: the agent name, the same on every row, with ``agent_slug(agent)`` equal to the
  stem's slug; this is the name shown in the report. Two names are special: ``random``, the
  uniform-random reference (its mean return is ``R_min``; it must be evaluated with the same
  episodes and env seeds as the agents), and ``pixels``, the default baseline.
- ``seed``: integer training seed, equal to the stem's seed on every row.
- ``env_id``: gymnasium id of the evaluation env (the source env itself included).
- ``episode``: integer episode index; unique per ``(env_id, deterministic)``.
- ``return``: finite float, undiscounted episode return.
- ``length``: integer episode length in steps.
- ``deterministic``: ``true`` or ``false`` (case-insensitive): greedy or sampled actions.

``ROOT/eval/<stem>.json`` (required next to every CSV): a JSON object, the provenance of the
evaluation. Keys the report reads (all optional; absent: ``unknown`` or defaults):

- ``config.evaluate.env_kwargs``: the kwargs every evaluation env was made with; passed to
  ``envs.best_return(env_id, **env_kwargs)`` for ``R_max`` (must agree across runs).
- ``train``: the training provenance (a copy of ``train/<stem>/provenance.json``), with
  ``train.pretraining_domains``: the env ids the encoder was pretrained on (a list), or
  ``null`` for an agent without encoder; and ``train.budget``: ``{"kind": "steps" |
  "seconds", "value": number, "env_steps": int, "seconds": float}``, the budget every agent
  trained with (equal env steps or equal wall-clock seconds) and what this run took. Where the
  eval JSON has no ``train`` entry with these keys, ``train/<stem>/provenance.json`` is read.

``ROOT/train/<stem>/`` (optional; feeds the learning curves), a directory holding:

- ``metrics.jsonl``: one JSON object per line; lines having both ``"global_step"`` (int, env
  steps so far) and ``"charts/episodic_return"`` (float) are the learning curve, other lines
  (other metrics) are ignored; blank lines are ignored; at least one curve line is required.
- ``provenance.json``: a JSON object (config, encoder path and sha256, dataset, version, ...).
  Its ``agent`` entry, a string or an object with a ``name``, names the agent; otherwise the
  name comes from the evaluation CSV of the same stem, otherwise the slug is shown.

``ROOT/probe/<encoder>.json`` (optional; feeds the Encoders section and ``encoders.csv``; a
report without these files has neither): one JSON object per pretrained encoder, as the
pipeline's probe stage writes it (:func:`experiments.pipeline.stage_probe`: the results of
:func:`representations.analysis.probe` plus the keys below). Files named ``*.stage.json`` are
the stage's own records and are ignored. Keys the report reads (all but ``encoder`` optional;
an absent or ``null`` number is shown as ``—``):

- ``encoder``: non-empty string, the encoder's name in its experiment.
- ``method`` (string), ``latent_dim`` (int), ``active_latents``: ``{"active", "latent_dim",
  "variational"}`` as pretraining measured them, or ``null``.
- ``checkpoint``: ``{"path", "sha256"}`` of the checkpoint scored, ``path`` relative to
  ``ROOT``. Agents whose training provenance's ``encoder.sha256`` equals it are listed with the
  encoder. Where ``ROOT/<path>`` exists with another sha256, the encoder was retrained after
  it was scored: the file is left out, and the report says so.
- ``n_samples``, ``n_episodes``: frames and episodes scored.
- ``probe``: ``{"per_factor": {factor: {"metric": "r2" | "macro_f1", "score": float | null,
  ...}}, "mean_r2", "mean_f1"}`` (factors as the dataset names its columns, ``ball_x[0]``).
- ``mig`` (float), ``dci``: ``{"disentanglement", "completeness", "informativeness"}``,
  ``factor_vae``: ``{"score"}``.
- ``segmentation``: ``{"ari", "fg_ari", "frames", "env_id"}`` for an encoder that decomposes
  frames into masks, or ``{"skipped": reason, "env_id"}``.
- ``prediction``: ``{"acc_k1", ..., "chance", "loss", "frames", "policy"}`` for an encoder that
  learns from sequences (CPC), its own objective on fresh episodes, or ``{"skipped": reason}``.
- ``rendering``: ``{"mse", "baseline_mse", "ratio", "scenes", "context_views", "env_ids"}``
  for an encoder that learns from scenes (GQN): the last view of fresh scenes rendered from
  the others, beside the mean-of-context baseline; or ``{"skipped": reason}``.
- ``skipped``: why the factor metrics were not computed (a dataset without factors).

The same encoder name in two roots is read once if the files are byte-identical; otherwise
each is shown as ``<root directory name>/<encoder>``.

Provenance summaries look, breadth-first through the run's eval JSON and train
``provenance.json``, for the keys ``encoder`` and ``dataset`` (an object with ``path`` and
``sha256``, or a string; ``null`` means none), ``config_hash`` (otherwise the first 16 hex
digits of the sha256 of the JSON are shown, marked ``(computed)``) and
``reprl_version``/``library_version``/``version``.

The same stem in two roots is read once if the CSVs are byte-identical and is an error
otherwise (give runs of different configs different agent names). A malformed or missing file
raises :class:`ReportError` (a :class:`envs.errors.ReprlError`) naming the file and what was
expected.

Scores
------
Episode returns are averaged per training seed; the seeds are the runs. Per env (and mode), the
min-max normalised score is ``(R - R_min) / (R_max - R_min)``: ``R_min`` the mean return of the
``random`` run on that env (same mode; if it has none, the other mode: a uniform-random policy
ignores the mode), ``R_max = envs.best_return(env_id, **env_kwargs)``. It is ``n/a``, with the
reason, where either is unknown or ``R_max - R_min`` is not clearly positive
(:func:`experiments.stats.normalisation_problem`). The aggregate is over the target envs (all
envs but the source; all envs if no source is given) whose score is defined. Every agent but
``random`` and the baseline is compared with the baseline: the difference of normalised scores
(paired by seed when both agents have the same seeds, else unpaired) and the probability of
improvement ``P(agent > baseline)`` (rliable), per target and over targets. IQMs are shown only
where the 25% trim removes something (at least 4 scores); otherwise the report says why.

Outputs (in ``out_dir``, each written to a temporary name and renamed)
-----------------------------------------------------------------------
``report.md``: the agents (seeds, encoder pretraining data, budget and env steps taken); the
encoders, if probed (one row each: method, active latents, probe score per factor, ``ball_x``,
``ball_y`` and ``paddle*`` first, at most 8 factors, those scored for some encoder; mean R^2,
MIG, DCI disentanglement, ARI and FG-ARI where computed; the agents trained on each with their
aggregate normalised score, deterministic mode if evaluated); per evaluation mode present
(deterministic, then stochastic): mean return [95% CI] per agent (rows) and env (columns,
source first), the IQM where it differs, the normalisation constants and the
normalised scores, their aggregate over targets, and the comparisons with the baseline. Then the
plots, final training returns, a provenance summary per run and every input file with its
sha256. No absolute path appears (paths relative to the report's directory or a root).

``learning_curves.png``: per agent, mean over seeds of the episodic return smoothed by a
trailing mean over 10 episodes vs ``global_step`` on a common grid, min-max band over seeds.
``zero_shot.png``: one panel per (mode, env), each with its own y axis: a bar per agent (mean
return, 95% CI), ``R_min`` dashed and ``R_max`` dotted.

``results.csv`` columns: ``agent,env_id,deterministic,statistic,point,ci_low,ci_high,
num_seeds,num_episodes,baseline,baseline_num_seeds,pairing,note``. ``statistic``: ``mean``,
``iqm`` (return over seeds per env; ``iqm`` only with >= 4 seeds), ``normalised_mean``,
``normalised_iqm`` (per env, and on rows with ``env_id`` ``aggregate`` over targets; a ``nan``
``normalised_mean`` carries the reason in ``note``; an aggregate's ``note`` lists its targets),
``normalised_mean_diff`` and ``prob_improvement`` (against ``baseline``, per target and
``aggregate``; ``pairing``: ``paired`` or ``unpaired`` for a difference, always ``unpaired``
for ``prob_improvement``, which is over all pairs of seeds). Undefined values are ``nan``; the
comparison columns are empty on other rows.

``runs.csv`` columns: ``agent,seed,encoder_pretraining,target_seen,budget_kind,budget_value,
env_steps,train_seconds,encoder_active_latents`` (one row per evaluated run; ``unknown`` or an
empty cell where the run's files do not say; active latents as ``a / d``, ``none`` without an
encoder).

``encoders.csv`` columns: ``encoder,method,latent_dim,active_latents,frames,episodes,mean_r2,
mean_f1,mig,dci_disentanglement,dci_completeness,dci_informativeness,factor_vae,ari,fg_ari,
segmentation_frames,segmentation_env,pred_acc_k1,pred_chance,render_mse,render_baseline_mse,
agents,zero_shot_normalised,checkpoint_sha256,note``, then
one column ``<metric>:<factor>`` per probed factor (``r2:ball_x[0]``, ``macro_f1:lives``), in
the table's order. One row per encoder whose probe file is not outdated; an empty cell: not
computed or undefined. ``agents``: ``;``-separated names; ``zero_shot_normalised``:
``agent=score`` pairs (``nan``: no aggregate); ``note``: why the factor metrics, the
segmentation, the prediction or the rendering scores were not computed.

Statistics are those of :mod:`experiments.stats`: 95% percentile bootstrap intervals over
seeds (stratified by env for aggregates).
"""

from experiments.report.build import RUN_COLUMNS, best_returns, build_report
from experiments.report.plots import learning_curves, plot_learning_curves, plot_zero_shot
from experiments.report.provenance import PathDisplay, summarise_provenance
from experiments.report.reading import (
    EVAL_COLUMNS,
    EncoderProbe,
    EvalRun,
    InputFile,
    NoEpisodesError,
    ReportError,
    TrainRun,
    agent_slug,
    discover,
    discover_probes,
    read_eval_run,
    read_probe,
    read_train_run,
    run_stem,
)
from experiments.report.tables import (
    AGGREGATE_ENV,
    BASELINE_AGENT,
    ENCODER_COLUMNS,
    REFERENCE_AGENT,
    RESULT_COLUMNS,
    Cell,
    Comparison,
    ModeTables,
    Normaliser,
    compute_tables,
    encoder_rows,
    order_factors,
    result_rows,
)

__all__ = [
    "AGGREGATE_ENV",
    "BASELINE_AGENT",
    "ENCODER_COLUMNS",
    "EVAL_COLUMNS",
    "REFERENCE_AGENT",
    "RESULT_COLUMNS",
    "RUN_COLUMNS",
    "Cell",
    "Comparison",
    "EncoderProbe",
    "EvalRun",
    "InputFile",
    "ModeTables",
    "NoEpisodesError",
    "Normaliser",
    "PathDisplay",
    "ReportError",
    "TrainRun",
    "agent_slug",
    "best_returns",
    "build_report",
    "compute_tables",
    "discover",
    "discover_probes",
    "encoder_rows",
    "learning_curves",
    "order_factors",
    "plot_learning_curves",
    "plot_zero_shot",
    "read_eval_run",
    "read_probe",
    "read_train_run",
    "result_rows",
    "run_stem",
    "summarise_provenance",
]
