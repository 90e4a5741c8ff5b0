"""Find, download, read and validate the Jena climate records.

Two formats are accepted:

* the official file ``jena_climate_2009_2016.csv(.zip)``: 10-minute records, 15 columns;
* an hourly column subset such as ``jena_climate_2009_2016_hourly_6vars.csv.gz``;
* a training+validation extract (a zip holding one hourly CSV and ``periods.json``), which
  the grader gives a notebook in place of the whole record.

``load_jena()`` returns a validated, cleaned DataFrame with a ``Date Time`` column
(datetime64) and one float column per measured variable, in official names and units.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

OFFICIAL_NAME = "jena_climate_2009_2016.csv"
OFFICIAL_ZIP = OFFICIAL_NAME + ".zip"
OFFICIAL_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/" + OFFICIAL_ZIP
OFFICIAL_ROWS = 420_551
HOURLY_MIRROR_NAME = "jena_climate_2009_2016_hourly_6vars.csv.gz"

DATE_COLUMN = "Date Time"
DATE_FORMAT = "%d.%m.%Y %H:%M:%S"
TARGET_COLUMN = "T (degC)"
WIND_ERROR_CODE = -9999.0

# Every official measured column with the range of physically possible values.
# The ranges are wide on purpose: they catch unit mix-ups and corrupt rows, not weather.
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "p (mbar)": (800.0, 1100.0),
    "T (degC)": (-60.0, 60.0),
    "Tpot (K)": (210.0, 340.0),
    "Tdew (degC)": (-70.0, 40.0),
    "rh (%)": (0.0, 100.0),
    "VPmax (mbar)": (0.0, 200.0),
    "VPact (mbar)": (0.0, 100.0),
    "VPdef (mbar)": (0.0, 200.0),
    "sh (g/kg)": (0.0, 60.0),
    "H2OC (mmol/mol)": (0.0, 100.0),
    "rho (g/m**3)": (900.0, 1500.0),
    "wv (m/s)": (0.0, 80.0),
    "max. wv (m/s)": (0.0, 100.0),
    "wd (deg)": (0.0, 360.0),
}
OFFICIAL_COLUMNS = [DATE_COLUMN, *VALUE_RANGES]
WIND_SPEED_COLUMNS = ("wv (m/s)", "max. wv (m/s)")
FIRST_DAY, LAST_DAY = pd.Timestamp("2009-01-01"), pd.Timestamp("2017-01-01 00:00:00")

ENV_FILE = "JENA_DATA_FILE"  # explicit path to a data file
ENV_DIR = "JENA_DATA_DIR"  # where the official file is downloaded to
ENV_MIRROR = "JENA_DATA_MIRROR"  # offline mirror directory
ENV_URL = "JENA_DATA_URL"  # download address (a local copy or another mirror)
ENV_NO_DOWNLOAD = "JENA_DATA_NO_DOWNLOAD"  # set to 1 to never download

DATA_FOLDER = "jena_data"  # the download target, found in the working directory or above it
PERIODS_MEMBER = "periods.json"  # in an extract: hourly rows of each period it holds


class JenaDataError(RuntimeError):
    """The data file is missing, unreadable or not valid Jena climate data."""


@dataclass(frozen=True)
class JenaRecords:
    """Validated records and where they came from."""

    frame: pd.DataFrame  # "Date Time" + measured columns, sorted, unique timestamps
    path: Path
    sha256: str
    periods: dict[str, int] | None = None  # an extract's hourly rows per period; None: the whole record


def data_dir() -> Path:
    """``JENA_DATA_DIR``, else the nearest ``jena_data/`` folder in the working directory or
    above it (a course repository keeps one at its root), else ``./jena_data``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    here = Path.cwd()
    return next((d / DATA_FOLDER for d in (here, *here.parents) if (d / DATA_FOLDER).is_dir()), here / DATA_FOLDER)


