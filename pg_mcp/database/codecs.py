"""Binary decoders for date and timestamp types that lose nothing (pure, no I/O).

asyncpg decodes these into `datetime` objects, which cannot hold BC dates or years past 9999 and
turn `infinity` into `datetime.max`. Decoding as text would be exact but breaks ranges of these
types (asyncpg cannot mix text elements into binary ranges). So we decode PostgreSQL's binary
format ourselves into PostgreSQL's own text: `4713-01-01 BC`, `infinity`, `294276-12-31 23:59:59`.
`timestamptz` values are written in UTC with a `+00` suffix.
"""

from __future__ import annotations

import struct
from typing import NoReturn

_POSTGRES_EPOCH_JDATE = 2451545  # Julian day number of 2000-01-01
_USECS_PER_DAY = 86_400_000_000
_INT32 = struct.Struct("!i")
_INT64 = struct.Struct("!q")
_DATE_INFINITY = 2**31 - 1
_DATE_NEG_INFINITY = -(2**31)
_TS_INFINITY = 2**63 - 1
_TS_NEG_INFINITY = -(2**63)


def _julian_to_ymd(jd: int) -> tuple[int, int, int]:
    """Proleptic Gregorian year, month, day of a Julian day number (as PostgreSQL's j2date); year 0 is 1 BC."""
    julian = jd + 32044
    quad = julian // 146097
    extra = (julian - quad * 146097) * 4 + 3
    julian += 60 + quad * 3 + extra // 146097
    quad = julian // 1461
    julian -= quad * 1461
    y = julian * 4 // 1461
    julian = (julian + 305) % 365 + 123 if y else (julian + 306) % 366 + 123
    y += quad * 4
    year = y - 4800
    quad = julian * 2141 // 65536
    day = julian - 7834 * quad // 256
    month = (quad + 10) % 12 + 1
    return year, month, day


def _date_text(days_since_2000: int) -> str:
    year, month, day = _julian_to_ymd(days_since_2000 + _POSTGRES_EPOCH_JDATE)
    if year <= 0:
        return f"{1 - year:04d}-{month:02d}-{day:02d} BC"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _split_bc(date_text: str) -> tuple[str, str]:
    return (date_text[:-3], " BC") if date_text.endswith(" BC") else (date_text, "")


def decode_date(data: bytes) -> str:
    (days,) = _INT32.unpack(data)
    if days == _DATE_INFINITY:
        return "infinity"
    if days == _DATE_NEG_INFINITY:
        return "-infinity"
    return _date_text(days)


def _timestamp_text(usecs: int, suffix: str) -> str:
    if usecs == _TS_INFINITY:
        return "infinity"
    if usecs == _TS_NEG_INFINITY:
        return "-infinity"
    days, in_day = divmod(usecs, _USECS_PER_DAY)
    seconds, micro = divmod(in_day, 1_000_000)
    clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if micro:
        clock += f".{micro:06d}".rstrip("0")
    date, bc = _split_bc(_date_text(days))
    return f"{date} {clock}{suffix}{bc}"


def decode_timestamp(data: bytes) -> str:
    return _timestamp_text(_INT64.unpack(data)[0], "")


def decode_timestamptz(data: bytes) -> str:
    return _timestamp_text(_INT64.unpack(data)[0], "+00")


def refuse_encoding(value: object) -> NoReturn:
    """These codecs only read: no statement here binds a date or timestamp parameter."""
    raise TypeError(f"pg-mcp does not send {type(value).__name__} parameters")


BINARY_DECODERS = {
    "date": decode_date,
    "timestamp": decode_timestamp,
    "timestamptz": decode_timestamptz,
}
