"""``omealert record`` and ``replay``: real answers from the simulator, played back faithfully."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from omealert.cli.main import main
from omealert.clock import FakeClock
from omealert.config.load import load_config_text
from omealert.errors import SourceErrorKind
from omealert.model import PollResult
from omealert.ome.api import default_getter
from omealert.ome.client import OmeClient
from omealert.ome.http import Answer, Getter
from omealert.ome.plan import plans_for
from omealert.ome.wire import WireGetter
from omealert.recording.format import RecordedResponse, RecordingError, RecordingReader
from omealert.recording.record import RecordSummary, capture_for, record, record_plan
from omealert.recording.replay import replay, replay_polls
from omealert.rules import ServerSpec, Settings
from omealert.simulator import Simulator

from ..helpers import in_child
from ..wireserver import CLOSE, READ, WireServer

REAL_OME = Path(__file__).parent.parent / "data" / "recordings" / "real-ome-0.18"
TOKEN = "sim-secret-token"
_HEADER_LINE = (
    b'{"type":"header","format":"omealert-recording","version":1,"created":0,'
    b'"interval":10,"servers":[{"name":"origin-1"}]}\n'
)
TOKEN_B64 = base64.b64encode(TOKEN.encode()).decode()
CONFIG = """\
servers:
  - name: origin-1
    url: {url}
    access_token: {token}
interval: 10s
defaults:
  channels: [ops]
channels:
  ops:
    urls: ["json://127.0.0.1:9/ops"]
    format: text
    title: "[{{{{ status | upper }}}}] {{{{ rule }}}} on {{{{ target }}}}"
rules:
  - name: ingest-stalled
    when: lastRecvTime stale > 30s
"""


def settings_for(url: str, token: str = TOKEN, extra: str = "") -> Settings:
    """The test config for ``url``; ``extra`` holds more lines of the server's settings."""
    text = CONFIG.format(url=url, token=token).replace("interval:", extra + "interval:", 1)
    return load_config_text(text, "cfg.yaml", env={})


def lines(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def record_round(settings: Settings, out: Path) -> list[dict[str, object]]:
    """Record one round (a duration of 0s) and return the recording's lines."""
    await record(settings, out, clock=FakeClock(), duration_s=0)
    return lines(out)


def replayed_polls(settings: Settings, path: Path) -> list[PollResult]:
    polls: list[PollResult] = []
    asyncio.run(replay_polls(settings, path, lambda at, got, now: polls.extend(got)))
    return polls


class Spy:
    """A getter that notes every answer the one it wraps gave."""

    def __init__(self, inner: Getter) -> None:
        self.inner = inner
        self.seen: list[tuple[str, int, dict[str, str], bytes]] = []

    async def get(self, path: str) -> Answer:
        answer = await self.inner.get(path)
        self.seen.append((path, answer.status, dict(answer.headers), answer.body))
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def stalled_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Settings, RecordSummary]]:
    """2m20s of one stream that stalls at 30s and resumes at 100s, recorded once."""
    clock = FakeClock()
    start = clock.now()
    out = tmp_path_factory.mktemp("session") / "session.jsonl.gz"
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1")
        settings = settings_for(sim.url)

        def script(now: float) -> None:
            if now - start == 30:
                sim.stall("default", "app", "s1")
            if now - start == 100:
                sim.resume("default", "app", "s1")

        summary = asyncio.run(
            record(settings, out, clock=clock, duration_s=140, before_poll=script)
        )
    yield out, settings, summary


