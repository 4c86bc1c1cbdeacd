"""omealert facing hostile input and holding secrets: nothing secret leaks into anything it
prints or serves, TLS to OME is verified, and names that OME reports are only ever data.

The secrets scenario runs every command an operator uses — ``check`` (text, JSON, with
``--notify``), ``watch`` with ``/metrics``, ``status``, ``history``, ``silence``, and
``validate``/``check`` on a broken config — as real subprocesses with recognizable secrets
in the access token, a webhook path, a webhook header and an SMTP password, through the
success and the failure paths (a rejected token, a relay that refuses the login), and greps
every byte they produced. The TLS tests serve the simulator over HTTPS with certificates
made by the ``openssl`` command line for each test.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.errors import SourceErrorKind
from omealert.model import PollResult
from omealert.notify.delivery import Deliverer
from omealert.runner import Runner
from omealert.simulator import Simulator
from omealert.state.store import StateStore
from tests.helpers import bare_env, poll_once, wait_until
from tests.receivers import HttpReceiver, SmtpSink

REPO = Path(__file__).resolve().parent.parent
LIVE = ("default", "live")
TIMEOUT_S = 60.0

# Recognizable secrets; none may appear in anything omealert prints, serves or stores.
TOKEN = "ome-TOKEN-zq81-s3cr3t"
NEW_TOKEN = "ome-ROTATED-TOKEN-4b7c"  # what OME wants after the rotation nobody told us about
HOOK_SECRET = "HOOK-PATH-SECRET-k9v2"
HEADER_SECRET = "HOOK-HEADER-SECRET-w7x1"
SMTP_PASSWORD = "SMTP-PASSWORD-t4u6"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = (
    TOKEN,
    _b64(TOKEN),
    _b64(TOKEN).rstrip("="),
    _b64(f"{TOKEN}:").rstrip("="),  # the user:password form someone might wrongly build
    NEW_TOKEN,
    _b64(NEW_TOKEN),
    HOOK_SECRET,
    HEADER_SECRET,
    SMTP_PASSWORD,
)


# --------------------------------------------------------------------------- commands


@dataclass
class Run:
    """One finished command: what it printed and how it exited."""

    args: Sequence[str]
    code: int
    out: str
    err: str


def secure_env(tmp: Path) -> dict[str, str]:
    """A bare environment plus the token, which the configs read as ``${OME_TOKEN}``."""
    return bare_env(tmp, PYTHONDONTWRITEBYTECODE="1", OME_TOKEN=TOKEN)


def run_all(tmp: Path, *commands: Sequence[str]) -> list[Run]:
    """Run ``omealert`` commands side by side (start-up dominates) and wait for all."""
    procs = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-m", "omealert", *args],
                cwd=tmp,
                env=secure_env(tmp),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    runs = []
    for args, proc in procs:
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        runs.append(Run(args, proc.returncode, out, err))
    return runs


class WatchProcess:
    """``omealert watch`` writing to files (never blocked on a pipe), killed by pid at the end."""

    def __init__(self, tmp: Path, args: Sequence[str]) -> None:
        self.out_path, self.err_path = tmp / "watch.out", tmp / "watch.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "omealert", *args],
                cwd=tmp,
                env=secure_env(tmp),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def out(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, needle: str) -> None:
        ok = wait_until(lambda: needle in self.err() or self.proc.poll() is not None, 20)
        assert ok and needle in self.err(), f"{needle!r} never logged:\n{self.err()}"

    def metrics_url(self) -> str:
        m = re.search(r"serving /metrics and /healthz on ([0-9.]+):(\d+)", self.err())
        assert m is not None, self.err()
        return f"http://{m.group(1)}:{m.group(2)}/metrics"

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url(), timeout=5) as reply:
            assert reply.status == 200
            return str(reply.read().decode())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def config(sim: Simulator, hook: HttpReceiver, smtp: SmtpSink) -> str:
    """Three channels: a webhook with a secret path and header, plain mail, and a relay
    login with a password that the sink (which offers no AUTH) makes fail every time."""
    return f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: ${{OME_TOKEN}}
    timeout: 2s
interval: 200ms
defaults:
  channels: [hook, mail, relay]
channels:
  hook:
    urls: ["json://127.0.0.1:{hook.port}/hooks/{HOOK_SECRET}?+X-Token={HEADER_SECRET}"]
    format: text
  mail:
    urls: ["mailto://127.0.0.1:{smtp.port}?from=omealert@example.com&to=oncall@example.com"]
    format: text
  relay:
    urls: ["mailto://alice:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}?from=a@example.com&to=b@example.com"]
rules:
  - name: viewers-high
    when: webrtc publishers > 500
    severity: critical
    summary: "{{{{ target }}}} has {{{{ value }}}} WebRTC viewers"
"""


