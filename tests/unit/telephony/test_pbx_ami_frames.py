import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.kit.errors import ValidationError
from services.telephony.pbx.ami import AmiFrameParser, AmiProtocolError, encode_action
from tests.support.pbx_standins import BANNER, fixture_frames, fixture_messages, wire

KEYS = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30,
).filter(lambda value: value == value.strip())
MESSAGES = st.lists(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6), max_size=8)


def _encode(messages: list[dict[str, str]]) -> bytes:
    frames = b"".join(wire("\n".join(f"{k}: {v}" for k, v in m.items())) for m in messages)
    return f"{BANNER}\r\n".encode() + frames


def _feed_in_chunks(data: bytes, cuts: list[int]) -> tuple[AmiFrameParser, list[dict[str, str]]]:
    parser, out, start = AmiFrameParser(), [], 0
    for cut in [*sorted(cuts), len(data)]:
        out += parser.feed(data[start:cut])
        start = cut
    return parser, out


@settings(max_examples=150, deadline=None)
@given(messages=MESSAGES, data=st.data())
def test_any_split_gives_the_same_messages(messages: list[dict[str, str]],
                                           data: st.DataObject) -> None:
    payload = _encode(messages)
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=20))
    parser, parsed = _feed_in_chunks(payload, cuts)
    assert parser.banner == BANNER
    assert parsed == messages


@given(st.integers(1, 64))
def test_recorded_fixture_survives_fixed_size_chunks(size: int) -> None:
    payload = f"{BANNER}\r\n".encode() + b"".join(
        wire(f) for f in fixture_frames("inbound_answered_recorded"))
    _, parsed = _feed_in_chunks(payload, list(range(0, len(payload), size)))
    assert parsed == fixture_messages("inbound_answered_recorded")


def test_bare_lf_line_ends_and_stray_blank_lines_are_tolerated() -> None:
    parser = AmiFrameParser()
    assert parser.feed(b"Asterisk Call Manager/9.0.0\n\n\nEvent: Ping\n\n") == [{"Event": "Ping"}]


def test_repeated_keys_keep_every_value() -> None:
    parser = AmiFrameParser(expect_banner=False)
    messages = parser.feed(b"Event: X\r\nChanVariable: a=1\r\nChanVariable: b=2\r\n\r\n")
    assert messages == [{"Event": "X", "ChanVariable": "a=1\nb=2"}]


def test_multibyte_character_split_across_reads() -> None:
    payload = "Event: Newchannel\r\nCallerIDName: Анна\r\n\r\n".encode()
    parser = AmiFrameParser(expect_banner=False)
    cut = payload.index("А".encode()) + 1  # inside the two-byte letter
    assert parser.feed(payload[:cut]) == []
    assert parser.feed(payload[cut:]) == [{"Event": "Newchannel", "CallerIDName": "Анна"}]


def test_a_non_ami_peer_is_refused() -> None:
    with pytest.raises(AmiProtocolError):
        AmiFrameParser().feed(b"HTTP/1.1 400 Bad Request\r\n")


def test_unbounded_line_is_refused() -> None:
    parser = AmiFrameParser(expect_banner=False, max_line=100)
    with pytest.raises(AmiProtocolError):
        parser.feed(b"x" * 101)


def test_actions_cannot_smuggle_headers() -> None:
    assert encode_action("Ping", {"ActionID": "1"}) == b"Action: Ping\r\nActionID: 1\r\n\r\n"
    with pytest.raises(ValidationError) as refused:
        encode_action("Login", {"Secret": "x\r\nAction: Originate"})
    assert refused.value.key == "text.line_break" and refused.value.field == "Secret"
