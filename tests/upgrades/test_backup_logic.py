"""The pure parts of backup/restore: values survive the JSON trip, a backup names itself, pictures cannot escape."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import BackupError
from bot.store.backup_logic import (
    FORMAT,
    FORMAT_VERSION,
    check_manifest,
    decode_value,
    encode_value,
    picture_member,
    refuse_non_empty,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(max_size=64),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@given(scalars)
def test_every_column_value_survives_the_json_trip(value: object) -> None:
    assert decode_value(json.loads(json.dumps(encode_value(value)))) == value


@given(st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-7)), None])))
def test_times_travel_as_the_same_instant_in_utc(moment: dt.datetime) -> None:
    decoded = decode_value(json.loads(json.dumps(encode_value(moment))))
    assert decoded.tzinfo == dt.UTC  # naive values are Lukas's UTC (SQLite keeps no offset)
    assert decoded == (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))


@given(st.lists(st.sampled_from(["pictures", "..", ".", "a", "b.png", "", "/", "\\\\", "C:"]), max_size=6))
def test_a_picture_never_lands_outside_the_pictures_folder(parts: list[str]) -> None:
    relative = picture_member("/".join(parts))
    if relative is not None:
        assert not relative.is_absolute() and ".." not in relative.parts
        assert PurePosixPath("/data/images", relative).is_relative_to("/data/images")


def test_picture_members() -> None:
    assert picture_member("pictures/2026-W49.png") == PurePosixPath("2026-W49.png")
    assert picture_member("pictures/sub/a.png") == PurePosixPath("sub/a.png")
    assert picture_member("pictures/../../etc/passwd") is None
    assert picture_member("tables/messages.jsonl") is None and picture_member("pictures/") is None


def test_manifest_checks() -> None:
    good = {"format": FORMAT, "version": FORMAT_VERSION, "revision": "0006"}
    assert check_manifest(manifest=good, known_revisions={"0005", "0006"}) == "0006"
    with pytest.raises(BackupError, match="not a Lukas backup"):
        check_manifest(manifest={}, known_revisions={"0006"})
    with pytest.raises(BackupError, match="format version 2"):
        check_manifest(manifest={**good, "version": 2}, known_revisions={"0006"})
    with pytest.raises(BackupError, match="a newer Lukas made it"):
        check_manifest(manifest={**good, "revision": "0042"}, known_revisions={"0006"})


def test_only_an_empty_database_unless_forced() -> None:
    refuse_non_empty(rows={"messages": 0, "conversations": 0}, force=False, where="db")
    refuse_non_empty(rows={"messages": 3}, force=True, where="db")
    with pytest.raises(BackupError, match=r"db is not empty: messages \(3\) rows"):
        refuse_non_empty(rows={"messages": 3, "conversations": 0}, force=False, where="db")
