"""``omealert record`` and ``replay``: real answers from the simulator, played back faithfully."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from omealert.cli import main
from omealert.clock import FakeClock
from omealert.config import load_config_text
from omealert.recordformat import RecordedResponse, RecordingError, RecordingReader
from omealert.recording import RecordSummary, record
from omealert.replay import replay
from omealert.rules import ServerSpec, Settings
from omealert.simulator import Simulator

TOKEN = "sim-secret-token"
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


def settings_for(url: str, token: str = TOKEN) -> Settings:
    return load_config_text(CONFIG.format(url=url, token=token), "cfg.yaml", env={})


def lines(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def stalled_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Settings, RecordSummary]]:
    """2.5 minutes of one stream that stalls at 30s and resumes at 100s, recorded once."""
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
            record(settings, out, clock=clock, duration_s=150, before_poll=script)
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
        assert TOKEN.encode() not in raw
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
                record(settings_for(sim.url), out, clock=clock, duration_s=10, only_needed=True)
            )
        paths = {line["path"] for line in lines(out) if line["type"] == "response"}
        assert "/v1/vhosts/default/apps/app/streams/s1" not in paths
        assert "/v1/stats/current/vhosts/default/apps/app/streams/s1" in paths


class TestCaptureEdge:
    def test_raw_bytes_and_relative_paths_round_trip(self) -> None:
        """A compressed answer behind a path prefix is kept raw and replayed as it came."""
        from omealert.recording import _Capture
        from omealert.replay import _Player

        payload = b'{"message":"OK","response":["default"],"statusCode":200}'

        def proxy(request: httpx.Request) -> httpx.Response:
            headers = {"content-encoding": "gzip", "set-cookie": "session=secret"}
            return httpx.Response(200, headers=headers, content=gzip.compress(payload))

        server = ServerSpec("o", "http://127.0.0.1:9/ome/")
        capture = _Capture(httpx.MockTransport(proxy), server, FakeClock())

        async def fetch(transport: httpx.AsyncBaseTransport) -> bytes:
            async with httpx.AsyncClient(transport=transport) as client:
                return (await client.get("http://127.0.0.1:9/ome/v1/vhosts")).content

        assert asyncio.run(fetch(capture)) == payload
        (kept,) = capture.responses
        assert (kept.path, kept.body[:2], "set-cookie" in kept.headers) == (
            "/v1/vhosts",
            b"\x1f\x8b",
            False,
        )
        line = json.loads(json.dumps(kept.to_json("o")))
        assert "body_b64" in line  # gzip bytes are not UTF-8
        player = _Player("/ome")
        player.load([RecordedResponse(kept.at, kept.path, 200, kept.headers, kept.body)])
        assert asyncio.run(fetch(httpx.MockTransport(player.handle))) == payload


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
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again below: nothing listens there
        settings = settings_for(f"http://127.0.0.1:{port}")
        out_path = tmp_path / "down.jsonl.gz"
        summary = asyncio.run(record(settings, out_path, clock=FakeClock(), duration_s=20))
        assert summary.errors == 2
        errors = [line for line in lines(out_path) if line.get("error")]
        assert {str(line.get("error")) for line in errors} >= {"ConnectError"}
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
        assert out.getvalue() == f"recorded 1 round(s), 8 answer(s) to {out_path}\n"
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
