"""Source/target task families with known structure, for weighted meta-learning (alpha-MAML).

Every family returns the same padded layout (N source tasks, T targets):

  source_x [N, n_max, dx], source_y [N, n_max, 1], source_mask [N, n_max]  (1 = real sample)
  source_group [N]                     the source's true cluster / environment (for reports)
  support_x [T, k_shot, dx], support_y [T, k_shot, 1]   the target's few labelled samples S_T
  query_x [T, m_max, dx], query_y [T, m_max, 1], query_mask [T, m_max]   held-out target samples
  target_group [T]
  allowed [T, N] bool                  sources that may be used for this target
  oracle [T, N]                        uniform weights on the allowed sources of the right group

Families:
  * clustered sinusoids: y = A sin(x - phi) with (A, phi) drawn from one of a few boxes
    ("clusters"); sources from all clusters, each target from one cluster.
  * wheat: CIMMYT wheat lines (599 lines, 1279 markers, 4 environments). Lines are split into
    genetic groups by k-means on the top marker principal components; a task is one
    (environment, group) pair, inputs are the standardised principal components, the output is
    the line's yield in that environment. A target is one task with k labelled lines; the
    other lines of that task are its query set; its own task is excluded from the sources and
    the "oracle" weights sit on the other groups of the same environment.
"""

import numpy as np

from metanas.data import npz

# (amplitude low, amplitude high, phase low, phase high) per cluster.
CLUSTER_SETS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "three": ((1.0, 2.0, 0.0, 0.4), (3.0, 4.0, 1.4, 1.8), (4.0, 5.0, 2.7, 3.1)),
    "two": ((1.0, 2.0, 0.0, 0.4), (4.0, 5.0, 2.7, 3.1)),
    "homogeneous": ((3.0, 4.0, 1.4, 1.8),),
}
X_RANGE = (-5.0, 5.0)


def _sinusoid(rng, amp, phase, n):
  """[T, n, 1] inputs and outputs of y = A sin(x - phi) for each (A, phi)."""
  x = rng.uniform(*X_RANGE, size=(amp.shape[0], n, 1)).astype(np.float32)
  return x, (amp[:, None, None] * np.sin(x - phase[:, None, None])).astype(np.float32)


def _params(rng, boxes, groups):
  box = np.asarray(boxes, np.float64)[groups]
  amp = rng.uniform(box[:, 0], box[:, 1]).astype(np.float32)
  phase = rng.uniform(box[:, 2], box[:, 3]).astype(np.float32)
  return amp, phase


def _oracle(allowed: np.ndarray, source_group: np.ndarray, target_group: np.ndarray) -> np.ndarray:
  w = allowed & (source_group[None, :] == target_group[:, None])
  if not np.all(w.any(axis=1)):
    raise ValueError("Some target has no allowed source in its own group; use more sources per "
                     "group.")
  return w / w.sum(axis=1, keepdims=True)


def sinusoid_clusters(rng: np.random.Generator, cluster_set: str, sources_per_cluster: int,
                      samples_per_source: int, num_targets: int, k_shot: int,
                      num_query: int) -> dict[str, np.ndarray]:
  """Clustered sinusoid sources and targets (layout in the module docstring).

  Args:
    rng: NumPy generator (the only randomness).
    cluster_set: key of `CLUSTER_SETS`.
    sources_per_cluster: source tasks drawn from each cluster.
    samples_per_source: n_i, labelled samples per source task.
    num_targets: targets, each from a uniformly drawn cluster.
    k_shot: labelled target samples; num_query: held-out target samples.
  """
  if cluster_set not in CLUSTER_SETS:
    raise ValueError(f"Unknown cluster_set {cluster_set!r}; choose one of "
                     f"{', '.join(CLUSTER_SETS)}.")
  if min(sources_per_cluster, samples_per_source, num_targets, k_shot, num_query) < 1:
    raise ValueError("sources_per_cluster, samples_per_source, num_targets, k_shot and num_query "
                     "must all be >= 1.")
  boxes = CLUSTER_SETS[cluster_set]
  source_group = np.repeat(np.arange(len(boxes)), sources_per_cluster)
  amp, phase = _params(rng, boxes, source_group)
  source_x, source_y = _sinusoid(rng, amp, phase, samples_per_source)
  target_group = rng.integers(0, len(boxes), size=num_targets)
  t_amp, t_phase = _params(rng, boxes, target_group)
  tx, ty = _sinusoid(rng, t_amp, t_phase, k_shot + num_query)
  allowed = np.ones((num_targets, source_group.shape[0]), bool)
  return dict(source_x=source_x, source_y=source_y,
              source_mask=np.ones(source_x.shape[:2], np.float32), source_group=source_group,
              support_x=tx[:, :k_shot], support_y=ty[:, :k_shot],
              query_x=tx[:, k_shot:], query_y=ty[:, k_shot:],
              query_mask=np.ones((num_targets, num_query), np.float32),
              target_group=target_group, allowed=allowed,
              oracle=_oracle(allowed, source_group, target_group).astype(np.float32),
              source_amplitude=amp, source_phase=phase, target_amplitude=t_amp,
              target_phase=t_phase)


