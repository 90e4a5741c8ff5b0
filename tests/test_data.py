"""Finding, downloading, reading and validating Jena data files."""

import gzip
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from jena_weather.data import (
    ENV_FILE,
    ENV_MIRROR,
    ENV_NO_DOWNLOAD,
    ENV_URL,
    HOURLY_MIRROR_NAME,
    OFFICIAL_COLUMNS,
    OFFICIAL_ROWS,
    OFFICIAL_ZIP,
    JenaDataError,
    find_data_file,
    load_jena,
    parse_timestamps,
    read_records,
)


# --- reading the real files ------------------------------------------------------------


def test_official_excerpt_reads_all_columns(excerpt_file):
    frame = read_records(excerpt_file).frame
    assert list(frame.columns) == OFFICIAL_COLUMNS
    assert len(frame) == 154
    assert frame["Date Time"].iloc[0] == pd.Timestamp("2009-01-01 00:10:00")
    assert frame["Date Time"].iloc[-1] == pd.Timestamp("2009-01-02 01:40:00")
    assert frame["p (mbar)"].iloc[0] == pytest.approx(996.52)


def test_hourly_copy_reads_as_clean_sorted_series(hourly_records):
    frame = hourly_records.frame
    assert len(frame) == 70_038
    assert frame["Date Time"].is_monotonic_increasing and frame["Date Time"].is_unique
    assert frame["T (degC)"].min() == pytest.approx(-23.01)
    assert frame["T (degC)"].max() == pytest.approx(36.87)


def test_zip_and_gzip_read_like_plain_csv(excerpt_file, tmp_path):
    archive = tmp_path / OFFICIAL_ZIP
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(excerpt_file, "jena_climate_2009_2016.csv")
    packed = tmp_path / "excerpt.csv.gz"
    with open(excerpt_file, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain = read_records(excerpt_file).frame
    pd.testing.assert_frame_equal(read_records(archive).frame, plain)
    pd.testing.assert_frame_equal(read_records(packed).frame, plain)


def test_wind_error_code_becomes_zero(excerpt_file, tmp_path):
    frame = pd.read_csv(excerpt_file, dtype=str)
    frame.loc[3, "wv (m/s)"] = "-9999.0"
    frame.loc[4, "max. wv (m/s)"] = "-9999.00"
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    clean = read_records(path).frame
    assert clean.loc[3, "wv (m/s)"] == 0.0 and clean.loc[4, "max. wv (m/s)"] == 0.0
    assert clean.loc[5, "wv (m/s)"] == pytest.approx(float(frame.loc[5, "wv (m/s)"]))


def test_duplicate_timestamps_are_dropped_and_rows_sorted(excerpt_file, tmp_path):
    frame = pd.read_csv(excerpt_file, dtype=str)
    shuffled = pd.concat([frame.iloc[10:], frame.iloc[:10], frame.iloc[[20]]])
    path = tmp_path / "messy.csv"
    shuffled.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_records(path).frame, read_records(excerpt_file).frame)


def test_timestamp_parser_matches_pandas_and_rejects_bad_dates():
    text = np.array(["01.01.2009 00:10:00", "29.02.2016 23:59:59", "31.04.2016 00:00:00", "1.1.2009 00:10:00",
                     "01.01.2009 00:10:00x", "01.13.2009 00:00:00", "01.01.2009 24:00:00", "2009-01-01 00:10:00"],
                    dtype=object)
    stamps, valid = parse_timestamps(text)
    assert valid.tolist() == [True, True, False, False, False, False, False, False]
    expected = pd.to_datetime(text[:2], format="%d.%m.%Y %H:%M:%S").to_numpy().astype("datetime64[s]")
    np.testing.assert_array_equal(stamps[:2], expected)


# --- bad input files -------------------------------------------------------------------


