"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on loopback, for tests.

``AlertmanagerProc`` starts the binary with its own temporary storage, its web API on a
free 127.0.0.1 port and a webhook receiver pointing at a test's ``HttpReceiver``; with
``peers`` it joins a cluster over loopback (gossip on its own free port), otherwise
clustering is off. Short ``group_wait``/``group_interval`` keep tests to seconds. It is
stopped by its pid (SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.helpers import wait_until
from tests.realparts import require
from tests.receivers import LOOPBACK, free_port

PACKAGE = "prometheus-alertmanager"
BINARY = "prometheus-alertmanager"


def binary() -> str:
    return require(BINARY, PACKAGE)


def config_text(webhook_url: str, *, group_wait: str = "1s", group_interval: str = "3s") -> str:
    """One route to one webhook, grouped as README's "HA and big fleets" recommends.

    ``group_interval`` stays well above the cluster's ``peer_timeout``, as Alertmanager's
    defaults do (5m and 15s): a peer that waits its turn longer than a group interval
    can find a resolve notified while its own snapshot still said firing, and send that.
    """
    return f"""\
route:
  receiver: hook
  group_by: [alertname, server, app]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""


class AlertmanagerProc:
    """One Alertmanager process; its output goes to files, so it never blocks on a pipe."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        webhook_url: str,
        *,
        peers: Sequence[AlertmanagerProc] = (),
        cluster: bool = False,
        peer_timeout: str = "1s",
    ) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        config = self.dir / "alertmanager.yml"
        config.write_text(config_text(webhook_url))
        self.port = free_port()
        self.cluster_port = free_port() if (cluster or peers) else 0
        args = [
            binary(),
            f"--config.file={config}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=warn",
        ]
        if self.cluster_port:
            args += [
                f"--cluster.listen-address={LOOPBACK}:{self.cluster_port}",
                f"--cluster.advertise-address={LOOPBACK}:{self.cluster_port}",
                f"--cluster.peer-timeout={peer_timeout}",
                "--cluster.gossip-interval=100ms",
                "--cluster.pushpull-interval=1s",
            ]
            args += [f"--cluster.peer={LOOPBACK}:{p.cluster_port}" for p in peers]
        else:
            args.append("--cluster.listen-address=")
        self.log_path = self.dir / "alertmanager.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as reply:
                body = reply.read()
                status = int(reply.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode(errors="replace")
        except OSError:
            return 0, None
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def wait_ready(self, peers: int = 1) -> AlertmanagerProc:
        """Ready, and (clustered) seeing ``peers`` members including itself."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                return True
            status, body = self.get("/api/v2/status")
            if status != 200 or not isinstance(body, dict):
                return False
            if not self.cluster_port:
                return True
            members = body.get("cluster", {}).get("peers") or []
            return len(members) >= peers and body["cluster"].get("status") == "ready"

        assert wait_until(ready, 30), self.log()
        assert self.proc.poll() is None, f"alertmanager exited:\n{self.log()}"
        return self

    def alerts(self) -> list[dict[str, Any]]:
        status, body = self.get("/api/v2/alerts")
        assert status == 200, body
        return list(body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(10)