def find_data_file(path: str | os.PathLike | None = None, *, download: bool | None = None) -> Path:
    """Return the data file to use, trying in order:

    1. ``path``, else the ``JENA_DATA_FILE`` environment variable;
    2. the official file in ``jena_data/`` (see ``data_dir``);
    3. the offline mirror directory in ``JENA_DATA_MIRROR`` (official file, then hourly copy);
    4. a download of the official zip into ``jena_data/`` (unless ``JENA_DATA_NO_DOWNLOAD=1``).

    Raises ``JenaDataError`` listing everything that was tried.
    """
    explicit = path or os.environ.get(ENV_FILE)
    if explicit:
        candidate = Path(explicit).expanduser()
        if candidate.is_file():
            return candidate
        source = "argument" if path else f"${ENV_FILE}"
        raise JenaDataError(
            f"The data file given by {source} does not exist: {candidate}. "
            "Check the path, or unset it to let the lab find or download the official file."
        )

    tried = []
    local = data_dir()
    for name in (OFFICIAL_ZIP, OFFICIAL_NAME):
        if (local / name).is_file():
            return local / name
    tried.append(f"official file in {local} ({OFFICIAL_ZIP} or {OFFICIAL_NAME}): not there")

    mirror = os.environ.get(ENV_MIRROR)
    if mirror:
        mirror_dir = Path(mirror).expanduser()
        for name in (OFFICIAL_ZIP, OFFICIAL_NAME, HOURLY_MIRROR_NAME):
            if (mirror_dir / name).is_file():
                return mirror_dir / name
        state = "no known data file there" if mirror_dir.is_dir() else "directory does not exist"
        tried.append(f"offline mirror ${ENV_MIRROR}={mirror_dir}: {state}")
    else:
        tried.append(f"offline mirror: ${ENV_MIRROR} is not set")

    if download is None:
        download = os.environ.get(ENV_NO_DOWNLOAD, "") not in ("1", "true", "yes")
    if download:
        url = os.environ.get(ENV_URL, OFFICIAL_URL)
        try:
            return download_official(url, local)
        except (OSError, JenaDataError) as err:
            tried.append(f"download from {url}: {err}")
    else:
        tried.append(f"download: disabled by ${ENV_NO_DOWNLOAD}")

    raise JenaDataError(
        "Could not find the Jena climate data. Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nTo fix: download {OFFICIAL_URL} into {local}/, "
        f"or set {ENV_FILE} to a data file, or {ENV_MIRROR} to a directory holding one."
    )


def download_official(url: str, target_dir: Path) -> Path:
    """Download the official zip with a progress bar, validate it, record its sha256."""
    from tqdm.auto import tqdm

    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / OFFICIAL_ZIP
    with tempfile.NamedTemporaryFile(dir=target_dir, suffix=".part", delete=False) as part:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {OFFICIAL_ZIP}") as bar:
                    while chunk := response.read(1 << 20):
                        part.write(chunk)
                        bar.update(len(chunk))
            part.close()
            records = read_records(Path(part.name), expect_official=True)
        except BaseException:
            Path(part.name).unlink(missing_ok=True)
            raise
    shutil.move(part.name, target)
    record_checksum(target, records.sha256)
    return target


def checksum_file() -> Path:
    return data_dir() / "SHA256SUMS"


def record_checksum(path: Path, digest: str) -> None:
    """Remember the hash of a downloaded file so that later runs detect corruption."""
    sums = checksum_file()
    lines = [ln for ln in sums.read_text().splitlines() if not ln.endswith("  " + path.name)] if sums.exists() else []
    sums.write_text("\n".join([*lines, f"{digest}  {path.name}"]) + "\n")


def recorded_checksum(path: Path) -> str | None:
    if path.parent.resolve() != data_dir().resolve() or not checksum_file().exists():
        return None
    for line in checksum_file().read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name == path.name:
            return digest
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_jena(path: str | os.PathLike | None = None) -> JenaRecords:
    """Find (see ``find_data_file``), read, validate and clean the Jena records.

    Returns the records sorted by time with duplicate timestamps dropped and the -9999
    wind-speed error code set to 0. Units are those of the official column names
    (degC, mbar, %, m/s, deg, ...).
    """
    return read_records(find_data_file(path))


def read_records(path: Path, *, expect_official: bool = False) -> JenaRecords:
    """Read one data file (CSV, CSV.GZ, a ZIP holding one CSV, or an extract) and validate it."""
    path = Path(path)
    sha = sha256_of(path)
    known = recorded_checksum(path)
    if known and known != sha:
        raise JenaDataError(
            f"{path}: sha256 {sha} differs from the one recorded when it was downloaded ({known}). "
            f"The file is corrupt or was changed; delete it (and its line in {checksum_file()}) to download it again."
        )
    frame = _cached(sha)
    fresh = frame is None
    if fresh:
        frame = _validate(_parse(path), path)
    if expect_official and len(frame) < OFFICIAL_ROWS * 0.99:
        raise JenaDataError(
            f"{path}: {len(frame):,} rows, but the official file has {OFFICIAL_ROWS:,}. The download is incomplete."
        )
    if fresh:
        _cache(sha, frame)
    return JenaRecords(frame=frame, path=path, sha256=sha, periods=_periods(path, len(frame)))


def write_extract(path: Path, frame: pd.DataFrame, periods: dict[str, int]) -> Path:
    """Write hourly records and the rows of each period they hold as an extract (see the module doc)."""
    text = frame.assign(**{DATE_COLUMN: frame[DATE_COLUMN].dt.strftime(DATE_FORMAT)}).to_csv(index=False)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("records.csv", text)
        archive.writestr(PERIODS_MEMBER, json.dumps(periods))
    return path


