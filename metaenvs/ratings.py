"""Rating prediction, one user per task: the protocol of A-MAML (Li et al., AISTATS 2023).

Preprocessing, for Jester-1, MovieLens-100K, MovieLens-1M and any ``user,item,rating`` CSV:

1. keep the ``top_items`` (100) most-rated items (ties broken by the smaller item id);
2. keep the users with at least ``max(min_ratings, shots + query)`` ratings among them (a task
   needs ``shots`` ratings to adapt on and ``query`` to be scored on; ``min_ratings`` is 20);
3. hold out ``test_tasks`` (100) and ``val_tasks`` (50) users, chosen by the seed; the rest
   are the meta-train users;
4. the input is the one-hot code of the item (``top_items`` wide); the target is the rating
   z-scored with **one** scaler (mean and std) fitted on the meta-train users' ratings.

Each task draws, with a generator seeded by (seed, user) and recorded in its params as ``draw_seed``
(with the scaler's ``y_mean`` / ``y_std``, so a task's params alone decide its data), ``shots``
support ratings and ``query`` other ratings: the agent learns on the support set and is scored on the
query set (which is also the set meta-learners use for their outer loss on train users).

**Metric** ``nrmse``: the RMSE of the z-scored ratings, i.e. ``RMSE / std`` in rating units,
where ``std`` is the meta-train scaler's. A-MAML's released code fits its one
``StandardScaler`` on every task, test users included; we fit it on meta-train users only so
that no test rating leaks into training. The difference in the scaler is small (see
``y_moments()``), but numbers are not bit-comparable.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from metaenvs.core import SupervisedData, SupervisedTaskDistribution, Task
from metaenvs.data.formats import read_ratings_csv
from metaenvs.data.tables import ratings
from metaenvs.errors import DataError, InvalidArgumentError
from metaenvs.protocol import Protocol
from metaenvs.seeding import derive_seed
from metaenvs.validation import positive_int


class RatingsDistribution(SupervisedTaskDistribution):
    """Base class: subclasses implement :meth:`_table` (users, items, ratings in long form).

    Args:
        shots: Support ratings per user (the agent learns on these).
        query: Scored ratings per user (the query set).
        top_items: Keep this many most-rated items.
        min_ratings: Fewest ratings among those items a user needs (raised to ``shots + query``).
        test_tasks: Held-out users.
        val_tasks: Validation users.
        data_dir: Data folder.
        seed: Chooses the held-out users and each task's support/val draw.
    """

    meta_defaults: ClassVar = {"leap": {"meta_lr": 0.01}, "cts": {"meta_lr": 0.01}, "imaml": {"reg": 5.0}}
    """Leap's and CTS's default SGD meta steps (0.1 and 1.0) diverge within 50 meta steps on Jester-1
    (an inner loss of inf from the drifted initialization); 0.01 trains both (held-out nRMSE 0.68 and
    0.69 against scratch's 0.78 after 50 meta steps of 3 users, on 5 held-out users). iMAML's
    ``I + H/reg`` is positive definite at the initial parameters for ``reg=1`` (smallest eigenvalue
    0.20 on 6 users) but turns indefinite for a user within 50 meta steps (conjugate gradient refuses
    it); at ``reg=5`` the smallest eigenvalue at the start is 0.74."""

    renamed_kwargs: ClassVar = {"val": "query", "test_users": "test_tasks", "val_users": "val_tasks"}

    def __init__(
        self,
        shots: int = 10,
        query: int = 15,
        top_items: int = 100,
        min_ratings: int = 20,
        test_tasks: int = 100,
        val_tasks: int = 50,
        data_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.shots = positive_int("shots", shots)
        self.query = positive_int("query", query)
        self.top_items = positive_int("top_items", top_items)
        self.min_ratings = max(positive_int("min_ratings", min_ratings), self.shots + self.query)
        self.test_tasks = positive_int("test_tasks", test_tasks)
        self.val_tasks = positive_int("val_tasks", val_tasks)
        self.data_dir = data_dir
        self._prepared: dict[str, Any] | None = None

    @abstractmethod
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ratings in long form: ``(users, items, values)``, one entry per rating."""

    def _prepare(self) -> dict[str, Any]:
        if self._prepared is not None:
            return self._prepared
        users, items, values = self._table()
        item_ids, counts = np.unique(items, return_counts=True)
        top = item_ids[np.lexsort((np.arange(len(item_ids)), -counts))[: self.top_items]]
        keep = np.isin(items, top)
        users, items, values = users[keep], items[keep], values[keep]
        item_index = {item: i for i, item in enumerate(top.tolist())}
        by_user: dict[Any, dict[int, float]] = {}
        for u, it, r in zip(users.tolist(), items.tolist(), values.tolist(), strict=True):
            by_user.setdefault(u, {})[item_index[it]] = r  # a repeated (user, item) keeps the last
        eligible = sorted(u for u, rs in by_user.items() if len(rs) >= self.min_ratings)
        needed = self.test_tasks + self.val_tasks + 1
        if len(eligible) < needed:
            raise DataError(
                f"{self.id}: only {len(eligible)} users have {self.min_ratings}+ ratings among the top "
                f"{self.top_items} items; {needed} are needed. Lower test_tasks/val_tasks or min_ratings."
            )
        order = np.random.default_rng(derive_seed(self.seed, "users")).permutation(len(eligible))
        chosen = [eligible[i] for i in order]
        splits = {
            "test": sorted(chosen[: self.test_tasks]),
            "val": sorted(chosen[self.test_tasks : needed - 1]),
            "train": sorted(chosen[needed - 1 :]),
        }
        train_ratings = np.array([r for u in splits["train"] for r in by_user[u].values()])
        self._prepared = {
            "by_user": by_user,
            "splits": splits,
            "moments": (float(train_ratings.mean()), float(train_ratings.std())),
            "items": top.tolist(),
        }
        return self._prepared

    def y_moments(self) -> tuple[float, float]:
        """Mean and std of the meta-train users' ratings: the one scaler of every task."""
        return self._prepare()["moments"]

    def _split_sizes(self) -> dict[str, int | None]:
        return {s: len(users) for s, users in self._prepare()["splits"].items()}

    def _finite_task(self, split: str, index: int) -> tuple[str, dict[str, Any]]:
        prepared = self._prepare()
        user = prepared["splits"][split][index]
        mean, std = prepared["moments"]
        draw = derive_seed(self.seed, "task", str(user))
        return f"user{user}", {"user": user, "draw_seed": draw, "y_mean": mean, "y_std": std}

    def load_task(self, task: Task) -> SupervisedData:
        task = self.check_task(task)
        prepared = self._prepare()
        user_ratings = prepared["by_user"].get(task.params["user"])
        if user_ratings is None:
            raise InvalidArgumentError(f"User {task.params['user']!r} is not among {self.id}'s users.")
        items = np.array(sorted(user_ratings))
        rng = np.random.default_rng(int(task.params["draw_seed"]))  # the task's params decide its data
        picked = items[rng.permutation(len(items))[: self.shots + self.query]]
        mean, std = float(task.params["y_mean"]), float(task.params["y_std"])
        x = torch.nn.functional.one_hot(torch.as_tensor(picked), self.top_items).to(torch.float32)
        y = torch.tensor([(user_ratings[int(i)] - mean) / std for i in picked], dtype=torch.float32)[:, None]
        k = self.shots
        return SupervisedData(x[:k], y[:k], x[k:], y[k:], (self.top_items,), 1, "mse", "nrmse")

    def default_protocol(self) -> Protocol:
        return self.inner_loop_protocol(100, "nrmse", 0.01, seeds=(0, 1, 2, 3, 4))


class Jester1(RatingsDistribution):
    """Jester dataset 1, part 1 (24,983 users x 100 jokes, ratings in [-10, 10])."""

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = ratings("jester1", self.data_dir)
        return t.user, t.item, t.rating


class MovieLens100K(RatingsDistribution):
    """MovieLens 100K (943 users, 1,682 movies, 1-5 stars)."""

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = ratings("movielens100k", self.data_dir)
        return t.user, t.item, t.rating


class MovieLens1M(RatingsDistribution):
    """MovieLens 1M (6,040 users, 3,706 movies, 1-5 stars)."""

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = ratings("movielens1m", self.data_dir)
        return t.user, t.item, t.rating


class RatingsCSV(RatingsDistribution):
    """Your own ratings: a CSV of ``user, item, rating`` rows (ids may be any strings).

    Register it like any family::

        metaenvs.register("Mine/Ratings-v0", "metaenvs.ratings:RatingsCSV",
                          kwargs={"path": "/data/ratings.csv", "shots": 10, "val": 15})

    Args:
        path: The CSV file.
        delimiter: Field separator.
        header: Whether the first row is a header (``None``: guess).
        Others: As :class:`RatingsDistribution`.
    """

    def __init__(
        self,
        path: str,
        delimiter: str = ",",
        header: bool | None = None,
        shots: int = 10,
        query: int = 15,
        top_items: int = 100,
        min_ratings: int = 20,
        test_tasks: int = 100,
        val_tasks: int = 50,
        seed: int = 0,
    ) -> None:
        super().__init__(shots, query, top_items, min_ratings, test_tasks, val_tasks, None, seed)
        self.path, self.delimiter, self.header = str(path), delimiter, header

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users, items, values = read_ratings_csv(self.path, self.delimiter, self.header)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{self.path}: ratings must be finite numbers.")
        return users, items, values
