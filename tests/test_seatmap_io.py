"""Reading seat maps from JSON and CSV files, and the demo venue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from admitone.demo.seatmap import HEIGHT, WIDTH, demo_venue
from admitone.events.schemas import RowIn, SeatIn, SectionIn, VenueCreate
from admitone.events.seatmap_io import SeatMapError, parse_seatmap, venue_to_csv

HEADER = "section,row,number,x,y,category\n"


def small_venue() -> VenueCreate:
    return VenueCreate(
        name="Town Hall",
        sections=[
            SectionIn(
                name="Stalls",
                rows=[
                    RowIn(
                        label="A",
                        seats=[
                            SeatIn(number=1, x=10, y=20, category="A"),
                            SeatIn(number=2, x=22.5, y=20, category="A", label="Stalls A-2 (aisle)"),
                        ],
                    ),
                    RowIn(label="B", seats=[SeatIn(number=1, x=10, y=35.25, category="B")]),
                ],
            ),
            SectionIn(
                name="Balcony, front",
                rows=[RowIn(label="1", seats=[SeatIn(number=7, x=-3.125, y=90, category="C")])],
            ),
        ],
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, venue_name: str | None = "Hall") -> SeatMapError:
    with pytest.raises(SeatMapError) as info:
        parse_seatmap(path, venue_name)
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------------- round trips


def test_json_round_trip(tmp_path: Path) -> None:
    venue = small_venue()
    path = write(tmp_path, "hall.json", venue.model_dump_json(indent=2))
    assert parse_seatmap(path) == venue


def test_json_venue_name_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "hall.json", small_venue().model_dump_json())
    assert parse_seatmap(path, "Renamed").name == "Renamed"


def test_csv_round_trip(tmp_path: Path) -> None:
    venue = small_venue()
    path = write(tmp_path, "hall.csv", venue_to_csv(venue))
    assert parse_seatmap(path, "Town Hall") == venue


def test_demo_venue_csv_round_trip(tmp_path: Path) -> None:
    venue = demo_venue()
    path = write(tmp_path, "demo.csv", venue_to_csv(venue))
    assert parse_seatmap(path, venue.name) == venue


def test_csv_header_any_order_case_and_spaces_bom_and_blank_lines(tmp_path: Path) -> None:
    text = (
        "\ufeff Category , X,Y ,NUMBER,Row,Section,label\n"
        "\n"
        "A,1,2,2,B,Left,\n"
        "B,3,4,1,A,Right,Right A-1\n"
        "   \n"
        "A,5,6,1,B,Left,\n"
        "C,7,8,3,A,Left,\n"
    )
    venue = parse_seatmap(write(tmp_path, "seats.csv", text), "Hall")
    assert [s.name for s in venue.sections] == ["Left", "Right"]
    assert [r.label for r in venue.sections[0].rows] == ["B", "A"]
    assert [s.number for s in venue.sections[0].rows[0].seats] == [2, 1]
    assert venue.sections[1].rows[0].seats[0].label == "Right A-1"
    assert venue.sections[0].rows[0].seats[0].label is None
    assert venue.sections[0].rows[1].seats[0].category == "C"


def test_csv_trailing_empty_fields_are_ignored(tmp_path: Path) -> None:
    text = "section,row,number,x,y,category,\nS,A,1,0,0,A,,\n"
    venue = parse_seatmap(write(tmp_path, "seats.csv", text), "Hall")
    assert venue.sections[0].rows[0].seats[0].number == 1


def test_csv_header_only_gives_venue_without_seats(tmp_path: Path) -> None:
    venue = parse_seatmap(write(tmp_path, "seats.csv", HEADER), "Hall")
    assert venue.sections == []


# --------------------------------------------------------------------------- CSV errors


def test_csv_missing_header_column(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", "\nsection,row,number,x,category\nS,A,1,0,A\n"))
    assert err.line == 2
    assert "line 2" in str(err)
    assert "'y'" in str(err)


def test_csv_unknown_header_column(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", "section,row,number,x,y,category,lable\n"))
    assert "line 1" in str(err)
    assert "'lable'" in str(err)


def test_csv_without_header(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", "S,A,1,0,0,A\n"))
    assert "line 1" in str(err)
    assert "header" in str(err)


def test_csv_semicolon_separated(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", "section;row;number;x;y;category\n"))
    assert "line 1" in str(err)
    assert "commas" in str(err)


def test_csv_wrong_number_of_fields(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", HEADER + "S,A,1,0,0,A\nS,A,2,0,0\n"))
    assert err.line == 3
    assert "line 3" in str(err)
    assert "expected 6 fields" in str(err)
    assert "got 5" in str(err)


@pytest.mark.parametrize(
    ("line", "column", "value"),
    [
        ("S,A,1,abc,0,A", "x", "abc"),
        ("S,A,1,0,1e,A", "y", "1e"),
        ("S,A,one,0,0,A", "number", "one"),
        ("S,A,2.5,0,0,A", "number", "2.5"),
    ],
)
def test_csv_non_numeric_value(tmp_path: Path, line: str, column: str, value: str) -> None:
    path = write(tmp_path, "seats.csv", HEADER + "S,A,9,0,0,A\n\n" + line + "\n")
    err = error_of(path)
    assert str(err) == f"{path} line 4: column '{column}' must be " + (
        f"a whole number, got '{value}'" if column == "number" else f"a number, got '{value}'"
    )


def test_csv_non_finite_coordinate(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", HEADER + "S,A,1,nan,0,A\n"))
    assert "line 2" in str(err)
    assert "finite" in str(err)


@pytest.mark.parametrize("column", ["section", "row", "number", "x", "y", "category"])
def test_csv_empty_required_value(tmp_path: Path, column: str) -> None:
    values = {"section": "S", "row": "A", "number": "1", "x": "0", "y": "0", "category": "A"}
    values[column] = "  "
    line = ",".join(values.values())
    err = error_of(write(tmp_path, "seats.csv", HEADER + "S,A,5,0,0,A\n" + line + "\n"))
    assert err.line == 3
    assert f"line 3: column '{column}' is empty" in str(err)


def test_csv_duplicate_seat_names_both_lines(tmp_path: Path) -> None:
    text = HEADER + "S,A,1,0,0,A\nS,A,2,0,0,A\nS,B,1,0,0,A\n\nS,A,1,5,5,B\n"
    err = error_of(write(tmp_path, "seats.csv", text))
    assert err.line == 6
    assert "line 6" in str(err)
    assert "line 2" in str(err)


def test_csv_seat_validation_maps_to_line(tmp_path: Path) -> None:
    text = HEADER + "S,A,1,0,0,A\nS,A,2,0,0,A\nS,A,0,0,0,A\n"
    err = error_of(write(tmp_path, "seats.csv", text))
    assert err.line == 4
    assert "line 4: column 'number'" in str(err)


def test_csv_coordinate_out_of_range_maps_to_line(tmp_path: Path) -> None:
    text = HEADER + "S,A,1,0,0,A\nS,A,2,5000000,0,A\n"
    err = error_of(write(tmp_path, "seats.csv", text))
    assert "line 3: column 'x'" in str(err)


def test_csv_venue_validation_maps_to_line(tmp_path: Path) -> None:
    long_name = "R" * 60
    text = HEADER + "S,A,1,0,0,A\nT,B,1,0,0,A\n" + f"T,{long_name},1,0,0,A\n"
    err = error_of(write(tmp_path, "seats.csv", text))
    assert err.line == 4
    assert "line 4: row label" in str(err)


def test_csv_too_many_seats_in_row_points_at_first_extra_seat(tmp_path: Path) -> None:
    text = HEADER + "".join(f"S,A,{n},{n},0,A\n" for n in range(1, 1002))
    err = error_of(write(tmp_path, "seats.csv", text))
    assert err.line == 1002
    assert "at most 1000 seats" in str(err)


def test_csv_reports_several_problems(tmp_path: Path) -> None:
    text = HEADER + "S,A,x,0,0,A\nS,A,2,0,0,A\nS,A,3,0,y,A\n"
    err = error_of(write(tmp_path, "seats.csv", text))
    assert err.line == 2
    assert "line 4: column 'y'" in str(err)


def test_csv_needs_venue_name(tmp_path: Path) -> None:
    path = write(tmp_path, "seats.csv", HEADER + "S,A,1,0,0,A\n")
    err = error_of(path, venue_name=None)
    assert "venue name" in str(err)
    assert err.line is None


def test_csv_invalid_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "seats.csv"
    path.write_bytes(HEADER.encode() + b"S,A,1,0,0,A\nS\xe9,A,2,0,0,A\n")
    err = error_of(path)
    assert "line 3" in str(err)
    assert "UTF-8" in str(err)


def test_csv_empty_file(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", "\n\n"))
    assert "empty" in str(err)


# --------------------------------------------------------------------------- JSON errors


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    text = '{\n  "name": "Hall",\n  "sections": [\n    {"name": "S" "rows": []}\n  ]\n}\n'
    err = error_of(write(tmp_path, "hall.json", text))
    assert err.line == 4
    assert "line 4" in str(err)
    assert "column" in str(err)


def test_json_validation_error_names_path_and_line(tmp_path: Path) -> None:
    data = small_venue().model_dump(mode="json")
    data["sections"][1]["rows"][0]["seats"][0]["x"] = "left"
    text = json.dumps(data, indent=2)
    err = error_of(write(tmp_path, "hall.json", text))
    assert "sections[1].rows[0].seats[0].x: Input should be a valid number" in str(err)
    expected_line = next(n for n, line in enumerate(text.splitlines(), 1) if '"x": "left"' in line)
    assert err.line == expected_line
    assert f"line {expected_line}" in str(err)


def test_json_missing_field_points_at_enclosing_object(tmp_path: Path) -> None:
    data = small_venue().model_dump(mode="json")
    del data["sections"][0]["rows"][1]["seats"][0]["category"]
    text = json.dumps(data, indent=2)
    err = error_of(write(tmp_path, "hall.json", text))
    assert "sections[0].rows[1].seats[0].category: Field required" in str(err)
    assert err.line is not None
    assert text.splitlines()[err.line - 1].strip() == "{"
    assert '"number": 1' in text.splitlines()[err.line]


def test_json_section_level_error(tmp_path: Path) -> None:
    data = small_venue().model_dump(mode="json")
    data["sections"][1]["name"] = "Stalls"
    err = error_of(write(tmp_path, "hall.json", json.dumps(data, indent=2)))
    assert "section names repeat" in str(err)


def test_json_not_an_object(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "hall.json", "[1, 2]"))
    assert "venue object" in str(err)


def test_json_reports_first_errors_and_count(tmp_path: Path) -> None:
    data = {
        "name": "Hall",
        "sections": [
            {
                "name": f"S{n}",
                "rows": [{"label": "A", "seats": [{"number": 1, "x": "?", "y": 0, "category": "A"}]}],
            }
            for n in range(8)
        ],
    }
    err = error_of(write(tmp_path, "hall.json", json.dumps(data, indent=1)))
    message = str(err)
    assert "sections[0].rows[0].seats[0].x" in message
    assert "sections[4].rows[0].seats[0].x" in message
    assert "sections[5]" not in message
    assert "and 3 more problems" in message


# --------------------------------------------------------------------------- dispatch and progress


@pytest.mark.parametrize("name", ["hall.xlsx", "hall"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    err = error_of(write(tmp_path, name, "{}"))
    assert ".json" in str(err)
    assert ".csv" in str(err)


def test_missing_file(tmp_path: Path) -> None:
    err = error_of(tmp_path / "nowhere.json")
    assert "not found" in str(err)


def test_progress_csv_ends_with_total(tmp_path: Path) -> None:
    venue = demo_venue()
    seats = sum(len(r.seats) for s in venue.sections for r in s.rows)
    calls: list[tuple[int, int]] = []
    parse_seatmap(write(tmp_path, "demo.csv", venue_to_csv(venue)), "Hall", lambda d, t: calls.append((d, t)))
    assert calls[-1] == (seats, seats)
    assert len(calls) >= 2
    assert all(t == seats for _, t in calls)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})


def test_progress_json_ends_with_total(tmp_path: Path) -> None:
    venue = demo_venue()
    seats = sum(len(r.seats) for s in venue.sections for r in s.rows)
    calls: list[tuple[int, int]] = []
    parse_seatmap(
        write(tmp_path, "demo.json", venue.model_dump_json()), None, lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (seats, seats)
    assert len(calls) >= 2
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})


def test_progress_small_file_called_once_at_end(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    path = write(tmp_path, "seats.csv", HEADER + "S,A,1,0,0,A\n\nS,A,2,1,0,A\n")
    parse_seatmap(path, "Hall", lambda d, t: calls.append((d, t)))
    assert calls == [(2, 2)]


# --------------------------------------------------------------------------- demo venue


def test_demo_venue_shape() -> None:
    venue = demo_venue("Test Hall")
    assert venue.name == "Test Hall"
    assert len(venue.sections) >= 4
    seats = [(s.name, r.label, seat) for s in venue.sections for r in s.rows for seat in r.seats]
    assert 2000 <= len(seats) <= 3000
    keys = [(section, row, seat.number) for section, row, seat in seats]
    assert len(set(keys)) == len(keys)
    labels = [seat.label for _, _, seat in seats]
    assert None not in labels
    assert len(set(labels)) == len(labels)
    for _, _, seat in seats:
        assert 0 <= seat.x <= WIDTH
        assert 0 <= seat.y <= HEIGHT
    assert {seat.category for _, _, seat in seats} == {"A", "B", "C"}


def test_demo_venue_rows_lettered_and_numbered_from_one() -> None:
    for section in demo_venue().sections:
        for row in section.rows:
            assert row.label.isalpha()
            assert len(row.label) == 1
            assert [s.number for s in row.seats] == list(range(1, len(row.seats) + 1))


def test_demo_venue_front_rows_cost_more_than_back_rows() -> None:
    rank = {"A": 0, "B": 1, "C": 2}
    centre = next(s for s in demo_venue().sections if s.name == "Stalls Centre")
    front = [rank[s.category] for s in centre.rows[0].seats]
    back = [rank[s.category] for s in centre.rows[-1].seats]
    assert max(front) < min(back)


def test_demo_venue_is_deterministic() -> None:
    assert demo_venue() == demo_venue()


def test_csv_open_quote_names_line_where_record_starts(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "seats.csv", HEADER + 'S,A,1,0,0,A\nS,A,2,0,0,"B\nS,A,3,0,0,A\n'))
    assert err.line == 3
    assert "quote" in str(err)