def _periods(path: Path, n_rows: int) -> dict[str, int] | None:
    """An extract's rows per period, checked against the records it holds; None for other files."""
    try:
        with zipfile.ZipFile(path) as archive:
            periods = json.loads(archive.read(PERIODS_MEMBER))
    except (zipfile.BadZipFile, KeyError):
        return None
    if not (isinstance(periods, dict) and all(type(n) is int and n >= 0 for n in periods.values())
            and sum(periods.values()) == n_rows):
        raise JenaDataError(f"{path}: {PERIODS_MEMBER} does not describe the {n_rows} records of this extract.")
    return periods


CACHE_VERSION = 2  # bump when validation or cleaning changes: old cache entries are then ignored


def cache_dir() -> Path:
    """Validated records are cached here, keyed by the data file's sha256 (``data_dir()/cache``)."""
    return data_dir() / "cache"


def _frame_digest(columns: list[str], arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256("\0".join(columns).encode())
    for values in arrays:
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _cached(sha: str) -> pd.DataFrame | None:
    """Records validated before from a file with this exact content, or None.

    An entry is used only when its arrays still match the digest stored with them, so a damaged
    or edited cache costs a fresh validation, never wrong data."""
    path = cache_dir() / f"{sha}-v{CACHE_VERSION}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            columns = [str(c) for c in data["columns"]]
            arrays = [data[f"c{i}"] for i in range(len(columns))]
            if str(data["digest"]) != _frame_digest(columns, arrays):
                return None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # absent, unreadable, other version
        return None
    return pd.DataFrame(dict(zip(columns, arrays)))


def _cache(sha: str, frame: pd.DataFrame) -> None:
    """Keep validated records for the next load; a read-only data folder only costs speed."""
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        part = cache_dir() / f"{sha}-v{CACHE_VERSION}.part.npz"
        columns = [str(c) for c in frame.columns]
        arrays = [frame[name].to_numpy() for name in columns]
        np.savez(part, columns=np.array(columns, dtype=str), digest=_frame_digest(columns, arrays),
                 **{f"c{i}": values for i, values in enumerate(arrays)})
        part.replace(cache_dir() / f"{sha}-v{CACHE_VERSION}.npz")
    except OSError:
        pass


def _parse(path: Path) -> pd.DataFrame:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic.startswith(b"PK"):
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith(".csv") and not n.startswith("__MACOSX")]
                if len(members) != 1:
                    raise JenaDataError(f"{path}: expected one CSV file inside the zip, found {members or 'none'}.")
                with archive.open(members[0]) as fh:
                    frame = pd.read_csv(fh, engine="c", dtype={DATE_COLUMN: str})
        else:  # the content decides, not the name: downloads arrive as *.part files
            compression = "gzip" if magic.startswith(b"\x1f\x8b") else None
            frame = pd.read_csv(path, engine="c", dtype={DATE_COLUMN: str}, compression=compression)
    except pd.errors.EmptyDataError as err:
        raise JenaDataError(f"{path}: the file is empty.") from err
    except (zipfile.BadZipFile, UnicodeDecodeError, EOFError, OSError, pd.errors.ParserError) as err:
        raise JenaDataError(f"{path}: cannot be read as a CSV file ({err}).") from err
    if frame.empty:
        raise JenaDataError(f"{path}: the file has a header but no data rows.")
    return frame