#: Every secret placed where a careless error message would quote it.
BROKEN = f"""\
servers:
  - name: origin
    url: ftp://alice:{SMTP_PASSWORD}@127.0.0.1:1/{HOOK_SECRET}
    acess_token: {TOKEN}
    timeout: {TOKEN}
  - name: second
    url: http://127.0.0.1:1
    access_token: [{TOKEN}, {HEADER_SECRET}]
channels:
  hook:
    urls: ["jsonx://127.0.0.1/hooks/{HOOK_SECRET}", "json://127.0.0.1:notaport/{HOOK_SECRET}"]
  mail:
    urls: ["mailto://alice:{SMTP_PASSWORD}@"]
    title: "{{{{ '{HEADER_SECRET}' | nosuchfilter }}}}"
rules:
  - name: r
    when: webrtc publishers > "{TOKEN}" +
"""


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:8]}…) leaked into {where}"
    assert "Traceback" not in text, f"a traceback in {where}:\n{text}"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN) as server:
        server.add_stream(*LIVE, "busy", viewers={"webrtc": 600})
        server.add_stream(*LIVE, "quiet", viewers={"webrtc": 3})
        server.add_stream(*LIVE, "extra", viewers={"webrtc": 3})
        yield server


def test_no_secret_reaches_any_output_of_any_command(tmp_path: Path, sim: Simulator) -> None:
    """check, watch (logs and /metrics), status, history, silence and validate, on their
    success and failure paths, never print a token (raw or base64), a webhook path or
    header, or a mail password; the state files are owner-only and hold none either."""
    outputs: dict[str, str] = {}
    with HttpReceiver() as hook, SmtpSink() as smtp:
        (tmp_path / "omealert.yaml").write_text(config(sim, hook, smtp), encoding="utf-8")
        (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
        cfg = ["-c", "omealert.yaml"]
        state = ["--state", "state.db"]

        runs = run_all(
            tmp_path,
            ["check", *cfg],
            ["check", *cfg, "--format", "json"],
            ["check", *cfg, *state, "--notify", "--format", "json"],
            ["validate", "broken.yaml"],
            ["check", "-c", "broken.yaml", "--format", "json"],
        )
        assert [r.code for r in runs] == [2, 2, 2, 1, 3], runs
        assert "relay" in runs[2].out  # the refused login was reported ...
        assert len(hook.requests) == 1 and len(smtp.messages) == 1  # ... the others delivered
        validate_errors = runs[3].err.splitlines()
        assert len(validate_errors) >= 6, runs[3].err
        assert all(re.match(r"broken\.yaml:\d+:\d+: ", line) for line in validate_errors)

        runs += run_all(
            tmp_path,
            ["status", *state],
            ["status", *state, "--format", "json"],
            ["history", *state, "--since", "1d"],
            ["silence", "add", *state, "--matcher", "stream=quiet", "--for", "1h",
             "--comment", "maintenance"],
        )  # fmt: skip
        assert [r.code for r in runs[-4:]] == [0, 0, 0, 0], runs[-4:]
        assert "failed" in runs[-2].out  # history shows the relay's failed delivery
        runs += run_all(tmp_path, ["silence", "list", *state])

        sim.set_token(NEW_TOKEN)  # rotated in OME, not in omealert's config
        runs += run_all(tmp_path, ["check", *cfg], ["check", *cfg, "--format", "json"])
        assert [r.code for r in runs[-2:]] == [3, 3]
        assert "unauthorized" in runs[-2].out
        sim.set_token(TOKEN)

        watch = WatchProcess(tmp_path, ["watch", *cfg, *state, "--listen", "127.0.0.1:0"])
        try:
            watch.wait_log("serving /metrics")
            sim.set_viewers(*LIVE, "extra", "webrtc", 700)  # a second alert: more sends
            watch.wait_log("delivered first notice for viewers-high to hook")
            watch.wait_log("delivery to relay")
            sim.set_token(NEW_TOKEN)
            watch.wait_log("cannot be read")
            outputs["/metrics"] = watch.metrics()
            assert "omealert_notifications_failed_total" in outputs["/metrics"]
            watch.proc.send_signal(signal.SIGTERM)
            assert watch.proc.wait(20) == 0, watch.err()
        finally:
            watch.kill()
        outputs["watch stdout"] = watch.out()
        outputs["watch stderr"] = watch.err()

    for r in runs:
        outputs[f"{' '.join(r.args)} stdout"] = r.out
        outputs[f"{' '.join(r.args)} stderr"] = r.err
    for where, text in outputs.items():
        assert_no_secret(where, text)

    state_files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("state.db"))
    assert {p.name for p in state_files} >= {"state.db", "state.db.lock"}
    for path in state_files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path.name
        assert_no_secret(path.name, path.read_bytes().decode("latin-1"))