class TestRecord:
    def test_gzip_json_lines_with_every_answer(
        self, stalled_session: tuple[Path, Settings, RecordSummary]
    ) -> None:
        """The file is gzip JSON Lines: a header, then per round a tick, a poll and its answers."""
        path, _, summary = stalled_session
        got = lines(path)
        assert got[0]["type"] == "header" and got[0]["format"] == "omealert-recording"
        assert got[0]["interval"] == 10.0
        kinds = [str(line["type"]) for line in got[1:]]
        assert kinds.count("tick") == summary.ticks == 15
        assert kinds.count("response") == summary.responses
        assert [line["at"] for line in got if line["type"] == "tick"][:3] == [
            got[0]["created"],
            float(got[0]["created"]) + 10,  # type: ignore[arg-type]
            float(got[0]["created"]) + 20,  # type: ignore[arg-type]
        ]
        paths = {line["path"] for line in got if line["type"] == "response"}
        assert {
            "/v1/vhosts",
            "/v1/stats/current",
            "/v1/stats/current/vhosts/default/apps/app/streams/s1",
            "/v1/vhosts/default/apps/app/streams/s1",  # stream info too: record everything
        } <= paths

    def test_written_atomically_and_without_the_token(
        self, stalled_session: tuple[Path, Settings, RecordSummary]
    ) -> None:
        """Only the final file is left behind, and the access token appears nowhere in it."""
        path, _, _ = stalled_session
        assert [p.name for p in path.parent.iterdir()] == [path.name]
        raw = gzip.decompress(path.read_bytes())
        assert TOKEN.encode() not in raw and TOKEN_B64.encode() not in raw
        assert b"authorization" not in raw.lower()

    def test_a_failed_recording_leaves_no_file(self, tmp_path: Path) -> None:
        """An exception while recording removes the temporary file; nothing is renamed."""
        clock = FakeClock()

        def explode(now: float) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(
                record(
                    settings_for("http://127.0.0.1:9"),
                    tmp_path / "x.jsonl.gz",
                    clock=clock,
                    duration_s=60,
                    before_poll=explode,
                )
            )
        assert list(tmp_path.iterdir()) == []

    def test_only_needed_fetches_what_the_rules_read(self, tmp_path: Path) -> None:
        """--only-needed skips stream info (the rules read no track field)."""
        clock = FakeClock()
        with Simulator(clock=clock.now, access_token=TOKEN) as sim:
            sim.add_stream("default", "app", "s1")
            out = tmp_path / "lean.jsonl.gz"
            asyncio.run(
                record(settings_for(sim.url), out, clock=clock, duration_s=0, only_needed=True)
            )
        paths = {line["path"] for line in lines(out) if line["type"] == "response"}
        assert "/v1/vhosts/default/apps/app/streams/s1" not in paths
        assert "/v1/stats/current/vhosts/default/apps/app/streams/s1" in paths

    @pytest.mark.parametrize(("duration", "rounds"), [(30, 4), (25, 3), (0, 1), (0.001, 1)])
    def test_the_duration_is_what_the_recording_covers(
        self, tmp_path: Path, duration: float, rounds: int
    ) -> None:
        """--duration 30s at a 10 s interval records rounds at 0, 10, 20 and 30 s, and a
        replay says it covers 30s, not 20s (issue 21, defect 7); never beyond the duration."""
        clock = FakeClock()
        out = tmp_path / "d.jsonl.gz"
        with Simulator(clock=clock.now, access_token=TOKEN) as sim:
            sim.add_stream("default", "app", "s1")
            settings = settings_for(sim.url)
            summary = asyncio.run(record(settings, out, clock=clock, duration_s=duration))
        ticks = [float(line["at"]) for line in lines(out) if line["type"] == "tick"]  # type: ignore[arg-type]
        assert summary.ticks == len(ticks) == rounds
        assert [t - ticks[0] for t in ticks] == [10.0 * k for k in range(rounds)]
        text = io.StringIO()
        asyncio.run(replay(settings, out, text))
        span = "0s" if rounds == 1 else f"{10 * (rounds - 1)}s"
        assert f"replayed {rounds} round(s) ({span} of recording, {rounds} poll(s))" in (
            text.getvalue()
        )