def _write_bad(excerpt_file, tmp_path, change) -> str:
    """Apply `change` to the real excerpt (as text cells) and return read_records' error."""
    frame = pd.read_csv(excerpt_file, dtype=str)
    frame = change(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(JenaDataError) as err:
        read_records(path)
    assert str(path) in str(err.value), "every message names the file"
    return str(err.value)


def _set(column, row, value):
    def change(frame):
        frame.loc[row, column] = value
        return frame

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.drop(columns=["T (degC)"]), "required column(s) ['T (degC)'] missing"),
        (lambda f: f.drop(columns=["Date Time"]), "required column(s) ['Date Time'] missing"),
        (lambda f: f.rename(columns={"rh (%)": "rh"}), "unknown column(s) 'rh' (did you mean 'rh (%)'?)"),
        (lambda f: f.rename(columns={"T (degC)": "Temp"}), "unknown column(s) 'Temp'"),
        (_set("Date Time", 7, "2009-01-01 01:20:00"), "unparsable date '2009-01-01 01:20:00' in data row 8 (file line 9)"),
        (_set("Date Time", 9, "32.01.2009 00:00:00"), "unparsable date '32.01.2009 00:00:00' in data row 10"),
        (_set("T (degC)", 4, ""), "missing value (NaN or empty) in column 'T (degC)' at data row 5"),
        (_set("p (mbar)", 6, "NaN"), "missing value (NaN or empty) in column 'p (mbar)' at data row 7"),
        (_set("rh (%)", 11, "humid"), "non-numeric value 'humid' in column 'rh (%)' at data row 12"),
        (_set("rh (%)", 2, "100.5"), "impossible value 100.5 in column 'rh (%)' at data row 3 (allowed range 0..100)"),
        (_set("p (mbar)", 0, "99.65"), "impossible value 99.65 in column 'p (mbar)' at data row 1 (allowed range 800..1100)"),
        (_set("wv (m/s)", 1, "-3"), "impossible value -3 in column 'wv (m/s)' at data row 2"),
        (_set("Date Time", 0, "01.01.2019 00:10:00"), "date 01.01.2019 00:10:00 at data row 1 lies outside the Jena record"),
        (lambda f: f.drop(columns=["wv (m/s)"]), "wind direction or gust columns need 'wv (m/s)' too"),
    ],
)
def test_bad_files_are_rejected_with_a_precise_message(excerpt_file, tmp_path, change, expected):
    assert expected in _write_bad(excerpt_file, tmp_path, change)


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(JenaDataError, match="the file is empty"):
        read_records(empty)
    header = tmp_path / "header.csv"
    header.write_text(",".join(OFFICIAL_COLUMNS) + "\n")
    with pytest.raises(JenaDataError, match="header but no data rows"):
        read_records(header)


def test_unreadable_archives(tmp_path, excerpt_file):
    broken = tmp_path / "broken.csv.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(JenaDataError, match="cannot be read as a CSV file"):
        read_records(broken)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.write(excerpt_file, "a.csv")
        zf.write(excerpt_file, "b.csv")
    with pytest.raises(JenaDataError, match=r"expected one CSV file inside the zip, found \['a.csv', 'b.csv'\]"):
        read_records(two)


# --- lookup order ----------------------------------------------------------------------


def test_explicit_path_wins_over_everything(isolated_lookup, excerpt_file, hourly_file, monkeypatch):
    monkeypatch.setenv(ENV_MIRROR, str(hourly_file.parent))
    monkeypatch.setenv(ENV_FILE, str(hourly_file))
    assert find_data_file(excerpt_file) == excerpt_file
    assert find_data_file() == hourly_file


def test_explicit_path_that_does_not_exist_is_an_error(isolated_lookup, tmp_path, monkeypatch):
    with pytest.raises(JenaDataError, match="given by argument does not exist"):
        find_data_file(tmp_path / "nope.csv")
    monkeypatch.setenv(ENV_FILE, str(tmp_path / "nope.csv"))
    with pytest.raises(JenaDataError, match=r"given by \$JENA_DATA_FILE does not exist"):
        find_data_file()


def test_project_data_dir_comes_before_the_mirror(isolated_lookup, excerpt_file, hourly_file, monkeypatch):
    monkeypatch.setenv(ENV_MIRROR, str(hourly_file.parent))
    assert find_data_file() == hourly_file
    isolated_lookup.mkdir()
    official = isolated_lookup / "jena_climate_2009_2016.csv"
    shutil.copy(excerpt_file, official)
    assert find_data_file() == official


def test_nothing_found_lists_everything_tried(isolated_lookup, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MIRROR, str(tmp_path / "no_mirror"))
    with pytest.raises(JenaDataError) as err:
        load_jena()
    message = str(err.value)
    for fragment in ("official file in", "offline mirror $JENA_DATA_MIRROR", "directory does not exist",
                     "download: disabled by $JENA_DATA_NO_DOWNLOAD", "To fix: download https://"):
        assert fragment in message


def test_failed_download_is_reported_and_leaves_nothing(isolated_lookup, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_NO_DOWNLOAD)
    monkeypatch.setenv(ENV_URL, (tmp_path / "missing.zip").as_uri())
    with pytest.raises(JenaDataError, match=r"download from file://.*missing.zip"):
        find_data_file()
    assert not list(isolated_lookup.glob("*")), "no partial download may be left behind"


