"""The simulator reads requests with llhttp and holds to its limits, over real loopback sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from omealert.simulator import ManualClock, Simulator

AUTH = "Authorization: Basic b21lLWFjY2Vzcy10b2tlbg==\r\n"
VHOSTS = f"GET /v1/vhosts HTTP/1.1\r\n{AUTH}\r\n"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(clock=ManualClock(start=1_767_225_600.0).now) as s:
        yield s


def connect(sim: Simulator) -> socket.socket:
    return socket.create_connection(("127.0.0.1", sim.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the simulator sends until it closes the connection."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def answers(data: bytes) -> list[tuple[bytes, bytes]]:
    """(status line, body) of each answer in ``data``, framed by Content-Length."""
    out = []
    while data:
        end = data.index(b"\r\n\r\n")
        head = data[:end].split(b"\r\n")
        length = next(int(h.split(b":")[1]) for h in head if h.startswith(b"Content-Length:"))
        out.append((head[0], data[end + 4 : end + 4 + length]))
        data = data[end + 4 + length :]
    return out


def refusal(data: bytes) -> str:
    """The text of the single 400 the simulator answered before closing."""
    ((status, body),) = answers(data)
    assert status == b"HTTP/1.1 400 Bad Request"
    answer = json.loads(body)
    assert answer["ok"] is False
    return str(answer["error"])


@pytest.mark.parametrize(
    ("request_text", "text"),
    [
        ("get /v1/vhosts HTTP/1.1\r\n\r\n", "malformed request line"),
        ("GET /v1/vhosts\r\n\r\n", "malformed request line"),  # HTTP/0.9
        ("GET /v1/vhosts HTTP/2.0\r\n\r\n", "malformed request line"),
        ("GET /v1/vh\x00sts HTTP/1.1\r\n\r\n", "malformed request line"),
        ("GET /v1/vhosts HTTP/1.1\r\nno colon\r\n\r\n", "malformed request: Invalid header token"),
        ("GET /v1/vhosts HTTP/1.1\r\nX: a\rb\r\n\r\n", "malformed request: Missing expected LF"),
        ("GET /v1/vhosts HTTP/1.1\nX: 1\n\n", "malformed request: Expected CRLF after version"),
        (
            "POST /_sim/restart HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
            "malformed request: Duplicate Content-Length",
        ),
        ("POST /_sim/restart HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "malformed request: "),
        ("POST /_sim/restart HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", "bad Content-Length"),
        (
            "POST /_sim/restart HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "chunked request bodies are not supported",
        ),
    ],
)
def test_a_request_llhttp_or_the_limits_refuse_gets_one_400_and_a_close(
    sim: Simulator, request_text: str, text: str
) -> None:
    """Each malformed or oversized request gets a 400 naming why, then the connection closes."""
    with connect(sim) as sock:
        sock.sendall(request_text.encode("latin-1"))
        assert refusal(read_all(sock)).startswith(text)
    assert sim.request_count() == 0


def head_begun(sim: Simulator) -> None:
    """Waits until the simulator has read the start of a request head on its one connection."""
    deadline = time.monotonic() + 5
    while not any(p._head_open for p in sim._protocols):
        assert time.monotonic() < deadline, "the simulator never read the request line"
        time.sleep(0.005)


@pytest.mark.parametrize("segments", [1, 164])
def test_a_head_over_64_kib_is_refused_however_it_arrives(sim: Simulator, segments: int) -> None:
    """A head that goes on past 64 KiB after its first read is refused, in one send or many."""
    # Each head stops just past the limit, so the simulator closes with nothing left unread
    # (unread bytes would turn its close into a reset that swallows the 400).
    filler = b"X-Filler: " + b"b" * 388 + b"\r\n"  # 400 bytes; 164 of them pass 64 KiB
    with connect(sim) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"GET /v1/vhosts HTTP/1.1\r\n")
        head_begun(sim)
        if segments == 1:  # one header value: llhttp would buffer it whole
            sock.sendall(b"X-Filler: " + b"a" * (64 * 1024))
        else:
            for _ in range(segments):
                sock.sendall(filler)
        assert refusal(read_all(sock)) == "request head too large"


def test_a_head_just_under_the_limit_is_served(sim: Simulator) -> None:
    """A long but legal head (60 KiB of headers, in many segments) is answered normally."""
    sim.add_vhost("default")
    with connect(sim) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET /v1/vhosts HTTP/1.1\r\n{AUTH}".encode())
        for i in range(60):
            sock.sendall(f"X-Filler-{i}: {'c' * 1000}\r\n".encode())
        sock.sendall(b"Connection: Close\r\n\r\n")
        ((status, body),) = answers(read_all(sock))
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["response"] == ["default"]


def test_pipelined_requests_in_large_reads_are_not_taken_for_one_long_head(
    sim: Simulator,
) -> None:
    """4,000 pipelined requests sent at once (reads of up to 256 KiB) are all answered."""
    last = f"GET /v1/vhosts HTTP/1.1\r\n{AUTH}Connection: Close\r\n\r\n"
    with connect(sim) as sock:
        sock.sendall((VHOSTS * 3999 + last).encode())
        got = answers(read_all(sock))
    assert len(got) == 4000
    assert {status for status, _ in got} == {b"HTTP/1.1 200 OK"}


def test_requests_before_a_malformed_one_are_answered_first(sim: Simulator) -> None:
    """Pipelined good requests are answered in order, then the bad one's 400, then a close."""
    with connect(sim) as sock:
        sock.sendall(f"\r\n{VHOSTS}\r\n{VHOSTS}GET /x HTTP/9.9\r\n\r\n".encode())
        got = answers(read_all(sock))
    assert [status for status, _ in got] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 400 Bad Request",
    ]
    assert json.loads(got[2][1])["error"] == "malformed request: Invalid HTTP version"