class TestCapture:
    def test_the_capture_wraps_the_live_clients_own_stack(self) -> None:
        """Recording goes through omewire, the stack a live poll uses, not through httpx."""
        capture = capture_for(
            ServerSpec("o", "http://127.0.0.1:9", access_token=TOKEN), FakeClock()
        )
        assert isinstance(capture.inner, WireGetter)

    def test_the_recording_holds_what_a_live_poll_saw(self, tmp_path: Path) -> None:
        """Every recorded answer is byte for byte what a live poll got, and a replayed poll
        yields the samples a live poll does."""
        clock = FakeClock()
        out = tmp_path / "same.jsonl.gz"
        with Simulator(clock=clock.now, access_token=TOKEN) as sim:
            for name in ("s1", "s2"):
                sim.add_stream("default", "app", name)
            settings = settings_for(sim.url)
            (server,) = settings.servers
            asyncio.run(record(settings, out, clock=clock, duration_s=0))

            async def live() -> tuple[list[tuple[str, int, dict[str, str], bytes]], PollResult]:
                spy = Spy(default_getter(server))
                async with OmeClient(server, clock=clock, getter=spy) as client:
                    await client.poll(record_plan(server.name))
                async with OmeClient(server, clock=clock) as client:
                    result = await client.poll(plans_for(settings)[server.name])
                return spy.seen, result

            seen, live_poll = asyncio.run(live())
        recorded = [
            (str(r["path"]), r["status"], r["headers"], str(r["body"]).encode())
            for r in lines(out)
            if r["type"] == "response"
        ]
        assert len(recorded) == 14  # with :pushes, :records, /v1/version and the queues
        assert sorted(recorded) == sorted(seen)
        (replayed_poll,) = replayed_polls(settings, out)
        assert replayed_poll.error is None and live_poll.error is None
        assert {t.key: s.fields for t, s in replayed_poll.samples.items()} == {
            t.key: s.fields for t, s in live_poll.samples.items()
        }

    def test_record_and_replay_never_import_httpx(self) -> None:
        """A fresh interpreter records and replays a round without loading httpx at all."""
        script = textwrap.dedent(
            """\
            import asyncio, sys, tempfile
            from pathlib import Path
            from omealert.clock import FakeClock
            from omealert.config.load import load_config_text
            from omealert.recording.record import record
            from omealert.recording.replay import replay_polls
            from omealert.simulator import Simulator

            with Simulator(access_token=sys.argv[2]) as sim, tempfile.TemporaryDirectory() as tmp:
                sim.add_stream("default", "app", "s1")
                text = sys.argv[1].replace("URL", sim.url)
                settings = load_config_text(text, "cfg.yaml", env={})
                out = Path(tmp) / "r.jsonl.gz"
                summary = asyncio.run(record(settings, out, clock=FakeClock(), duration_s=0))
                polls = []
                asyncio.run(replay_polls(settings, out, lambda at, got, now: polls.extend(got)))
            print(summary.responses, len(polls[0].samples), "httpx" in sys.modules)
            """
        )
        config = CONFIG.format(url="URL", token=TOKEN)
        done = subprocess.run(
            [sys.executable, "-c", script, config, TOKEN],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["12", "1", "False"]

    def test_raw_bytes_and_relative_paths_round_trip(self, tmp_path: Path) -> None:
        """A compressed answer behind a path prefix is kept raw, without its cookie, under
        its path below the server URL, and replayed exactly as it came."""
        from omealert.recording.replay import Player

        payload = b'{"message":"OK","response":["default"],"statusCode":200}'
        packed = gzip.compress(payload)
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nSet-Cookie: session=secret\r\n"
            b"Content-Length: %d\r\n\r\n" % len(packed)
        ) + packed

        async def fetch() -> tuple[Answer, list[RecordedResponse], list[bytes]]:
            async with WireServer([READ, answer, CLOSE]) as ome:
                server = ServerSpec("o", ome.url + "/ome/", access_token=TOKEN)
                capture = capture_for(server, FakeClock())
                try:
                    got = await capture.get("/v1/vhosts")
                finally:
                    await capture.aclose()
            return got, capture.responses, ome.connections[0].requests

        got, (kept,), (request,) = asyncio.run(fetch())
        assert request.startswith(b"GET /ome/v1/vhosts HTTP/1.1\r\n")
        assert b"accept-encoding" not in request.lower()  # so bodies come as OME sent them
        assert got.body == packed  # the client got the bytes as sent, and so does the file
        assert (kept.path, kept.status, kept.body) == ("/v1/vhosts", 200, packed)
        assert kept.headers["content-encoding"] == "gzip" and "set-cookie" not in kept.headers
        line = json.loads(json.dumps(kept.to_json("o")))
        assert "body_b64" in line  # gzip bytes are not UTF-8

        async def play(undo: bool) -> bytes:
            player = Player(undo_encoding=undo)
            player.load([kept])
            return (await player.get("/v1/vhosts")).body

        assert asyncio.run(play(undo=False)) == packed
        assert asyncio.run(play(undo=True)) == payload  # what httpx gave the client, once

    def test_getter_and_transport_together_are_refused(self) -> None:
        """OmeClient takes one HTTP stack: a getter and an httpx transport at once is an error."""
        server = ServerSpec("o", "http://127.0.0.1:9")
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        getter = default_getter(server)
        with pytest.raises(ValueError, match="not both"):
            OmeClient(server, clock=FakeClock(), transport=transport, getter=getter)


def _self_signed_for_127_0_0_2(directory: Path) -> tuple[Path, Path]:
    """A CA certificate valid for 127.0.0.2 only, and its key, made with openssl."""
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-keyout", "key.pem", "-out", "cert.pem",
         "-subj", "/CN=omealert recording test", "-addext", "subjectAltName=IP:127.0.0.2",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        cwd=directory, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return directory / "cert.pem", directory / "key.pem"