# --------------------------------------------------------------------------- hostile names


def test_stream_names_from_ome_are_escaped_data_in_every_message(tmp_path: Path) -> None:
    """A stream name OME reports is data: in a markdown message it neither pings (``@here``)
    nor formats (``*x*``), in the rule's summary or in the channel's own body template."""
    clock = FakeClock()
    hostile = "@here*x*_y_~z~"
    with Simulator(clock=clock.now) as sim, HttpReceiver() as hook:
        sim.add_stream(*LIVE, hostile, viewers={"webrtc": 900})
        text = f"""\
servers:
  - name: origin
    url: {sim.url}
    access_token: ome-access-token
defaults:
  channels: [hook]
channels:
  hook:
    urls: ["json://127.0.0.1:{hook.port}/omealert"]
    format: markdown
    body: "{{{{ alerts[0].labels.stream }}}} — {{{{ alerts[0].summary }}}}"
rules:
  - name: viewers-high
    when: webrtc publishers > 500
    summary: "{{{{ labels.stream }}}} has {{{{ value }}}} viewers"
"""
        settings = load_config_text(text, "hostile.yaml", env={})
        with StateStore(tmp_path / "state.db") as store:
            runner = Runner(settings, clock=clock, store=store, deliverer=Deliverer(timeout=5))

            async def one_tick() -> None:
                try:
                    report = await runner.tick()
                    assert [t.instance.target.stream for t in report.transitions] == [hostile]
                    assert runner.outbox is not None
                    await runner.outbox.deliver_due()
                finally:
                    await runner.aclose()

            asyncio.run(one_tick())
        (body,) = hook.json_bodies()
    assert "@here" not in body["title"]  # a title is plain text: only mentions are defused
    message = body["message"]
    assert "@here" not in message
    assert "*x*" not in message and "_y_" not in message and "~z~" not in message
    assert message.count(r"\*x\*\_y\_\~z\~") == 2  # name and summary, markup escaped
    assert "has 900 viewers" in message


# --------------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate a client may trust
    other_ca: Path  # a CA that did not sign the server's certificate
    server: ssl.SSLContext  # the server side, certificate for 127.0.0.1 signed by ``ca``


def _make_ca(name: str, cwd: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=omealert test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA and a server certificate for IP 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    _make_ca("ca", d)
    _make_ca("other", d)
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1", cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext", cwd=d,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "server.crt", d / "server.key")
    return Pki(ca=d / "ca.crt", other_ca=d / "other.crt", server=context)


@pytest.fixture
def https_sim(pki: Pki) -> Iterator[Simulator]:
    with Simulator(access_token=TOKEN, tls=pki.server) as server:
        server.add_stream(*LIVE, "cam1", viewers={"webrtc": 600})
        yield server


def _poll(url: str, extra: str = "") -> PollResult:
    """One poll of ``url`` through the real client, configured from YAML like the watcher."""
    text = f"""\
servers:
  - name: origin
    url: {url}
    access_token: {TOKEN}
    timeout: 5s
{extra}rules:
  - name: viewers-high
    when: webrtc publishers > 500
"""
    settings = load_config_text(text, "tls.yaml", env={})
    (server,) = settings.servers
    return poll_once(server, FakeClock(), settings.rules)


def test_https_verifies_certificates_by_default(https_sim: Simulator) -> None:
    """A certificate from a CA the system does not trust is refused, in a message that
    says it is about the certificate and shows no token."""
    assert https_sim.url.startswith("https://127.0.0.1:")
    result = _poll(https_sim.url)
    assert result.error is not None
    assert result.error.kind is SourceErrorKind.UNREACHABLE
    assert "certificate verify failed" in str(result.error)
    assert_no_secret("the TLS error", str(result.error))
    assert https_sim.request_count() == 0  # no request went out over an unverified channel


def test_verify_tls_false_accepts_any_certificate(https_sim: Simulator) -> None:
    """``verify_tls: false`` is the explicit way to talk to a self-signed OME."""
    result = _poll(https_sim.url, "    verify_tls: false\n")
    assert result.error is None, result.error
    assert [t.key for t in result.samples] == ["origin/default/live/cam1"]