def test_a_body_split_over_segments_reaches_the_control_endpoint(sim: Simulator) -> None:
    """A Content-Length body arriving in pieces is handed over whole, once complete."""
    body = json.dumps({"vhost": "default", "app": "live", "stream": "cam", "bitrate": 1000})
    head = f"POST /_sim/add_stream HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n"
    with connect(sim) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head.encode() + body[:10].encode())
        sock.sendall(
            body[10:].encode() + f"GET /v1/vhosts/default/apps HTTP/1.0\r\n{AUTH}\r\n".encode()
        )
        got = answers(read_all(sock))
    assert json.loads(got[0][1]) == {"ok": True}
    assert json.loads(got[1][1])["response"] == ["live"]


def test_an_upgrade_is_answered_then_the_connection_closes(sim: Simulator) -> None:
    """CONNECT (an upgrade to llhttp) gets OME's answer to an unknown method, then a close."""
    with connect(sim) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:1 HTTP/1.1\r\n{AUTH}\r\n{VHOSTS}".encode())
        ((status, _),) = answers(read_all(sock))
    assert status == b"HTTP/1.1 404 Not Found"


def test_a_hung_answer_stops_reading_so_pipelined_requests_cannot_pile_up(
    sim: Simulator,
) -> None:
    """Behind a "hang" fault the simulator stops reading: 32 MB of pipelined requests back up."""
    sim.set_fault("hang", times=1)
    flood = VHOSTS.encode() * (32 * 1024 * 1024 // len(VHOSTS))
    with connect(sim) as sock:
        sock.settimeout(1.0)
        sock.sendall(VHOSTS.encode())
        with pytest.raises(TimeoutError):
            sock.sendall(flood)  # kernel buffers fill; the simulator is not draining them
    assert sim.request_count() == 1


def test_a_slow_answer_keeps_pipelined_requests_in_order(sim: Simulator) -> None:
    """Requests pipelined behind a slow answer wait their turn and are then answered in order."""
    sim.add_app("default", "app")
    sim.set_fault("slow", path="/v1/vhosts", delay=0.05, times=1)
    apps = f"GET /v1/vhosts/default/apps HTTP/1.1\r\n{AUTH}Connection: Close\r\n\r\n"
    with connect(sim) as sock:
        sock.sendall((VHOSTS + apps).encode())
        got = answers(read_all(sock))
    assert [json.loads(body)["response"] for _, body in got] == [["default"], ["app"]]