def test_incomplete_download_is_rejected(isolated_lookup, excerpt_file, tmp_path, monkeypatch):
    source = tmp_path / "served.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.write(excerpt_file, "jena_climate_2009_2016.csv")
    monkeypatch.delenv(ENV_NO_DOWNLOAD)
    monkeypatch.setenv(ENV_URL, source.as_uri())
    with pytest.raises(JenaDataError, match=f"154 rows, but the official file has {OFFICIAL_ROWS:,}"):
        find_data_file()
    assert not list(isolated_lookup.glob("*"))


@pytest.fixture(scope="session")
def official_size_zip(tmp_path_factory, excerpt_file):
    """An official-size zip: the real excerpt's values repeated on a 10-minute clock (for download tests)."""
    real = pd.read_csv(excerpt_file, dtype=str)
    frame = real.iloc[np.arange(OFFICIAL_ROWS) % len(real)].reset_index(drop=True)
    stamps = pd.date_range("2009-01-01 00:10:00", periods=OFFICIAL_ROWS, freq="10min")
    frame["Date Time"] = stamps.strftime("%d.%m.%Y %H:%M:%S")
    path = tmp_path_factory.mktemp("served") / OFFICIAL_ZIP
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("jena_climate_2009_2016.csv", frame.to_csv(index=False))
    return path


def test_download_validates_records_checksum_and_is_used_once(isolated_lookup, official_size_zip, monkeypatch):
    monkeypatch.delenv(ENV_NO_DOWNLOAD)
    monkeypatch.setenv(ENV_URL, official_size_zip.as_uri())
    path = find_data_file()
    assert path == isolated_lookup / OFFICIAL_ZIP
    sums = (isolated_lookup / "SHA256SUMS").read_text()
    assert sums.endswith(f"  {OFFICIAL_ZIP}\n") and len(sums.split()[0]) == 64
    monkeypatch.setenv(ENV_URL, "file:///unreachable.zip")  # a second lookup must not download
    assert find_data_file() == path
    assert len(load_jena().frame) == OFFICIAL_ROWS

    with open(path, "ab") as fh:  # corruption after download is detected by the recorded hash
        fh.write(b"\0")
    with pytest.raises(JenaDataError, match="differs from the one recorded"):
        load_jena()


def test_mirror_prefers_official_file_over_hourly_copy(isolated_lookup, tmp_path, excerpt_file, hourly_file, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(hourly_file, mirror / HOURLY_MIRROR_NAME)
    monkeypatch.setenv(ENV_MIRROR, str(mirror))
    assert find_data_file() == mirror / HOURLY_MIRROR_NAME
    shutil.copy(excerpt_file, mirror / "jena_climate_2009_2016.csv")
    assert find_data_file() == mirror / "jena_climate_2009_2016.csv"


def test_validated_records_are_cached_by_content(isolated_lookup, excerpt_file, tmp_path):
    from jena_weather.data import cache_dir

    first = read_records(excerpt_file)
    [entry] = cache_dir().iterdir()
    assert entry.name.startswith(first.sha256)
    pd.testing.assert_frame_equal(read_records(excerpt_file).frame, first.frame)  # served from the cache
    entry.write_bytes(b"garbage")  # a damaged cache entry is ignored and rewritten
    pd.testing.assert_frame_equal(read_records(excerpt_file).frame, first.frame)
    assert entry.read_bytes() != b"garbage"
    changed = tmp_path / "changed.csv"
    changed.write_text(excerpt_file.read_text().replace("996.52", "996.53", 1))
    assert read_records(changed).frame["p (mbar)"].iloc[0] == pytest.approx(996.53)  # other content, other entry
    assert len(list(cache_dir().iterdir())) == 2


def test_an_edited_cache_entry_is_not_used(isolated_lookup, excerpt_file):
    from jena_weather.data import cache_dir

    first = read_records(excerpt_file)
    [entry] = cache_dir().iterdir()
    with np.load(entry) as data:
        arrays = dict(data)
    arrays["c1"] = arrays["c1"] + 1.0  # plausible values, but not the file's: the digest no longer matches
    np.savez(entry, **arrays)
    pd.testing.assert_frame_equal(read_records(excerpt_file).frame, first.frame)


def test_the_data_folder_is_found_from_the_working_directory_upwards(tmp_path, monkeypatch):
    from jena_weather.data import ENV_DIR, data_dir

    monkeypatch.delenv(ENV_DIR, raising=False)
    (tmp_path / "jena_data").mkdir()
    (tmp_path / "source" / "lstm_jena").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "source" / "lstm_jena")
    assert data_dir() == tmp_path / "jena_data"  # the instructor's notebook finds the course's folder
    (tmp_path / "source" / "lstm_jena" / "jena_data").mkdir()
    assert data_dir() == tmp_path / "source" / "lstm_jena" / "jena_data"  # the nearest one wins
