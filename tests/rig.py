"""A runner on a fake clock with its own state file and a webhook: what the runner and
reliability suites drive tick by tick.

``tick`` is one poll and one delivery pass, then simulated time moves on; each suite
subclasses ``RunnerRig`` for its own config and receivers.
"""

from __future__ import annotations

from pathlib import Path

from omealert.clock import FakeClock
from omealert.metrics import Metrics
from omealert.notify.delivery import Deliverer
from omealert.rules import Settings
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.state.store import StateStore

from .receivers import HttpReceiver


class RunnerRig:
    """One simulator, one webhook and a runner sharing a fake clock and a state file."""

    def __init__(self, tmp: Path, clock: FakeClock, sim: Simulator, hook: HttpReceiver) -> None:
        self.tmp, self.clock, self.sim, self.hook = tmp, clock, sim, hook
        self.store: StateStore | None = None
        self.runner: Runner | None = None

    def start_with(
        self, settings: Settings, *, send_timeout: float = 5.0, health: bool = False
    ) -> Runner:
        """A runner for ``settings`` on the rig's state file (kept across restarts)."""
        self.store = StateStore(self.tmp / "state.db")
        self.runner = Runner(
            settings,
            clock=self.clock,
            store=self.store,
            deliverer=Deliverer(timeout=send_timeout),
            metrics=Metrics(),
            health=health,
        )
        return self.runner

    async def stop(self) -> None:
        assert self.runner is not None and self.store is not None
        await self.runner.aclose()
        self.store.close()

    async def tick(self, seconds: float = 10.0) -> None:
        """One poll, one delivery pass, then simulated time moves on."""
        assert self.runner is not None
        await self.runner.tick()
        await self.deliver()
        self.clock.advance(seconds)

    async def deliver(self) -> None:
        assert self.runner is not None and self.runner.outbox is not None
        await self.runner.outbox.deliver_due()

    def titles(self) -> list[str]:
        return [str(b["title"]) for b in self.hook.json_bodies()]