class TestFailures:
    """Each way a GET fails is recorded under its name and replays to the very error the
    live poll had: the first GET (the vhost listing) fails, and so does the poll."""

    def check(
        self, settings: Settings, got: list[dict[str, object]], path: Path
    ) -> tuple[dict[str, object], PollResult]:
        """The listing's record, and the replayed poll, checked to fail as the live one did."""
        (live,) = [line for line in got if line["type"] == "poll"]
        (first, *_) = [line for line in got if line["type"] == "response"]
        assert first["path"] == "/v1/vhosts"
        (poll,) = replayed_polls(settings, path)
        assert poll.error is not None
        assert str(poll.error) == live["error"]
        return first, poll

    @pytest.mark.parametrize(
        ("fault", "extra", "name", "kind", "words"),
        [
            ("slow", "    timeout: 200ms\n", "TimeoutError", "timeout", "no complete answer"),
            ("drop", "", "Broken", "unreachable", "the connection closed without an answer"),
            ("huge", "", "TooLarge", "bad_response", "the answer is larger than 16 MiB"),
        ],
    )
    def test_simulator_faults(
        self, tmp_path: Path, fault: str, extra: str, name: str, kind: str, words: str
    ) -> None:
        """A slow, dropped or oversized answer is kept as the failure the client raised."""
        out = tmp_path / f"{fault}.jsonl.gz"
        with Simulator(access_token=TOKEN) as sim:
            sim.add_stream("default", "app", "s1")
            sim.set_fault(fault, path="/v1/vhosts", times=1, delay=30.0)
            settings = settings_for(sim.url, extra=extra)
            got = asyncio.run(record_round(settings, out))
        first, poll = self.check(settings, got, out)
        assert first["error"] == name
        assert poll.error is not None and poll.error.kind == kind
        assert words in poll.error.reason

    @pytest.mark.parametrize("fault", ["garbage", "truncated"])
    def test_answers_that_are_not_json_are_answers(self, tmp_path: Path, fault: str) -> None:
        """Garbage or a cut JSON body in a well-framed answer is recorded as that answer."""
        out = tmp_path / f"{fault}.jsonl.gz"
        with Simulator(access_token=TOKEN) as sim:
            sim.add_stream("default", "app", "s1")
            sim.set_fault(fault, path="/v1/vhosts", times=1)
            settings = settings_for(sim.url)
            got = asyncio.run(record_round(settings, out))
        first, poll = self.check(settings, got, out)
        assert first["status"] == 200 and "error" not in first
        assert poll.error is not None and poll.error.kind is SourceErrorKind.BAD_RESPONSE
        assert "the answer is not JSON" in poll.error.reason

    def test_a_closed_port(self, tmp_path: Path) -> None:
        """Nothing listening is NoConnection, replayed as unreachable."""
        out = tmp_path / "closed.jsonl.gz"
        settings = settings_for(f"http://127.0.0.1:{free_port()}")
        first, poll = self.check(settings, asyncio.run(record_round(settings, out)), out)
        assert first["error"] == "NoConnection"
        assert poll.error is not None and poll.error.kind is SourceErrorKind.UNREACHABLE
        assert poll.error.reason.startswith("cannot connect to http://127.0.0.1:")

    @pytest.mark.parametrize(
        ("reply", "name", "words"),
        [
            (
                b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
                "Garbled",
                "not valid HTTP: not an HTTP/1 status line",
            ),
            (
                b'HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n{"statusCode"',
                "BrokenAnswer",
                "the answer was cut off: the server closed the connection",
            ),
        ],
    )
    def test_not_http_and_cut_off(
        self, tmp_path: Path, reply: bytes, name: str, words: str
    ) -> None:
        """Something that is not HTTP is Garbled; an answer cut short is BrokenAnswer; both
        replay as bad_response."""
        out = tmp_path / "wire.jsonl.gz"

        async def go() -> tuple[Settings, list[dict[str, object]]]:
            async with WireServer([READ, reply, CLOSE]) as ome:
                settings = settings_for(ome.url)
                return settings, await record_round(settings, out)

        settings, got = asyncio.run(go())
        first, poll = self.check(settings, got, out)
        assert first["error"] == name
        assert poll.error is not None and poll.error.kind is SourceErrorKind.BAD_RESPONSE
        assert words in poll.error.reason

    def test_a_certificate_for_another_address(self, tmp_path: Path) -> None:
        """A certificate that fails verification is BadCertificate with OpenSSL's code, so the
        replayed error gives the same hint (here: the URL's host) as the live one."""
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command line is needed to make a test certificate")
        cert, key = _self_signed_for_127_0_0_2(tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        out = tmp_path / "tls.jsonl.gz"
        with Simulator(access_token=TOKEN, tls=context) as sim:
            settings = settings_for(sim.url, extra=f"    ca_file: {cert}\n")
            got = asyncio.run(record_round(settings, out))
            assert sim.request_count() == 0
        first, poll = self.check(settings, got, out)
        assert (first["error"], first["verify_code"]) == ("BadCertificate", 64)
        assert poll.error is not None and poll.error.kind is SourceErrorKind.UNREACHABLE
        assert "IP address mismatch" in poll.error.reason
        assert "use the host name the certificate is for in url:" in poll.error.reason

    def test_the_token_never_reaches_the_file(self, tmp_path: Path) -> None:
        """Garbage that echoes the token or its base64 form, in a status line or a header
        line, leaves neither in the recording: error messages are scrubbed."""
        replies = [
            b"XTTP/1.1 " + TOKEN_B64.encode() + b" " + TOKEN.encode() + b"\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n" + TOKEN.encode() + b" " + TOKEN_B64.encode() + b"\r\n\r\n",
        ]
        raw = b""
        for index, reply in enumerate(replies):
            out = tmp_path / f"echo{index}.jsonl.gz"

            async def go(reply: bytes = reply, out: Path = out) -> list[dict[str, object]]:
                async with WireServer([READ, reply, CLOSE]) as ome:
                    return await record_round(settings_for(ome.url), out)

            got = asyncio.run(go())
            (response,) = [line for line in got if line["type"] == "response"]
            assert response["error"] == "Garbled"
            assert str(response["message"]).count("***") == 2
            raw += gzip.decompress(out.read_bytes())
        assert TOKEN.encode() not in raw and TOKEN_B64.encode() not in raw


class TestOldRecordings:
    """Files recorded through httpx keep replaying as they did then."""

    def old_file(self, path: Path, response: dict[str, object]) -> Path:
        """A recording as the httpx-based recorder wrote it, around one hand-written answer."""
        header = {
            "type": "header",
            "format": "omealert-recording",
            "version": 1,
            "created": 1000.0,
            "interval": 10.0,
            "servers": [{"name": "origin-1", "api_version": "v1"}],
        }
        poll = {"type": "poll", "server": "origin-1", "at": 1000.0, "requests": 1, "error": None}
        answer = {"type": "response", "server": "origin-1", "at": 1000.0, "path": "/v1/vhosts"}
        rows = [header, {"type": "tick", "at": 1000.0}, poll, {**answer, **response}]
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
        return path

    @pytest.mark.parametrize(
        ("error", "message", "expected"),
        [
            ("ReadTimeout", "no answer within 5s", "timeout: no complete answer within 5s"),
            ("ConnectTimeout", "timed out", "timeout: no complete answer within 5s"),
            (
                "ConnectError",
                "[Errno 111] Connection refused",
                "unreachable: cannot connect to http://127.0.0.1:9: [Errno 111] Connection refused",
            ),
            (
                "RemoteProtocolError",
                "Server disconnected without sending a response.",
                "unreachable: the connection closed without an answer: "
                "Server disconnected without sending a response.",
            ),
            ("ReadError", "", "unreachable: the connection closed without an answer: ReadError"),
        ],
    )
    def test_httpx_error_names(
        self, tmp_path: Path, error: str, message: str, expected: str
    ) -> None:
        """httpx's exception names map to the failures httpx's getter raised for them."""
        path = self.old_file(tmp_path / "old.jsonl.gz", {"error": error, "message": message})
        (poll,) = replayed_polls(settings_for("http://127.0.0.1:9"), path)
        assert poll.error is not None and poll.error.path == "/v1/vhosts"
        assert f"{poll.error.kind}: {poll.error.reason}" == expected

    @pytest.mark.parametrize(
        ("coding", "pack"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
    )
    def test_compressed_bodies_are_undone(
        self, tmp_path: Path, coding: str, pack: Callable[[bytes], bytes]
    ) -> None:
        """httpx undid gzip or deflate before the client saw the body; so does replay."""
        payload = b'{"message":"OK","response":["default"],"statusCode":200}'
        body = base64.b64encode(pack(payload)).decode()
        response = {"status": 200, "headers": {"content-encoding": coding}, "body_b64": body}
        path = self.old_file(tmp_path / "old.jsonl.gz", response)
        (poll,) = replayed_polls(settings_for("http://127.0.0.1:9"), path)
        # the listing decoded, so the poll went on to the next level, which was not recorded
        assert str(poll.error).startswith(
            "origin-1: unreachable on GET /v1/vhosts/default/apps: the connection closed "
            "without an answer: no answer to GET /v1/vhosts/default/apps in the recording"
        )


class TestReplay:
    def test_replay_prints_transitions_and_messages(
        self, stalled_session: tuple[Path, Settings, RecordSummary]
    ) -> None:
        """Replaying evaluates the rules through the real client: the stall fires and resolves."""
        path, settings, _ = stalled_session
        out = io.StringIO()
        summary = asyncio.run(replay(settings, path, out))
        text = out.getvalue().splitlines()
        assert (summary.transitions, summary.messages, summary.stats.missing) == (2, 2, 0)
        assert text[0] == f"replaying {path} with cfg.yaml"
        assert text[1:3] == [
            "+1m10s     ingest-stalled origin-1/default/app/s1: inactive → firing "
            "(value 40, condition)",
            "+1m10s     → ops (first): [FIRING] ingest-stalled on origin-1/default/app/s1",
        ]
        assert (
            "+1m40s     ingest-stalled origin-1/default/app/s1: firing → resolved "
            "(value 0, condition)"
        ) in text
        assert text[-1].startswith("replayed 15 round(s) (2m20s of recording, 15 poll(s)) in ")
        assert text[-1].endswith("s: 2 transition(s), 2 message(s)")

    def test_replay_command_with_a_changed_rule(
        self, stalled_session: tuple[Path, Settings, RecordSummary], tmp_path: Path
    ) -> None:
        """A backtest: the same recording under a stricter rule fires earlier (JSON events)."""
        path, _, _ = stalled_session
        config = CONFIG.format(url="http://127.0.0.1:9/elsewhere", token=TOKEN)
        cfg = tmp_path / "stricter.yaml"
        cfg.write_text(config.replace("stale > 30s", "stale > 15s"), encoding="utf-8")
        out = io.StringIO()
        assert main(["replay", "-c", str(cfg), str(path), "--format", "json"], out=out) == 0
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        fired = [e for e in events if e["event"] == "transition" and e["to"] == "firing"]
        assert [(e["offset"], e["value"]) for e in fired] == [(50.0, 20.0)]
        assert [e["reason"] for e in events if e["event"] == "message"] == ["first", "resolved"]

    def test_an_unreachable_server_replays_as_api_down(self, tmp_path: Path) -> None:
        """Transport errors are recorded too, so an outage replays as ome-api-down."""
        settings = settings_for(f"http://127.0.0.1:{free_port()}")
        out_path = tmp_path / "down.jsonl.gz"
        summary = asyncio.run(record(settings, out_path, clock=FakeClock(), duration_s=10))
        assert summary.errors == 2
        errors = [line for line in lines(out_path) if line.get("error")]
        assert {str(line.get("error")) for line in errors if line["type"] == "response"} == {
            "NoConnection"
        }
        out = io.StringIO()
        asyncio.run(replay(settings, out_path, out))
        assert 'ome-api-down origin-1: inactive → firing (value "unreachable: cannot connect' in (
            out.getvalue()
        )

    def test_truncated_recordings_are_reported_with_their_line(self, tmp_path: Path) -> None:
        """A cut-off file is an error naming where reading stopped, not a silent short replay."""
        path = tmp_path / "cut.jsonl.gz"
        body = b'{"type":"header","format":"omealert-recording","version":1,"created":0,' + (
            b'"interval":10,"servers":[{"name":"origin-1"}]}\n{"type":"tick","at":0}\n'
        )
        path.write_bytes(gzip.compress(body)[:-12])
        with pytest.raises(RecordingError) as info, RecordingReader(path) as reader:
            list(reader.ticks())
        assert str(info.value).startswith(f"{path}:")
        assert "truncated" in str(info.value)

    def test_an_endless_line_is_refused_without_reading_it_whole(self, tmp_path: Path) -> None:
        """A 400 MiB line (a gzip file of 0.4 MiB) is an error naming it, read within 300 MiB."""
        path = tmp_path / "bomb.jsonl.gz"
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip stream
        with path.open("wb") as out:
            out.write(packer.compress(_HEADER_LINE + b'{"type":"tick","at":0,"x":"'))
            block = b"a" * 2**20
            for _ in range(400):
                out.write(packer.compress(block))
            out.write(packer.flush())

        def read() -> str:
            with pytest.raises(RecordingError) as info, RecordingReader(path) as reader:
                list(reader.ticks())
            return str(info.value)

        message = in_child(read, memory_mb=300)
        assert message.startswith(f"{path}:2:1: a line longer than 97 MiB")

    def test_a_line_nested_too_deep_is_not_json(self, tmp_path: Path) -> None:
        """A line of 100,000 nested lists is "not a JSON line", not a RecursionError."""
        path = tmp_path / "deep.jsonl.gz"
        path.write_bytes(gzip.compress(_HEADER_LINE + b"[" * 100_000 + b"]" * 100_000 + b"\n"))
        with (
            pytest.raises(RecordingError, match=r":2:1: not a JSON line"),
            RecordingReader(path) as reader,
        ):
            list(reader.ticks())

    def test_not_a_recording(self, tmp_path: Path) -> None:
        """A gzip file of something else is refused at its first line."""
        path = tmp_path / "other.jsonl.gz"
        path.write_bytes(gzip.compress(b'{"hello": 1}\n'))
        with pytest.raises(RecordingError, match=r":1:1: not an omealert recording"):
            RecordingReader(path)


class TestRecordingAsTestInput:
    def test_rule_test_over_a_recording(
        self, stalled_session: tuple[Path, Settings, RecordSummary], tmp_path: Path
    ) -> None:
        """A rule test can use a recording as its timeline, on the recording's own clock."""
        path, _, _ = stalled_session
        (tmp_path / "cfg.yaml").write_text(
            CONFIG.format(url="http://127.0.0.1:9", token=TOKEN), encoding="utf-8"
        )
        test = tmp_path / "rec.test.yaml"
        test.write_text(
            textwrap.dedent(
                f"""\
                config: cfg.yaml
                tests:
                  - name: recorded stall
                    recording: {path}
                    input:                     # laid over the recording
                      default/app/extra: {{publishers.connections.webrtc: 5x20}}
                    alerts:
                      - eval_time: 1m
                        rule: ingest-stalled
                        exp_alerts: []
                      - eval_time: 1m15s       # between rounds: the state after 1m10s
                        rule: ingest-stalled
                        exp_alerts: [{{labels: {{stream: s1}}, value: 40}}]
                      - eval_time: 1m40s
                        rule: ingest-stalled
                        exp_alerts: [{{state: resolved, labels: {{stream: s1}}}}]
                    notifications:
                      - between: [0s, 3m]
                        exp:
                          - {{at: 1m10s, reason: first}}
                          - {{at: 1m40s, reason: resolved}}
                  - name: past the end
                    recording: {path}
                    alerts:
                      - {{eval_time: 10m, exp_alerts: []}}
                """
            ),
            encoding="utf-8",
        )
        out = io.StringIO()
        assert main(["test", str(test)], out=out) == 1
        report = out.getvalue()
        assert "PASS  recorded stall" in report
        assert "! the recording ends at 2m20s: nothing was evaluated near 10m" in report

    def test_unreadable_recording_makes_the_test_file_invalid(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A recording that is not one is reported at the test file's recording: line (exit 3)."""
        (tmp_path / "cfg.yaml").write_text(
            CONFIG.format(url="http://127.0.0.1:9", token=TOKEN), encoding="utf-8"
        )
        (tmp_path / "junk.jsonl.gz").write_bytes(b"not gzip at all")
        test = tmp_path / "rec.test.yaml"
        test.write_text(
            "config: cfg.yaml\ntests:\n  - name: x\n    recording: junk.jsonl.gz\n"
            "    alerts: [{eval_time: 0s, exp_alerts: []}]\n",
            encoding="utf-8",
        )
        assert main(["test", str(test)], out=io.StringIO()) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"{test}:4:16: cannot use recording junk.jsonl.gz: unreadable: ")


class TestRecordCommand:
    def test_record_command_writes_one_round(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`omealert record` polls on the real clock; a tiny --duration makes one round."""
        with Simulator(access_token=TOKEN) as sim:
            sim.add_stream("default", "app", "s1")
            cfg = tmp_path / "cfg.yaml"
            cfg.write_text(CONFIG.format(url=sim.url, token=TOKEN), encoding="utf-8")
            out_path = tmp_path / "one.jsonl.gz"
            out = io.StringIO()
            argv = ["record", "-c", str(cfg), "--out", str(out_path), "--duration", "1ms"]
            assert main(argv, out=out) == 0
        assert out.getvalue() == f"recorded 1 round(s), 12 answer(s) to {out_path}\n"
        assert capsys.readouterr().err == ""  # no progress line when stderr is not a terminal
        assert [line["type"] for line in lines(out_path)][:3] == ["header", "tick", "poll"]

    def test_record_command_rejects_a_bad_duration(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A --duration without a unit is a usage error (2) before anything is polled."""
        argv = ["record", "-c", "x.yaml", "--out", str(tmp_path / "o.gz"), "--duration", "10"]
        assert main(argv, out=io.StringIO()) == 2
        assert "--duration: invalid duration '10'" in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []


class MovingClock(FakeClock):
    """A fake clock on which time passes while anything looks at it (1 ms per read), as it
    does during a real poll: samples carry their poll's start, later than the round's slot,
    and the watcher evaluates after the poll, later still."""

    def now(self) -> float:
        self._now += 0.001
        return self._now


FIDELITY_RULES = """\
  - name: rate-w
    when: rate(totalBytesIn, 30s) >= 0
  - name: delta-w
    when: delta(totalBytesIn, 30s) >= 0
  - name: max-w
    when: max_over(avgThroughputIn, 30s) >= 0
  - name: rate-drop
    when: rate(totalBytesIn, 30s) < 200kB
"""


def _live_session(path: Path) -> tuple[Settings, list[dict[str, object]], list[tuple[int, str]]]:
    """A live watcher (``Runner.tick``) over a simulator whose stream changes bit rate and
    stalls, with every answer it got written to ``path`` as ``record`` would: what each
    rule showed per round, and the (round, "rule to-state value") of every transition."""
    from omealert.recording.format import FORMAT, IDENTITY, VERSION, AtomicGzipLines
    from omealert.runner import Runner

    clock = MovingClock()
    rates = {3: 3_000_000, 6: 1_000_000, 9: 0, 12: 2_000_000}
    shown: list[dict[str, object]] = []
    changes: list[tuple[int, str]] = []
    with Simulator(clock=clock.now, access_token=TOKEN) as sim:
        sim.add_stream("default", "app", "s1", bitrate=2_000_000)
        settings = load_config_text(
            CONFIG.format(url=sim.url, token=TOKEN).replace(
                "rules:\n", "rules:\n" + FIDELITY_RULES
            ),
            "cfg.yaml",
            env={},
        )
        server = settings.servers[0]
        runner = Runner(settings, clock=clock, notify=False)
        capture = capture_for(server, clock)
        asyncio.run(runner.clients[server.name].aclose())
        runner.clients[server.name] = OmeClient(server, clock=clock, getter=capture)
        writer = AtomicGzipLines(path)
        start = clock.now()
        header = {"type": "header", "format": FORMAT, "version": VERSION, "created": start}
        servers = [{"name": server.name, "api_version": "v1"}]
        writer.write(header | {"interval": 10.0, "servers": servers, "accept_encoding": IDENTITY})

        async def go() -> None:
            for k in range(16):
                clock.set(start + 10 * k)
                rate = rates.get(k)
                if rate == 0:
                    sim.stall("default", "app", "s1")
                elif rate is not None:
                    sim.resume("default", "app", "s1")
                    sim.set_bitrate("default", "app", "s1", rate)
                writer.write({"type": "tick", "at": start + 10 * k})
                report = await runner.tick()
                (poll,) = report.polls
                writer.write({"type": "poll", "server": poll.server, "at": poll.at})
                for response in capture.responses:
                    writer.write(response.to_json(poll.server))
                capture.responses = []
                shown.append(
                    {
                        i.rule: None if i.no_value else i.value
                        for i in runner.engine.instances()
                        if i.target.stream == "s1"
                    }
                )
                for tr in report.transitions:
                    changes.append((k, f"{tr.instance.rule} {tr.to_state} {tr.instance.value}"))
            await runner.aclose()

        asyncio.run(go())
        writer.commit()
    return settings, shown, changes


LiveSession = tuple[Path, Settings, list[dict[str, object]], list[tuple[int, str]]]


@pytest.fixture(scope="module")
def live_session(tmp_path_factory: pytest.TempPathFactory) -> LiveSession:
    """One live session, recorded, shared by the tests that compare replay with it."""
    path = tmp_path_factory.mktemp("live") / "live.jsonl.gz"
    settings, shown, changes = _live_session(path)
    return path, settings, shown, changes


class TestReplayMatchesLive:
    """`replay` and a rule test over a recording show what the live watcher showed (issue 21,
    defect 3): the newest poll is in every rate/delta/*_over window, as it was live."""

    def test_replay_transitions_are_the_live_ones(self, live_session: LiveSession) -> None:
        """`omealert replay` of the live run's recording gives its transitions, with the
        same values, in the same rounds."""
        path, settings, _, changes = live_session
        out = io.StringIO()
        asyncio.run(replay(settings, path, out, fmt="json"))
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        replayed = [
            (round(e["offset"] / 10), f"{e['rule']} {e['to']} {e['value']}")
            for e in events
            if e["event"] == "transition"
        ]
        assert any("rate-drop firing" in c for _, c in changes)  # the stall was seen live
        assert replayed == changes

    def test_a_rule_test_over_the_recording_sees_the_live_values(
        self, live_session: LiveSession, tmp_path: Path
    ) -> None:
        """`omealert test` over the live run's recording sees every rate/delta/max_over
        value the live watcher showed, round by round."""
        path, _, shown, _ = live_session
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            CONFIG.format(url="http://127.0.0.1:9", token=TOKEN).replace(
                "rules:\n", "rules:\n" + FIDELITY_RULES
            ),
            encoding="utf-8",
        )
        checks = []
        for k, values in enumerate(shown):
            for rule in ("rate-w", "delta-w", "max-w"):
                value = values.get(rule)
                if value is None:
                    continue
                checks.append(
                    f"      - {{eval_time: {10 * k}s, rule: {rule}, "
                    f"exp_alerts: [{{labels: {{stream: s1}}, value: {value!r}}}]}}\n"
                )
        assert len(checks) > 30
        test = tmp_path / "live.test.yaml"
        test.write_text(
            f"config: cfg.yaml\ntests:\n  - name: live values\n    recording: {path}\n"
            "    alerts:\n" + "".join(checks),
            encoding="utf-8",
        )
        out = io.StringIO()
        assert main(["test", str(test)], out=out) == 0, out.getvalue()

    def test_the_real_ome_recording_replays_with_its_live_values(self, tmp_path: Path) -> None:
        """On a real OME 0.18 recording (1 s rounds), a rule test's rate/delta/max_over
        values are those of the live run: the window ends at the round's own poll."""
        path = REAL_OME / "session-start.jsonl.gz"
        polls: list[tuple[float, int, int]] = []  # (poll start, totalBytesIn, avgThroughputIn)
        for line in lines(path):
            if line["type"] == "poll":
                at = float(line["at"])  # type: ignore[arg-type]
            elif line["type"] == "response" and str(line["path"]).endswith(
                "/stats/current/vhosts/default/apps/app/streams/stream1"
            ):
                got = json.loads(str(line["body"]))["response"]
                polls.append((at, got["totalBytesIn"], got["avgThroughputIn"]))
        (tmp_path / "cfg.yaml").write_text(
            CONFIG.format(url="http://127.0.0.1:9", token=TOKEN)
            .replace("origin-1", "local-ome")
            .replace("interval: 10s", "interval: 1s")
            .replace("rules:\n", "rules:\n" + FIDELITY_RULES.replace("30s", "3s"))
            .replace("    when:", "    match: default/app/stream1\n    when:"),
            encoding="utf-8",
        )
        checks = []
        for k in range(2, len(polls)):
            (t0, b0, _), (t1, b1, _) = polls[k - 2], polls[k]
            live = {
                "rate-w": (b1 - b0) / (t1 - t0),
                "delta-w": b1 - b0,
                "max-w": max(p[2] for p in polls[k - 2 : k + 1]),
            }
            for rule, value in live.items():
                checks.append(
                    f"      - {{eval_time: {k}s, rule: {rule}, "
                    f"exp_alerts: [{{labels: {{stream: stream1}}, value: {value!r}}}]}}\n"
                )
        test = tmp_path / "real.test.yaml"
        test.write_text(
            f"config: cfg.yaml\ntests:\n  - name: real\n    recording: {path}\n"
            "    alerts:\n" + "".join(checks),
            encoding="utf-8",
        )
        out = io.StringIO()
        assert main(["test", str(test)], out=out) == 0, out.getvalue()
