"""The NDJSON splitter: the same lines however the bytes are cut."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from eventlog.worker.stream.ndjson import EXCERPT_BYTES, LineSplitter, Oversized

SAMPLE = (
    b'{"a":1,"name":"\xc3\x89COLE LTD"}\n'  # a two-byte UTF-8 character to cut through
    b"\n"
    b'{"b":2}\r\n'
    b"\r\n"
    b'{"c":3}\n'
)
EXPECTED = [b'{"a":1,"name":"\xc3\x89COLE LTD"}', b'{"b":2}', b'{"c":3}']


def feed_all(splitter: LineSplitter, chunks: list[bytes]) -> list[bytes | Oversized]:
    out: list[bytes | Oversized] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    return out


def test_cut_at_every_byte_gives_the_same_lines() -> None:
    for cut in range(len(SAMPLE) + 1):
        splitter = LineSplitter()
        assert feed_all(splitter, [SAMPLE[:cut], SAMPLE[cut:]]) == EXPECTED, cut
        assert splitter.heartbeats == 2
        assert splitter.pending == 0


def test_one_byte_at_a_time() -> None:
    splitter = LineSplitter()
    assert feed_all(splitter, [SAMPLE[i:i + 1] for i in range(len(SAMPLE))]) == EXPECTED
    assert splitter.heartbeats == 2


def test_several_lines_in_one_chunk_and_an_unfinished_tail_is_held() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"x":1}\n{"y":2}\n{"z":') == [b'{"x":1}', b'{"y":2}']
    assert splitter.pending == len(b'{"z":')
    assert splitter.feed(b"3}\n") == [b'{"z":3}']


def test_final_partial_line_is_discarded_never_yielded() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"whole":1}\n{"half":') == [b'{"whole":1}']
    assert splitter.discard() == len(b'{"half":')
    assert splitter.pending == 0
    # A new connection starts clean: the old tail does not prefix the next line.
    assert splitter.feed(b'{"next":2}\n') == [b'{"next":2}']


def test_only_heartbeats() -> None:
    splitter = LineSplitter()
    assert feed_all(splitter, [b"\n", b"\n\n", b"  \n"]) == []
    assert splitter.heartbeats == 4


def test_oversized_line_in_one_chunk() -> None:
    splitter = LineSplitter(max_line=50)
    line = b"x" * 300
    out = splitter.feed(line + b'\n{"ok":1}\n')
    assert out == [Oversized(line[:EXCERPT_BYTES], 300), b'{"ok":1}']


def test_oversized_line_over_many_chunks_is_not_buffered() -> None:
    splitter = LineSplitter(max_line=1000)
    out = splitter.feed(b"<" + b"y" * 99)
    for _ in range(100):  # 10 000 more bytes with no newline
        out += splitter.feed(b"z" * 100)
    assert out == []
    assert splitter._parts == []  # only an excerpt is kept, not the 10 kB
    assert splitter.pending == 10_100
    out = splitter.feed(b"zz\n{}\n")
    assert out == [Oversized(b"<" + b"y" * 99 + b"z" * 100, 10_102), b"{}"]


def test_line_exactly_at_the_cap_is_kept() -> None:
    splitter = LineSplitter(max_line=10)
    assert feed_all(splitter, [b"0123456", b"789\r\n"]) == [b"0123456789"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=20),
)
def test_any_chunking_equals_splitting_the_whole(lines: list[bytes], cuts: list[int]) -> None:
    body = b"".join(line + b"\n" for line in lines)
    points = sorted({c for c in cuts if c <= len(body)} | {0, len(body)})
    chunks = [body[a:b] for a, b in zip(points, points[1:])]
    expected = []
    for line in lines:
        line = line[:-1] if line.endswith(b"\r") else line
        if line and not line.isspace():
            expected.append(line)
    assert feed_all(LineSplitter(), chunks) == expected
