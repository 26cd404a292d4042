"""A library's dynamic segment found by its content in the middle of a deflated member.

When the segment lies far from both ends of a large library (a CUDA library's fat binaries before
it, debug info after it), neither inflating forward to it nor a tail decoded back to it is cheap.
Its place in the compressed bytes is estimated instead: going back from a known place (the
member's end, or where its decoded tail begins) the compression is sampled, until the sampled
stretches add up to the distance in decompressed bytes. The stream is then decoded from block
starts around that place (inflate_tail.decode_onward) and the segment recognised by its content
(elf_tail.find_dynamic): first close around the estimate, then further out on both sides, never
past where its GOT was seen, and never reading more than a share of what the alternatives cost.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from depaudit.lock import elf_tail
from depaudit.lock.inflate_tail import Tail, decode_onward

_SPREAD = 0.02  # of the distance walked: how far off the place is taken to be, about
_SAMPLES = 48  # samples taken over the distance, at most
_SAMPLE_SHARE = 10  # and at most one sample in this many of its bytes
_SAMPLE = 1 << 15  # compressed bytes decoded at each sample
CHEAP = 4 << 20  # compressed bytes: a tail reaching back to the segment costing less is just taken
_SEARCH_AT_MOST = 1.0  # of what the tail or inflating forward would cost: the most a search reads
_READ_ON = 1 << 18  # read past a search's end, to decode a segment found near it whole
_OVERLAP = 1 << 16  # searches of neighbouring stretches overlap by this much on each side


@dataclass
class Compressed:
    """A deflated member's compressed bytes in the wheel, and its decompressed size. What was
    read is kept for the member's life: samples, searches and a tail overlap, and no byte is
    taken from the wheel twice."""

    wheel: BinaryIO
    start: int  # the member's data offset in the wheel
    compressed: int
    size: int
    _kept: list[tuple[int, bytes]] = field(default_factory=list)  # (at, bytes), sorted and apart

    def read(self, at: int, length: int) -> bytes:
        at, end = max(at, 0), min(at + length, self.compressed)
        if end <= at:
            return b""
        cursor = at
        for start, data in list(self._kept):
            if start + len(data) <= cursor or start >= end:
                continue
            if start > cursor:
                self._keep(cursor, start)
            cursor = max(cursor, start + len(data))
        if cursor < end:
            self._keep(cursor, end)
        for start, data in self._kept:
            if start <= at and at + (end - at) <= start + len(data):
                return data[at - start : end - start]
        raise AssertionError("kept pieces do not cover a read they were made for")  # pragma: no cover

    def _keep(self, at: int, end: int) -> None:
        """Read [at, end) from the wheel and merge it with the kept pieces it touches."""
        self.wheel.seek(self.start + at)
        data = self.wheel.read(end - at)
        parts: list[tuple[int, bytes]] = []
        kept: list[tuple[int, bytes]] = []
        for start, piece in self._kept:
            if start + len(piece) < at or start > at + len(data):
                kept.append((start, piece))
            else:
                parts.append((start, piece))
        parts.append((at, data))
        parts.sort()
        merged_at = parts[0][0]
        joined = bytearray()
        for start, piece in parts:
            offset = start - merged_at
            if offset + len(piece) > len(joined):
                joined += piece[len(joined) - offset :]
        kept.append((merged_at, bytes(joined)))
        kept.sort()
        self._kept = kept


def find_dynamic(member: Compressed, dynamic: elf_tail.Dynamic, end: int, after: int, forward: float) -> Tail | None:
    """The segment (and the bytes after it that the reader takes), found by its content; `end` is a
    compressed place known to hold decompressed offset `after`, `forward` what inflating forward
    to the segment would cost. None when it is not found (or not worth seeking)."""
    placed = _place(member, end, after - dynamic.offset)
    if placed is None or end - placed[0] < CHEAP:
        return None
    guess, moved = placed
    budget = min(end - guess, forward) * _SEARCH_AT_MOST
    spread = min(max(moved, (end - guess) * _SPREAD, 4 * _SAMPLE), (end - guess) * _SPREAD * 5)
    low, high = max(guess - spread, 0.0), min(guess + spread, float(end))
    windows = [(low, high)]
    width = 2 * spread
    while windows:
        begin, stop = windows.pop(0)
        budget -= stop - begin + 2 * _OVERLAP
        if budget < 0:
            return None
        found = _search(member, int(begin), int(stop), dynamic)
        if isinstance(found, Tail):
            return _settled(member, found, dynamic, begin, stop, budget)
        if found == elf_tail.PASSED:  # it lies before this window: look no later
            high = begin
            windows = [window for window in windows if window[1] <= begin]
        if not windows:  # the next pair of windows out, each twice as wide
            if high < end:
                windows.append((high, min(high + width, float(end))))
                high = windows[-1][1]
            if low > 0:
                windows.append((max(low - width, 0.0), low))
                low = windows[-1][0]
            width *= 2
    return None


def _settled(member: Compressed, found: Tail, dynamic: elf_tail.Dynamic, begin: float, stop: float, budget: float) -> Tail:
    """The segment found, decoded again from further back while some of its bytes still copy
    from the unknown window (a search that began just before it): a little further each time."""
    back = 2 * _OVERLAP
    while found.known_from(dynamic.offset, dynamic.size) < dynamic.size and begin > 0 and budget >= back:
        begin, budget = max(begin - back, 0.0), budget - back
        again = _search(member, int(begin), int(stop), dynamic)
        if isinstance(again, Tail):
            found.close()
            found = again
        back *= 2
    return found


def _place(member: Compressed, end: int, between: int) -> tuple[float, float] | None:
    """Where, in compressed bytes, the point `between` decompressed bytes before `end` is, and
    how far refining moved it (a measure of how far off it may be). Going back from `end` in
    equal compressed steps, each is sampled in its middle (steps, not sections: a walk by section
    drifts into the neighbour's compression). Where neighbouring steps differ much (a boundary
    between sections of unlike content), each is sampled again in quarters."""
    distance = between * member.compressed / member.size  # in compressed bytes, roughly
    samples = min(_SAMPLES, max(int(distance / (_SAMPLE * _SAMPLE_SHARE)), 4))
    step = max(distance / samples, _SAMPLE)
    steps: list[tuple[float, float, float, float]] = []  # (start, length, bytes, rate), going back
    position, covered = float(end), 0.0
    rate = member.size / member.compressed
    while covered < between and position > 0 and len(steps) < 4 * _SAMPLES:
        length = min(step, position)
        made, rate = _sample(member, position - length / 2, length, rate)
        steps.append((position - length, length, made, rate))
        covered += made
        position -= length
    if covered < between:
        return None
    extra = samples // 2  # quarters: at most half as many again
    refined: list[tuple[float, float, float, float]] = []
    for index, (start, length, made, rate) in enumerate(steps):
        rates = [steps[near][3] for near in (index - 1, index + 1) if 0 <= near < len(steps)]
        if extra >= 4 and length >= 4 * _SAMPLE and any(max(rate, other) > 1.5 * min(rate, other) for other in rates):
            quarter = length / 4
            for part in range(3, -1, -1):  # going back, as the list does
                refined.append((start + quarter * part, quarter, *_sample(member, start + quarter * (part + 0.5), quarter, rate)))
            extra -= 4
        else:
            refined.append((start, length, made, rate))
    coarse, fine = _where(steps, between), _where(refined, between)
    if coarse is None or fine is None:  # the quarters fell short of the distance: the steps did not
        return None if coarse is None else (coarse, 0.0)
    return fine, abs(coarse - fine)


def _sample(member: Compressed, middle: float, length: float, rate: float) -> tuple[float, float]:
    """The decompressed bytes of the `length` compressed bytes around `middle`: the sample's own,
    and the rest at the sample's compression, which is returned too (`rate` is used when the
    sample holds no block start)."""
    at = min(max(int(middle) - _SAMPLE // 2, 0), member.compressed - 1)
    made = used = 0
    for piece in decode_onward(member.read(at, min(_SAMPLE, member.compressed - at))):
        made += len(piece.data)
        used = piece.consumed - piece.begun
    if not made or used <= 0:
        return length * rate, rate
    typical = made / used
    return made + max(length - used, 0) * typical, typical


def _search(member: Compressed, begin: int, end: int, dynamic: elf_tail.Dynamic) -> Tail | str | None:
    """The dynamic segment, if found in the stream decoded from a block start after `begin`
    before `end` is passed (the data read runs a little further, for a segment across it);
    PASSED when its GOT came first."""
    begin = max(begin - _OVERLAP, 0)  # a block that starts before `begin` holds bytes after it
    reach = min(end + _READ_ON, member.compressed)
    if reach <= begin:
        return None
    data = member.read(begin, reach - begin)
    found = elf_tail.find_dynamic(decode_onward(data), dynamic, end - begin + _OVERLAP)
    if found is None or isinstance(found, str):
        return found
    content, unknown = found
    start = dynamic.offset
    return Tail(start, start + len(content), io.BytesIO(content), [(start + low, start + high) for low, high in unknown], begin)


def _where(steps: Sequence[tuple[float, float, float, float]], between: float) -> float | None:
    """The compressed place where the steps' decompressed bytes (going back) add up to `between`."""
    covered = 0.0
    for start, length, made, _ in steps:
        if covered + made >= between:
            return start + length - (between - covered) / (made / length)
        covered += made
    return None