def _validate(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    columns = list(raw.columns)
    unknown = [c for c in columns if c not in OFFICIAL_COLUMNS]
    if unknown:
        hints = []
        for name in unknown:
            hints.append(f"'{name}'" + (f" (did you mean '{close}'?)" if (close := _closest_column(name)) else ""))
        raise JenaDataError(
            f"{path}: unknown column(s) {', '.join(hints)}. Expected official Jena column names: {OFFICIAL_COLUMNS}."
        )
    missing = [c for c in (DATE_COLUMN, TARGET_COLUMN) if c not in columns]
    if missing:
        raise JenaDataError(f"{path}: required column(s) {missing} missing; the file has {columns}.")
    if "max. wv (m/s)" in columns and "wv (m/s)" not in columns or "wd (deg)" in columns and "wv (m/s)" not in columns:
        raise JenaDataError(f"{path}: wind direction or gust columns need 'wv (m/s)' too; the file has {columns}.")

    frame = pd.DataFrame(index=raw.index)
    stamps, valid = parse_timestamps(raw[DATE_COLUMN].to_numpy())
    bad = np.flatnonzero(~valid)
    if bad.size:
        row = int(bad[0])
        raise JenaDataError(
            f"{path}: unparsable date {raw[DATE_COLUMN].iloc[row]!r} in data row {row + 1} (file line {row + 2}); "
            f"expected the format DD.MM.YYYY HH:MM:SS. {bad.size} row(s) affected."
        )
    frame[DATE_COLUMN] = pd.Series(stamps, index=raw.index)
    for column in (c for c in columns if c != DATE_COLUMN):
        values = _numeric_column(raw[column], column, path)
        if column in WIND_SPEED_COLUMNS:
            values = np.where(values == WIND_ERROR_CODE, 0.0, values)  # documented sensor error code
        low, high = VALUE_RANGES[column]
        out = np.flatnonzero((values < low) | (values > high))
        if out.size:
            row = int(out[0])
            raise JenaDataError(
                f"{path}: impossible value {values[row]:g} in column '{column}' at data row {row + 1} "
                f"(allowed range {low:g}..{high:g}); {out.size} row(s) affected."
            )
        frame[column] = values

    outside = np.flatnonzero((stamps < FIRST_DAY.to_datetime64()) | (stamps > LAST_DAY.to_datetime64()))
    if outside.size:
        row = int(outside[0])
        raise JenaDataError(
            f"{path}: date {raw[DATE_COLUMN].iloc[row]} at data row {row + 1} lies outside the Jena record "
            f"({FIRST_DAY:%d.%m.%Y}..{LAST_DAY:%d.%m.%Y})."
        )
    frame = frame.sort_values(DATE_COLUMN, kind="stable").drop_duplicates(DATE_COLUMN, keep="first")
    return frame.reset_index(drop=True)


def _closest_column(name: str) -> str | None:
    """The official column a renamed one most likely stands for, matching names with or without units."""
    by_short_name = {column.split(" (")[0].lower(): column for column in OFFICIAL_COLUMNS}
    by_short_name.update({column.lower(): column for column in OFFICIAL_COLUMNS})
    close = difflib.get_close_matches(name.lower(), by_short_name, n=1)
    return by_short_name[close[0]] if close else None


def _numeric_column(column_values: pd.Series, column: str, path: Path) -> np.ndarray:
    """Return the column as float64, or raise naming the first missing or non-numeric cell."""
    values = column_values
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(column_values, errors="coerce")
        text = column_values.astype(str)
        bad = np.flatnonzero((values.isna() & column_values.notna()).to_numpy())
        if bad.size:
            row = int(bad[0])
            raise JenaDataError(
                f"{path}: non-numeric value {text.iloc[row]!r} in column '{column}' at data row {row + 1}."
            )
    missing = np.flatnonzero(values.isna().to_numpy())
    if missing.size:
        raise JenaDataError(
            f"{path}: missing value (NaN or empty) in column '{column}' at data row {int(missing[0]) + 1}; "
            f"{missing.size} row(s) affected."
        )
    return values.to_numpy(dtype=np.float64)


# Byte offsets of the fields in "DD.MM.YYYY HH:MM:SS" and of its separators.
_DATE_FIELDS = {"day": (0, 2), "month": (3, 5), "year": (6, 10), "hour": (11, 13), "minute": (14, 16), "second": (17, 19)}
_DATE_SEPARATORS = {2: ".", 5: ".", 10: " ", 13: ":", 16: ":"}


def parse_timestamps(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``DD.MM.YYYY HH:MM:SS`` strings into datetime64[s], vectorised.

    About 8x faster than ``pd.to_datetime(format=...)`` on the official file. Returns the
    timestamps and a mask of valid rows (invalid rows hold an arbitrary time).
    """
    try:
        raw = np.asarray(text, dtype="S20")  # one byte more than the format: catches longer strings
    except UnicodeEncodeError:
        raw = np.asarray([str(t).encode("ascii", "replace") for t in text], dtype="S20")
    codes = raw.view(np.uint8).reshape(len(raw), 20)
    digits = codes.astype(np.int64) - ord("0")
    valid = codes[:, 19] == 0
    for offset, separator in _DATE_SEPARATORS.items():
        valid &= codes[:, offset] == ord(separator)
    fields = {}
    for name, (start, stop) in _DATE_FIELDS.items():
        part = digits[:, start:stop]
        valid &= ((part >= 0) & (part <= 9)).all(axis=1)
        fields[name] = part @ (10 ** np.arange(stop - start - 1, -1, -1))
    valid &= (fields["month"] >= 1) & (fields["month"] <= 12) & (fields["day"] >= 1)
    valid &= (fields["hour"] < 24) & (fields["minute"] < 60) & (fields["second"] < 60)
    months = np.where(valid, (fields["year"] - 1970) * 12 + fields["month"] - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (fields["day"] - 1)
    valid &= days.astype("datetime64[M]") == months  # rejects 31.04., 29.02. in common years
    seconds = fields["hour"] * 3600 + fields["minute"] * 60 + fields["second"]
    return days.astype("datetime64[s]") + seconds, valid
