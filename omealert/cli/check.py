"""``omealert check``: one poll, one verdict, in the Nagios plugin convention.

Exit codes: 0 OK (nothing warning or critical firing), 1 WARNING, 2 CRITICAL, 3 UNKNOWN
(config invalid, or a server could not be read while nothing is firing). Silenced alerts
are listed (marked) but do not raise the status: a silence is an operator saying "I know".

Without ``--state`` the check is instantaneous: ``for`` is not waited for. With ``--state``
runs share state, so a cron job gets full ``for``, repeat and resolved semantics, and
``--notify`` sends notifications exactly as the watcher would.

History (``rate``/``delta``/``*_over``) is never kept between runs, so in both modes a
config whose rules use it makes the check poll twice, ``--window`` apart (default 5 s),
and those functions read whatever that short window holds. Without that second poll
such a rule could never hold, and the check would be silently OK. When the first poll
already failed on every server there is nothing to wait for: the check answers at once.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the verdict types stay light: a usage error must answer fast
    from ..clock import Clock
    from ..engine.alerts import Instance
    from ..rules import Settings
    from ..runner import Runner, TickReport

EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
DEFAULT_WINDOW_S = 5.0


@dataclass
class CheckAlert:
    rule: str
    state: str
    severity: str
    value: float | str | bool | None
    summary: str
    labels: dict[str, str]
    silenced: bool = False
    #: who acknowledged it and what silences it (``notify.windows.Quiet.view``)
    ack: dict[str, Any] | None = None
    silence: dict[str, Any] | None = None
    #: flap detection, dependency holds (``engine/lifecycle.py``): None when not concerned
    flapping: dict[str, Any] | None = None
    held: dict[str, Any] | None = None
    holds: dict[str, Any] | None = None


@dataclass
class CheckResult:
    status: str
    alerts: list[CheckAlert] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    targets: int = 0
    reason: str = ""
    #: seconds between the two polls when rules needed history; None for a single poll
    window_s: float | None = None
    #: with ``--notify``: messages ``sent``/``failed``/``dropped`` per channel this run, and
    #: ``queued``: how many wait in the outbox for the next run (a failure is retried then)
    notifications: dict[str, dict[str, int] | int] | None = None

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]

    @property
    def firing(self) -> int:
        return sum(1 for a in self.alerts if a.state == "firing")

    @property
    def pending(self) -> int:
        return sum(1 for a in self.alerts if a.state == "pending")


def instant(settings: Settings) -> Settings:
    """The same config with every ``for`` set to zero, for a stateless check."""
    rules = tuple(dataclasses.replace(r, for_s=0.0, keep_firing_for_s=0.0) for r in settings.rules)
    api = dataclasses.replace(settings.api_down, for_s=0.0)
    return dataclasses.replace(settings, rules=rules, api_down=api)


async def run_check(
    settings: Settings,
    *,
    clock: Clock,
    runner: Runner,
    stateful: bool,
    window_s: float = DEFAULT_WINDOW_S,
) -> CheckResult:
    """Poll (twice, ``window_s`` apart, when a rule needs history), then judge."""
    report = await runner.tick()
    sampled: float | None = None
    # Not when the first poll failed on every server (401, 404, unreachable, ...): the
    # second one could not give a history rule two points, so the answer is already known.
    readable = any(p.error is None for p in report.polls)
    if runner.engine.history.fields and readable:
        await clock.sleep(window_s)
        report = await runner.tick()
        sampled = window_s
    result = verdict(runner, report, include_pending=stateful)
    result.window_s = sampled
    if runner.store is not None:
        _save_summaries(runner)
    return result


def verdict(runner: Runner, report: TickReport, *, include_pending: bool) -> CheckResult:
    from ..engine.lifecycle import engine_view
    from ..model import AlertState
    from ..notify.planner import compile_silences
    from ..notify.windows import Quiet
    from ..rules import API_DOWN_RULE

    now = report.at
    lifecycle = engine_view(runner.engine)
    silences, acks = [], []
    if runner.store is not None:
        try:
            silences, acks = runner.store.active_silences(now), runner.store.live_acks(now)
        except Exception:  # a broken state file must not break the check's verdict
            silences, acks = [], []
    quiet = Quiet.build(None, now, compile_silences(silences), acks)
    errors = [
        {"server": p.server, "kind": p.error.kind.value, "message": str(p.error)}
        for p in report.polls
        if p.error is not None
    ]
    targets = sum(len(p.samples) for p in report.polls)
    alerts: list[CheckAlert] = []
    worst = "OK"
    for inst in sorted(runner.engine.instances(), key=lambda i: (i.rule, i.target.key)):
        if inst.rule == API_DOWN_RULE:
            continue  # a server that cannot be read is an error here, not an alert
        if inst.state is AlertState.PENDING and not include_pending:
            continue
        if inst.state not in (AlertState.FIRING, AlertState.PENDING):
            continue
        alert = _alert(
            runner, inst, now, quiet.view(inst.rule, inst.target.key, inst.fired_at, inst.labels)
        )
        alert.flapping, alert.held, alert.holds = lifecycle.fields(*inst.key).values()
        alerts.append(alert)
        if alert.state == "firing" and not alert.silenced:
            if alert.severity == "critical":
                worst = "CRITICAL"
            elif alert.severity == "warning" and worst == "OK":
                worst = "WARNING"
    status = worst
    reason = ""
    if status == "OK" and errors:
        status = "UNKNOWN"
        reason = "; ".join(f"{e['message']}" for e in errors)
    return CheckResult(status, alerts, errors, targets, reason)


def _save_summaries(runner: Runner) -> None:
    """Keep the summaries just rendered, so ``omealert status`` can show them later."""
    from ..errors import StateError
    from ..state.persist import to_record

    changed = [i for i in runner.engine.instances() if i.dirty]
    if not changed or runner.store is None:
        return
    try:
        runner.store.save_tick(upsert=[to_record(i) for i in changed])
    except StateError:
        return  # the verdict stands without them; the runner already reported the store
    for inst in changed:
        inst.dirty = False


def _alert(runner: Runner, inst: Instance, now: float, held: dict[str, Any]) -> CheckAlert:
    rule = runner.engine.rule_for(inst.rule)
    before = inst.summary
    view = runner.planner.view(inst, rule, now)
    if inst.summary != before:
        inst.dirty = True
    return CheckAlert(
        rule=inst.rule,
        state=inst.state.value,
        severity=inst.labels.get("severity", "warning"),
        value=inst.value,
        summary=view.summary,
        labels=dict(inst.labels),
        silenced=held["silence"] is not None,
        ack=held["ack"],
        silence=held["silence"],
    )


def format_text(result: CheckResult) -> str:
    """The Nagios status line (``... | perfdata``), then one line per alert and error."""
    if result.status == "UNKNOWN":
        head = f"OMEALERT UNKNOWN - {result.reason or 'unknown'}"
    else:
        firing = [a for a in result.alerts if a.state == "firing"]
        loud = [a for a in firing if not a.silenced]
        crit = sum(1 for a in loud if a.severity == "critical")
        warn = sum(1 for a in loud if a.severity == "warning")
        if crit or warn:
            parts = [f"{crit} critical"] if crit else []
            parts += [f"{warn} warning"] if warn else []
            head = f"OMEALERT {result.status} - {', '.join(parts)} firing"
        elif firing:
            # "nothing firing" would contradict the alert lines below it
            quiet = [f"{len(loud)} info"] if loud else []
            quiet += [f"{len(firing) - len(loud)} silenced"] if len(loud) < len(firing) else []
            head = (
                f"OMEALERT OK - nothing warning or critical firing on {result.targets} "
                f"target(s) ({', '.join(quiet)} firing)"
            )
        else:
            head = f"OMEALERT OK - nothing firing on {result.targets} target(s)"
    perf = f"firing={result.firing} pending={result.pending} targets={result.targets}"
    lines = [f"{head} | {perf}"]
    from ..engine.lifecycle import mark as lifecycle_mark

    for a in result.alerts:
        mark = " (silenced)" if a.silenced else ""
        mark += f" (acknowledged by {a.ack['by']})" if a.ack else ""
        mark += lifecycle_mark({"flapping": a.flapping, "held": a.held, "holds": a.holds})
        lines.append(f"{a.severity.upper()} {a.state} {a.rule}: {a.summary}{mark}")
    for e in result.errors:
        if result.status != "UNKNOWN":
            lines.append(f"ERROR {e['server']}: {e['message']}")
    lines += _notification_lines(result.notifications)
    return "\n".join(lines)


def _notification_lines(notes: dict[str, dict[str, int] | int] | None) -> list[str]:
    """Say when notifying failed or is still owed: otherwise only the history would tell."""
    if not notes:
        return []
    out = []
    for kind, what in (
        ("failed", "could not be delivered"),
        ("dropped", "were given up"),
        ("alertmanager_errors", "post(s) failed"),
    ):
        counts = notes.get(kind)
        if isinstance(counts, dict):
            for channel, n in sorted(counts.items()):
                out.append(f"NOTIFY {channel}: {n} message(s) {what}")
    queued = notes.get("queued")
    if isinstance(queued, int) and queued:
        out.append(f"NOTIFY {queued} message(s) queued for the next run with --notify")
    return out


def format_json(result: CheckResult) -> str:
    return json.dumps(
        {
            "status": result.status,
            "exit_code": result.exit_code,
            "alerts": [dataclasses.asdict(a) for a in result.alerts],
            "errors": result.errors,
            "firing": result.firing,
            "pending": result.pending,
            "targets": result.targets,
            "reason": result.reason,
            "window_s": result.window_s,
            "notifications": result.notifications,
        },
        default=str,
        sort_keys=False,
    )
