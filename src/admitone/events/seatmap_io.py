"""Reading seat maps from JSON and CSV files, and writing them as CSV.

JSON files hold one ``VenueCreate`` object. CSV files hold one seat per line under a header
naming the columns ``section,row,number,x,y,category`` and optionally ``label``.

Every problem is reported as a ``SeatMapError`` naming the file and, where there is one,
the line, so the person preparing the file can find and fix it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from admitone.events.schemas import RowIn, SeatIn, VenueCreate

ProgressCallback = Callable[[int, int], None]

SUPPORTED_SUFFIXES = (".json", ".csv")
REQUIRED_COLUMNS = ("section", "row", "number", "x", "y", "category")
OPTIONAL_COLUMNS = ("label",)
PROGRESS_EVERY = 500
MAX_REPORTED_PROBLEMS = 5

_Loc = tuple[int | str, ...]


class SeatMapError(ValueError):
    """A seat map file that cannot be read, with the file and line to look at."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{path} line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class _Problem:
    line: int | None
    text: str


def _raise_problems(path: Path, problems: Sequence[_Problem]) -> None:
    """Raise one SeatMapError for the first problems; the first one sets the error's line."""
    if not problems:
        return
    first, rest = problems[0], problems[1:MAX_REPORTED_PROBLEMS]
    parts = [first.text]
    for p in rest:
        parts.append(f"  line {p.line}: {p.text}" if p.line is not None else f"  {p.text}")
    hidden = len(problems) - MAX_REPORTED_PROBLEMS
    if hidden > 0:
        parts.append(f"  and {hidden} more problem{'s' if hidden != 1 else ''}")
    raise SeatMapError(path, "\n".join(parts), first.line)


class _Progress:
    """Calls the callback every PROGRESS_EVERY items and once at the end."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._done = 0
        self._reported = -1

    def advance(self, count: int = 1) -> None:
        if self._callback is None:
            return
        before = self._done // PROGRESS_EVERY
        self._done = min(self._done + count, self._total)
        if self._done // PROGRESS_EVERY != before and self._done != self._total:
            self._report()

    def finish(self) -> None:
        if self._callback is None:
            return
        self._done = self._total
        if self._reported != self._done:
            self._report()

    def _report(self) -> None:
        assert self._callback is not None
        self._reported = self._done
        self._callback(self._done, self._total)


def _message(error: ErrorDetails) -> str:
    msg = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _too_long_index(error: ErrorDetails) -> int | None:
    """For a 'list too long' error, the index of the first item past the limit."""
    if error["type"] != "too_long":
        return None
    ctx = error.get("ctx") or {}
    limit = ctx.get("max_length")
    return limit if isinstance(limit, int) else None


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SeatMapError(path, "file not found") from None
    except IsADirectoryError:
        raise SeatMapError(path, "is a directory, not a seat map file") from None
    except OSError as exc:
        raise SeatMapError(path, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SeatMapError(
            path, f"not valid UTF-8 text (byte {exc.start}); save the file with UTF-8 encoding", line
        ) from None


def parse_seatmap(
    path: Path,
    venue_name: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> VenueCreate:
    """Read a venue with its seat map from a ``.json`` or ``.csv`` file.

    ``venue_name`` overrides the name in a JSON file and is required for CSV files, which
    carry no venue name. ``on_progress(done, total)`` is called while seats are read (total:
    data lines of a CSV file, seats of a JSON file), last with ``(total, total)``.
    Raises ``SeatMapError`` naming the file and line of the first problems found.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _parse_json(path, venue_name, on_progress)
    if suffix == ".csv":
        return _parse_csv(path, venue_name, on_progress)
    shown = f"'{path.suffix}'" if path.suffix else "no extension"
    raise SeatMapError(
        path,
        f"unsupported file type ({shown}); seat maps are read from {' or '.join(SUPPORTED_SUFFIXES)} files",
    )


# --------------------------------------------------------------------------- JSON


