"""tables.conform: strict by default, lenient (bad values become nulls) only when asked."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tft_pipeline.tables import conform

COLUMNS = {
    "ticker": "object",
    "session_date": "datetime64[ns]",
    "close": "float64",
    "attempts": "int64",
}


def frame(**overrides: list) -> pd.DataFrame:
    columns = {
        "ticker": ["AAA", "BBB", "CCC", "DDD"],
        "session_date": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
        "close": [1.0, "2.5", 3, 4.0],
        "attempts": [1, 2, 3, 4],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_good_values_take_the_column_dtypes():
    out = conform(frame(), COLUMNS)
    assert out.dtypes.astype(str).to_dict() == COLUMNS
    assert out["close"].tolist() == [1.0, 2.5, 3.0, 4.0]
    assert out["session_date"].iloc[0] == pd.Timestamp("2024-01-02")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"close": [1.0, 2.0, 3.0, "abc"]},
            "conform: column 'close' to float64: cannot convert 'abc' (row 3)",
        ),
        (
            {"session_date": ["2024-01-02", "soon", "2024-01-04", "2024-01-05"]},
            "conform: column 'session_date' to datetime64[ns]: cannot convert 'soon' (row 1)",
        ),
    ],
)
def test_strict_raises_naming_the_column_the_dtype_and_the_value(overrides, message):
    with pytest.raises(ValueError) as raised:
        conform(frame(**overrides), COLUMNS)
    assert str(raised.value) == message


def test_strict_shows_a_few_offending_values_and_counts_the_rest():
    with pytest.raises(ValueError, match=r"'a' \(row 0\), 'b' \(row 1\), 'c' \(row 2\) and 1 more"):
        conform(frame(close=["a", "b", "c", "d"]), COLUMNS)


def test_lenient_turns_what_cannot_be_converted_into_nulls():
    out = conform(
        frame(close=[1.0, 2.0, 3.0, "abc"], session_date=["2024-01-02", "soon", None, "x"]),
        COLUMNS,
        lenient=True,
    )
    assert out["close"].isna().tolist() == [False, False, False, True]
    assert out["session_date"].isna().tolist() == [False, True, True, True]
    assert out["session_date"].dtype == "datetime64[ns]"


@pytest.mark.parametrize("lenient", [False, True])
def test_missing_values_stay_missing_in_both_modes(lenient):
    out = conform(
        frame(
            ticker=["AAA", None, math.nan, "DDD"],
            session_date=["2024-01-02", None, pd.NaT, math.nan],
            close=[None, math.nan, 3.0, pd.NA],
        ),
        COLUMNS,
        lenient=lenient,
    )
    assert out["ticker"].tolist() == ["AAA", None, None, "DDD"]
    assert out["session_date"].isna().tolist() == [False, True, True, True]
    assert out["close"].isna().tolist() == [True, True, False, True]


@pytest.mark.parametrize("lenient", [False, True])
def test_a_column_absent_from_the_frame_becomes_nulls(lenient):
    out = conform(frame().drop(columns=["ticker", "session_date", "close"]), COLUMNS, lenient=lenient)
    assert list(out.columns) == list(COLUMNS)
    assert out.dtypes.astype(str).to_dict() == COLUMNS
    assert out[["ticker", "session_date", "close"]].isna().all().all()


@pytest.mark.parametrize("lenient", [False, True])
def test_an_integer_column_refuses_a_missing_value_clearly(lenient):
    # int64 cannot hold a null: lenient or not, this must say where, not "cannot convert NA".
    with pytest.raises(ValueError, match=r"column 'attempts' to int64: .*missing.* \(row 1\)"):
        conform(frame(attempts=[1, None, 3, 4]), COLUMNS, lenient=lenient)


@pytest.mark.parametrize("lenient", [False, True])
def test_an_integer_column_refuses_a_fraction(lenient):
    # astype("int64") would quietly make 2 of 2.5.
    with pytest.raises(ValueError, match=r"column 'attempts' to int64: .*2\.5 \(row 1\)"):
        conform(frame(attempts=[1, 2.5, 3, 4]), COLUMNS, lenient=lenient)


def test_a_bool_column_refuses_a_missing_value():
    # astype(bool) would quietly make True of NaN.
    with pytest.raises(ValueError, match=r"column 'ok' to bool: .*missing"):
        conform(pd.DataFrame({"ok": [True, None]}), {"ok": "bool"})


def test_a_nullable_boolean_column_keeps_a_missing_value_and_refuses_text():
    # model_versions.network_kept: true/false for the TFT, missing for the baseline (no network).
    frame = conform(pd.DataFrame({"kept": [True, None, False]}), {"kept": "boolean"})
    assert str(frame["kept"].dtype) == "boolean"
    assert frame["kept"].tolist()[0] is True and frame["kept"].isna().tolist() == [False, True, False]
    with pytest.raises(ValueError, match="'kept' to boolean: cannot convert 'maybe'"):
        conform(pd.DataFrame({"kept": ["maybe"]}), {"kept": "boolean"})


def test_aware_timestamps_become_naive_utc_and_mixed_text_formats_parse():
    out = conform(
        pd.DataFrame(
            {
                "at": [
                    pd.Timestamp("2024-01-02 16:00", tz="America/New_York"),
                    "2024-01-02",
                    "2024-01-02 21:00",
                ]
            }
        ),
        {"at": "datetime64[ns]"},
    )
    assert out["at"].tolist() == [
        pd.Timestamp("2024-01-02 21:00"),
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-02 21:00"),
    ]