def test_ca_file_trusts_exactly_that_ca(https_sim: Simulator, pki: Pki) -> None:
    """``ca_file`` makes a private CA trusted; another CA's file still fails."""
    good = _poll(https_sim.url, f"    ca_file: {pki.ca}\n")
    assert good.error is None, good.error
    assert [t.key for t in good.samples] == ["origin/default/live/cam1"]
    bad = _poll(https_sim.url, f"    ca_file: {pki.other_ca}\n")
    assert bad.error is not None and "certificate verify failed" in str(bad.error)


def test_ca_file_still_checks_the_host_name(https_sim: Simulator, pki: Pki) -> None:
    """A trusted certificate for 127.0.0.1 is refused when OME is addressed as localhost."""
    url = https_sim.url.replace("127.0.0.1", "localhost")
    result = _poll(url, f"    ca_file: {pki.ca}\n")
    assert result.error is not None and result.error.kind is SourceErrorKind.UNREACHABLE
    assert "certificate" in str(result.error)


def test_an_unknown_ca_is_named_with_the_settings_that_fix_it(https_sim: Simulator) -> None:
    """A certificate from an unknown CA fails with OpenSSL's reason and a hint naming
    ``ca_file:`` and ``verify_tls: false``, and no token."""
    result = _poll(https_sim.url)
    assert result.error is not None
    assert result.error.reason == (
        f"cannot connect to {https_sim.url}: certificate verify failed: unable to get local "
        "issuer certificate; set ca_file: to your CA, or verify_tls: false"
    )
    assert_no_secret("the TLS hint", str(result.error))


def test_a_ca_file_of_the_wrong_ca_is_named_as_such(https_sim: Simulator, pki: Pki) -> None:
    """With a ``ca_file`` that did not sign OME's certificate, the hint says that file is
    the one to change."""
    result = _poll(https_sim.url, f"    ca_file: {pki.other_ca}\n")
    assert result.error is not None
    assert result.error.reason.endswith(
        "certificate verify failed: unable to get local issuer certificate; ca_file: holds no "
        "CA that signed it; set ca_file: to your CA, or verify_tls: false"
    )


def test_a_host_name_mismatch_hints_at_the_url(https_sim: Simulator, pki: Pki) -> None:
    """A trusted certificate for another name points at url:, since no ca_file can help."""
    url = https_sim.url.replace("127.0.0.1", "localhost")
    result = _poll(url, f"    ca_file: {pki.ca}\n")
    assert result.error is not None
    assert "certificate verify failed: Hostname mismatch" in result.error.reason
    assert result.error.reason.endswith(
        "; use the host name the certificate is for in url:, or verify_tls: false"
    )
    assert "ca_file" not in result.error.reason


def test_an_injected_httpx_transport_gets_the_same_tls_hint(https_sim: Simulator) -> None:
    """The httpx stack's certificate failure is recognised too, hint and all."""
    (server,) = load_config_text(
        f"servers:\n  - name: origin\n    url: {https_sim.url}\n    access_token: {TOKEN}\n",
        "tls.yaml",
        env={},
    ).servers

    result = poll_once(server, FakeClock(), transport=httpx.AsyncHTTPTransport())
    assert result.error is not None and result.error.kind is SourceErrorKind.UNREACHABLE
    assert "certificate verify failed: unable to get local issuer certificate" in str(result.error)
    assert str(result.error).endswith("; set ca_file: to your CA, or verify_tls: false")
    assert https_sim.request_count() == 0


@pytest.mark.parametrize("client", ["builtin", "httpx"])
def test_both_http_clients_apply_the_same_tls_settings(
    https_sim: Simulator, pki: Pki, client: str
) -> None:
    """``http_client: httpx`` (the escape hatch) verifies exactly as the built-in client
    does: unknown CA refused, ``ca_file`` trusted, the host name still checked,
    ``verify_tls: false`` accepted; and its errors carry no token."""
    choice = f"    http_client: {client}\n"
    refused = _poll(https_sim.url, choice)
    assert refused.error is not None and "certificate verify failed" in str(refused.error)
    assert_no_secret("the TLS error", str(refused.error))
    trusted = _poll(https_sim.url, choice + f"    ca_file: {pki.ca}\n")
    assert trusted.error is None, trusted.error
    assert [t.key for t in trusted.samples] == ["origin/default/live/cam1"]
    renamed = https_sim.url.replace("127.0.0.1", "localhost")
    mismatch = _poll(renamed, choice + f"    ca_file: {pki.ca}\n")
    assert mismatch.error is not None and "certificate" in str(mismatch.error)
    unchecked = _poll(https_sim.url, choice + "    verify_tls: false\n")
    assert unchecked.error is None, unchecked.error
