"""The recordings stand-in must behave like a real file server, or tests built on it lie."""
import io
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator

import pytest

from tests.support.pbx_standins import RecordingServer, make_wav, parse_range

PATH = "/monitor/2023/11/14/in-74951234567-79161234567.wav"


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer({PATH: make_wav()}) as http:
        yield http


def _get(url: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_serves_a_valid_wav(server: RecordingServer) -> None:
    status, body, headers = _get(server.url(PATH))
    assert (status, headers["Content-Type"]) == (200, "audio/wav")
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 8000, 2000)


def test_range_requests(server: RecordingServer) -> None:
    size = len(server.files[PATH])
    status, body, headers = _get(server.url(PATH), Range="bytes=0-43")
    assert (status, len(body), headers["Content-Range"]) == (206, 44, f"bytes 0-43/{size}")
    status, body, _ = _get(server.url(PATH), Range="bytes=100-")
    assert (status, body) == (206, server.files[PATH][100:])
    status, _, headers = _get(server.url(PATH), Range=f"bytes={size}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{size}")


def test_missing_file_token_and_injected_failures() -> None:
    with RecordingServer({PATH: b"RIFF...."}, token="t0k") as http:
        assert _get(http.url("/nope.wav"), Authorization="Bearer t0k")[0] == 404
        assert _get(http.url(PATH))[0] == 401
        http.fail_next(1, 503)
        assert _get(http.url(PATH), Authorization="Bearer t0k")[0] == 503
        assert _get(http.url(PATH), Authorization="Bearer t0k")[0] == 200
        assert http.requests.get(timeout=1).path == "/nope.wav"


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 9)), ("bytes=5-", (5, 99)), ("bytes=-10", (90, 99)),
    ("bytes=90-500", (90, 99)), ("bytes=100-", None), ("bytes=9-3", None), ("items=1-2", None),
])
def test_parse_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected
