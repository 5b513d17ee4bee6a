"""Exact decoding of PostgreSQL's binary dates and timestamps, including what datetime cannot hold."""

from __future__ import annotations

import struct

import pytest

from pg_mcp.database.codecs import decode_date, decode_timestamp, decode_timestamptz

DAY = 86_400_000_000


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (0, "2000-01-01"),
        (-1, "1999-12-31"),
        (59, "2000-02-29"),
        (-10957, "1970-01-01"),
        (-730119, "0001-01-01"),
        (-730120, "0001-12-31 BC"),
        (-2451545, "4714-11-24 BC"),  # Julian day 0, the earliest date PostgreSQL accepts
        (2**31 - 1, "infinity"),
        (-(2**31), "-infinity"),
        (2914634, "9979-12-31"),
        (2921939, "9999-12-31"),
        (2921940, "10000-01-01"),
    ],
)
def test_dates(days: int, text: str) -> None:
    assert decode_date(struct.pack("!i", days)) == text


@pytest.mark.parametrize(
    ("usecs", "text"),
    [
        (0, "2000-01-01 00:00:00"),
        (1, "2000-01-01 00:00:00.000001"),
        (-1, "1999-12-31 23:59:59.999999"),
        (DAY + 3_723_500_000, "2000-01-02 01:02:03.5"),
        (-730120 * DAY + 1_000_000, "0001-12-31 00:00:01 BC"),
        (2**63 - 1, "infinity"),
        (-(2**63), "-infinity"),
    ],
)
def test_timestamps(usecs: int, text: str) -> None:
    assert decode_timestamp(struct.pack("!q", usecs)) == text


def test_timestamptz_is_utc() -> None:
    assert decode_timestamptz(struct.pack("!q", 0)) == "2000-01-01 00:00:00+00"
    assert decode_timestamptz(struct.pack("!q", -730120 * DAY)) == "0001-12-31 00:00:00+00 BC"