def _json_path(loc: _Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json_offset(text: str, loc: _Loc) -> int:
    """Offset of the value at ``loc`` in valid JSON text, or of its deepest existing parent."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    try:
        for part in loc:
            container = pos
            found: int | None = None
            if isinstance(part, str) and text[pos] == "{":
                pos = _skip_ws(text, pos + 1)
                while text[pos] != "}":
                    key, pos = decoder.raw_decode(text, pos)
                    pos = _skip_ws(text, _skip_ws(text, pos) + 1)
                    if key == part:
                        found = pos
                        break
                    pos = _skip_ws(text, decoder.raw_decode(text, pos)[1])
                    if text[pos] == ",":
                        pos = _skip_ws(text, pos + 1)
            elif isinstance(part, int) and text[pos] == "[":
                pos = _skip_ws(text, pos + 1)
                index = 0
                while text[pos] != "]":
                    if index == part:
                        found = pos
                        break
                    pos = _skip_ws(text, decoder.raw_decode(text, pos)[1])
                    if text[pos] == ",":
                        pos = _skip_ws(text, pos + 1)
                    index += 1
            if found is None:
                return container
            pos = found
    except (ValueError, IndexError):
        return pos
    return pos


def _json_line(text: str, loc: _Loc) -> int:
    return text.count("\n", 0, _json_offset(text, loc)) + 1


def _count_json_seats(data: dict[str, Any]) -> int:
    total = 0
    sections = data.get("sections")
    for section in sections if isinstance(sections, list) else ():
        rows = section.get("rows") if isinstance(section, dict) else None
        for row in rows if isinstance(rows, list) else ():
            seats = row.get("seats") if isinstance(row, dict) else None
            if isinstance(seats, list):
                total += len(seats)
    return total


def _json_problems(text: str, errors: Iterable[ErrorDetails], prefix: _Loc = ()) -> list[_Problem]:
    problems = []
    for error in errors:
        loc = prefix + tuple(error["loc"])
        where = _json_path(loc)
        too_long = _too_long_index(error)
        line = _json_line(text, (*loc, too_long) if too_long is not None else loc)
        problems.append(_Problem(line, f"{where}: {_message(error)}" if where else _message(error)))
    return problems


def _parse_json(path: Path, venue_name: str | None, on_progress: ProgressCallback | None) -> VenueCreate:
    text = _read_text(path)
    if not text.strip():
        raise SeatMapError(path, "the file is empty; it should hold one venue object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeatMapError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise SeatMapError(path, "invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise SeatMapError(
            path, f"the file should hold one venue object ({{...}}), not a JSON {type(data).__name__}", 1
        )
    if venue_name is not None:
        data["name"] = venue_name

    progress = _Progress(on_progress, _count_json_seats(data))
    problems: list[_Problem] = []
    # Rows are validated one at a time so progress can be reported and errors point at the row.
    sections = data.get("sections")
    if isinstance(sections, list):
        for i, section in enumerate(sections):
            rows = section.get("rows") if isinstance(section, dict) else None
            if not isinstance(rows, list):
                continue
            for j, row in enumerate(rows):
                if not isinstance(row, dict):
                    continue
                seats = row.get("seats")
                try:
                    rows[j] = RowIn.model_validate(row)
                except ValidationError as exc:
                    problems.extend(_json_problems(text, exc.errors(), ("sections", i, "rows", j)))
                progress.advance(len(seats) if isinstance(seats, list) else 0)
    _raise_problems(path, problems)
    try:
        venue = VenueCreate.model_validate(data)
    except ValidationError as exc:
        _raise_problems(path, _json_problems(text, exc.errors()))
        raise  # pragma: no cover - _raise_problems always raises for a non-empty error list
    progress.finish()
    return venue


# --------------------------------------------------------------------------- CSV


@dataclass
class _CsvRow:
    label: str
    line: int
    seats: list[SeatIn] = field(default_factory=list)
    seat_lines: list[int] = field(default_factory=list)


@dataclass
class _CsvSection:
    name: str
    line: int
    rows: dict[str, _CsvRow] = field(default_factory=dict)


def _read_csv_records(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """Non-blank records with the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        hint = "; is a quote left open?" if "end of data" in str(exc) else ""
        raise SeatMapError(path, f"malformed CSV: {exc}{hint}", start) from None
    return records


def _trim_trailing_empty(fields: list[str], keep: int = 0) -> list[str]:
    """Drop empty fields at the end (spreadsheets often write trailing commas), keeping ``keep`` fields."""
    end = len(fields)
    while end > keep and not fields[end - 1].strip():
        end -= 1
    return fields[:end]


def _csv_header(path: Path, line: int, fields: list[str]) -> dict[str, int]:
    fields = _trim_trailing_empty(fields)
    names = [f.strip().lower() for f in fields]
    expected = ",".join(REQUIRED_COLUMNS) + "[," + ",".join(OPTIONAL_COLUMNS) + "]"
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    if len(names) == 1 and any(sep in fields[0] for sep in ";\t|"):
        raise SeatMapError(path, f"columns must be separated by commas; expected header {expected}", line)
    if not known.intersection(names):
        raise SeatMapError(
            path,
            f"the first line must be a header naming the columns {expected}, got {','.join(fields)}",
            line,
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SeatMapError(path, f"header repeats column(s) {', '.join(map(repr, repeated))}", line)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SeatMapError(
            path,
            f"header has unknown column(s) {', '.join(map(repr, unknown))}; allowed columns are {expected}",
            line,
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise SeatMapError(
            path, f"header lacks column(s) {', '.join(map(repr, missing))}; expected {expected}", line
        )
    return {name: index for index, name in enumerate(names)}


def _parse_csv_seat(fields: list[str], columns: dict[str, int]) -> tuple[str, str, dict[str, Any], list[str]]:
    """Section, row, seat values and the problems of one data line."""
    values = {name: fields[index].strip() for name, index in columns.items()}
    problems = [f"column '{c}' is empty" for c in REQUIRED_COLUMNS if not values[c]]
    seat: dict[str, Any] = {"category": values["category"], "label": values.get("label") or None}
    number = values["number"]
    if number:
        try:
            seat["number"] = int(number)
        except ValueError:
            problems.append(f"column 'number' must be a whole number, got '{number}'")
    for axis in ("x", "y"):
        raw = values[axis]
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"column '{axis}' must be a number, got '{raw}'")
            continue
        if not math.isfinite(value):
            problems.append(f"column '{axis}' must be a finite number, got '{raw}'")
        seat[axis] = value
    return values["section"], values["row"], seat, problems


def _csv_venue_problem(
    error: ErrorDetails, sections: list[_CsvSection], rows: list[list[_CsvRow]]
) -> _Problem:
    """Describe a VenueCreate error in CSV terms, at the line of the offending seat where possible."""
    loc = tuple(error["loc"])
    msg = _message(error)
    too_long = _too_long_index(error)
    ctx = error.get("ctx") or {}
    actual = ctx.get("actual_length", "more")
    if loc and loc[0] == "name":
        return _Problem(None, f"venue name: {msg}")
    if loc == ("sections",) and too_long is not None:
        line = sections[too_long].line if too_long < len(sections) else None
        return _Problem(line, f"a venue holds at most {too_long} sections, this file has {actual}")
    if len(loc) < 2 or loc[0] != "sections" or not isinstance(loc[1], int) or loc[1] >= len(sections):
        return _Problem(None, msg)
    i = loc[1]
    section = sections[i]
    where = f"section '{section.name}'"
    if len(loc) == 2 or loc[2] != "rows":
        return _Problem(section.line, f"{where}: {msg}" if loc[2:] != ("name",) else f"section name: {msg}")
    if len(loc) == 3:
        if too_long is not None and too_long < len(rows[i]):
            return _Problem(
                rows[i][too_long].line, f"{where} holds at most {too_long} rows, this file has {actual}"
            )
        return _Problem(section.line, f"{where}: {msg}")
    j = loc[3]
    if not isinstance(j, int) or j >= len(rows[i]):
        return _Problem(section.line, f"{where}: {msg}")
    row = rows[i][j]
    where = f"{where} row '{row.label}'"
    rest = loc[4:]
    if rest == ("label",):
        return _Problem(row.line, f"row label: {msg}")
    if rest == ("seats",) and too_long is not None and too_long < len(row.seat_lines):
        return _Problem(
            row.seat_lines[too_long], f"{where} holds at most {too_long} seats, this file has {actual}"
        )
    if len(rest) >= 2 and rest[0] == "seats" and isinstance(rest[1], int) and rest[1] < len(row.seat_lines):
        return _Problem(row.seat_lines[rest[1]], f"{where}: {msg}")
    return _Problem(row.line, f"{where}: {msg}")


def _parse_csv(path: Path, venue_name: str | None, on_progress: ProgressCallback | None) -> VenueCreate:
    if venue_name is None or not venue_name.strip():
        raise SeatMapError(path, "a CSV seat map carries no venue name; give the venue a name to read it")
    text = _read_text(path)
    records = _read_csv_records(path, text)
    if not records:
        raise SeatMapError(
            path, f"the file is empty; it needs a header line {','.join(REQUIRED_COLUMNS)}[,label] and seats"
        )
    header_line, header = records[0]
    columns = _csv_header(path, header_line, header)

    data = records[1:]
    progress = _Progress(on_progress, len(data))
    problems: list[_Problem] = []
    sections: dict[str, _CsvSection] = {}
    seen: dict[tuple[str, str, int], int] = {}
    for line, fields in data:
        progress.advance()
        if len(fields) > len(columns):
            fields = _trim_trailing_empty(fields, keep=len(columns))
        if len(fields) != len(columns):
            problems.append(
                _Problem(
                    line,
                    f"expected {len(columns)} fields ({','.join(columns)}), got {len(fields)}",
                )
            )
            continue
        section_name, row_label, values, line_problems = _parse_csv_seat(fields, columns)
        if line_problems:
            problems.extend(_Problem(line, p) for p in line_problems)
            continue
        key = (section_name, row_label, values["number"])
        if key in seen:
            problems.append(
                _Problem(
                    line,
                    f"seat {values['number']} of row '{row_label}' in section '{section_name}' "
                    f"is already on line {seen[key]}",
                )
            )
            continue
        seen[key] = line
        try:
            seat = SeatIn.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                column = error["loc"][0] if error["loc"] else None
                where = f"column '{column}': " if column is not None else ""
                problems.append(_Problem(line, f"{where}{_message(error)}"))
            continue
        section = sections.setdefault(section_name, _CsvSection(section_name, line))
        row = section.rows.setdefault(row_label, _CsvRow(row_label, line))
        row.seats.append(seat)
        row.seat_lines.append(line)
    _raise_problems(path, problems)

    ordered = list(sections.values())
    ordered_rows = [list(s.rows.values()) for s in ordered]
    payload = {
        "name": venue_name,
        "sections": [
            {"name": s.name, "rows": [{"label": r.label, "seats": r.seats} for r in s_rows]}
            for s, s_rows in zip(ordered, ordered_rows, strict=True)
        ],
    }
    try:
        venue = VenueCreate.model_validate(payload)
    except ValidationError as exc:
        _raise_problems(path, [_csv_venue_problem(e, ordered, ordered_rows) for e in exc.errors()])
        raise  # pragma: no cover - _raise_problems always raises for a non-empty error list
    progress.finish()
    return venue


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def venue_to_csv(venue: VenueCreate) -> str:
    """The venue's seats as CSV, one seat per line, readable by ``parse_seatmap``.

    The venue name is not part of the CSV; pass it again when reading the file back.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS])
    for section in venue.sections:
        for row in section.rows:
            for seat in row.seats:
                writer.writerow(
                    [
                        section.name,
                        row.label,
                        seat.number,
                        _format_number(seat.x),
                        _format_number(seat.y),
                        seat.category,
                        seat.label or "",
                    ]
                )
    return out.getvalue()
