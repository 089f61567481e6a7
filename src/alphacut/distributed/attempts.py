"""How many times each row in flight has been started on each step's actors: the bound on a
file that kills the process working on it every time.

Ray Data restarts a dead actor and re-runs its rows without end (``max_restarts=-1``,
``max_task_retries=-1``), and since Ray 2.60 it offers no supported way to change that for
``Dataset.map``: the ``**ray_remote_args`` that took ``max_task_retries`` are deprecated
(removed in 2.64) and the named parameters that replace them do not include it. So the bound
is ours: before each step (decode, model passes, finish) its actor asks this tally
(``begin``) how many times the row has been started on that step; past ``limit`` the row is
failed as ``worker-crashed`` instead of being run again, and the batch goes on. A row that
comes through a step is dropped (``end``), so the tally holds only rows in flight and rows
whose process died — never one entry per finished file.

One small actor (no CPU) near the driver, which a run cannot outlive anyway. If it cannot be
reached, a row just runs (unbounded, as Ray Data would).
"""

from __future__ import annotations

from typing import Any


class Tally:
    """Starts per (step, row index), for rows not yet through that step."""

    def __init__(self) -> None:
        self._starts: dict[tuple[str, int], int] = {}

    def begin(self, step: str, idx: int) -> int:
        """Count one more start of row ``idx`` on ``step``; returns how many there have been."""
        n = self._starts.get((step, idx), 0) + 1
        self._starts[(step, idx)] = n
        return n

    def end(self, step: str, idx: int) -> None:
        """Row ``idx`` came through ``step`` (done or failed): forget it."""
        self._starts.pop((step, idx), None)

    def size(self) -> int:
        return len(self._starts)


def start_tally() -> Any:
    """A ``Tally`` actor on this driver's node (no CPU reserved); its handle travels to the
    steps' actors as a constructor argument."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    return ray.remote(num_cpus=0)(Tally).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote()


class Starts:
    """A step's actor's view of the tally: ``begin``/``end`` that never raise."""

    def __init__(self, handle: Any, limit: int, step: str) -> None:
        self.handle = handle
        self.limit = limit
        self.step = step

    def too_many(self, idx: int) -> int:
        """0 while ``idx`` may run; else how many times it has been started already."""
        if self.handle is None:
            return 0
        import ray

        try:
            n = int(ray.get(self.handle.begin.remote(self.step, idx), timeout=60))
        except Exception:  # noqa: BLE001 - an unreachable tally: the row runs, unbounded
            return 0
        return n - 1 if n > self.limit else 0

    def end(self, idx: int) -> None:
        if self.handle is None:
            return
        try:
            self.handle.end.remote(self.step, idx)  # not awaited: the next row need not wait for it
        except Exception:  # noqa: BLE001
            pass
