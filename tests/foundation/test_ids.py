"""ULIDs (``kit.ids``): Crockford's base32 of 48 bits of milliseconds and 80 random bits, digit by digit."""

from __future__ import annotations

import re

import pytest

from questline.kit import ids


def _reference(ms: int, random_bits: int) -> str:
    """The plain definition: 10 digits of the time, then 16 of the random bits, most significant first."""
    def digits(value: int, length: int) -> str:
        out = ""
        for _ in range(length):
            value, rest = divmod(value, 32)
            out = ids._ALPHABET[rest] + out
        return out

    return digits(ms, 10) + digits(random_bits, 16)


@pytest.mark.parametrize(("ms", "random_bits"), [
    (0, 0), (1, 1), (1_764_928_800_000, 0), (1_764_928_800_123, (1 << 80) - 1),
    ((1 << 48) - 1, 0x1234_5678_9ABC_DEF0_1234),
    (1_800_000_000_000, 1 << 79), (31, 31 << 75),
])
def test_a_ulid_is_the_base32_of_its_time_and_random_bits(monkeypatch: pytest.MonkeyPatch, ms: int,
                                                            random_bits: int) -> None:
    monkeypatch.setattr(ids.os, "urandom", lambda n: random_bits.to_bytes(10, "big") if n == 10 else b"")
    made = ids.ulid(ms)
    assert made == _reference(ms, random_bits)
    assert re.fullmatch(ids.ID_PATTERN, f"req_{made}")


def test_ulids_sort_by_time_and_differ() -> None:
    made = [ids.ulid(ms) for ms in (1_764_928_800_000, 1_764_928_800_001, 1_764_928_900_000)]
    assert made == sorted(made)
    assert len({ids.ulid() for _ in range(1000)}) == 1000