def wheat_structure(arrays: dict[str, np.ndarray], num_components: int, num_groups: int,
                    seed: int = 0) -> dict[str, np.ndarray]:
  """Principal-component inputs and k-means genetic groups of the wheat lines (deterministic).

  Returns:
    dict with features [lines, num_components] (standardised PC scores), group [lines],
    yields [lines, environments].
  """
  from sklearn.cluster import KMeans  # pylint: disable=g-import-not-at-top

  x = np.asarray(arrays["X"], np.float64)
  x = x - x.mean(axis=0)
  u, s, _ = np.linalg.svd(x, full_matrices=False)
  pcs = u[:, :num_components] * s[:num_components]
  pcs = (pcs - pcs.mean(0)) / pcs.std(0)
  groups = KMeans(num_groups, n_init=4, random_state=seed).fit_predict(pcs)
  return dict(features=pcs.astype(np.float32), group=groups.astype(np.int64),
              yields=np.asarray(arrays["Y"], np.float32))


def wheat_tasks(rng: np.random.Generator, structure: dict[str, np.ndarray], num_targets: int,
                k_shot: int) -> dict[str, np.ndarray]:
  """(environment, genetic group) tasks of the wheat lines (layout in the module docstring).

  Source task e * G + g holds every line of group g with its yield in environment e. A target is a
  random task with `k_shot` random labelled lines; its other lines are the query set.
  """
  feats, group, yields = structure["features"], structure["group"], structure["yields"]
  num_env, num_groups = yields.shape[1], int(group.max()) + 1
  members = [np.flatnonzero(group == g) for g in range(num_groups)]
  n_max = max(len(m) for m in members)
  if min(len(m) for m in members) <= k_shot:
    raise ValueError(f"A genetic group has <= k_shot={k_shot} lines; use fewer groups.")
  num_tasks = num_env * num_groups
  dx = feats.shape[1]
  source_x = np.zeros((num_tasks, n_max, dx), np.float32)
  source_y = np.zeros((num_tasks, n_max, 1), np.float32)
  source_mask = np.zeros((num_tasks, n_max), np.float32)
  source_group = np.zeros(num_tasks, np.int64)  # The environment (what the oracle matches).
  for e in range(num_env):
    for g, idx in enumerate(members):
      t = e * num_groups + g
      source_x[t, :len(idx)] = feats[idx]
      source_y[t, :len(idx), 0] = yields[idx, e]
      source_mask[t, :len(idx)] = 1.0
      source_group[t] = e
  target_task = rng.integers(0, num_tasks, size=num_targets)
  m_max = n_max - k_shot
  sx = np.zeros((num_targets, k_shot, dx), np.float32)
  sy = np.zeros((num_targets, k_shot, 1), np.float32)
  qx = np.zeros((num_targets, m_max, dx), np.float32)
  qy = np.zeros((num_targets, m_max, 1), np.float32)
  qmask = np.zeros((num_targets, m_max), np.float32)
  for i, t in enumerate(target_task):
    e, g = divmod(int(t), num_groups)
    idx = rng.permutation(members[g])
    sup, qry = idx[:k_shot], idx[k_shot:]
    sx[i], sy[i, :, 0] = feats[sup], yields[sup, e]
    qx[i, :len(qry)], qy[i, :len(qry), 0], qmask[i, :len(qry)] = feats[qry], yields[qry, e], 1.0
  allowed = np.ones((num_targets, num_tasks), bool)
  allowed[np.arange(num_targets), target_task] = False
  target_group = source_group[target_task]
  return dict(source_x=source_x, source_y=source_y, source_mask=source_mask,
              source_group=source_group, support_x=sx, support_y=sy, query_x=qx, query_y=qy,
              query_mask=qmask, target_group=target_group, allowed=allowed,
              oracle=_oracle(allowed, source_group, target_group).astype(np.float32),
              target_task=target_task)


def load_wheat(data_dir: str | None, num_components: int, num_groups: int) -> dict:
  """Reads wheat.npz (raises npz.DataError with the fix if missing) and builds its structure."""
  return wheat_structure(npz.load("wheat", data_dir), num_components, num_groups)
