"""A demo concert hall: stalls in three blocks in front of the stage and a balcony behind them.

The plan is drawn in a 1000 x 800 box with the stage at the top. Rows are arcs around a point
far above the stage, so they curve gently towards it; aisles are angular gaps between blocks.
Seats are numbered from 1 at the audience's left of each row; rows are lettered from the stage
backwards, skipping I and O. Price categories follow the distance from the centre of the stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from admitone.events.schemas import RowIn, SeatIn, SectionIn, VenueCreate

WIDTH = 1000.0
HEIGHT = 800.0

# Rows are arcs centred on this point; radius grows row by row away from the stage.
_FOCUS_X = WIDTH / 2
_FOCUS_Y = -1150.0
_STAGE_CENTRE = (WIDTH / 2, 80.0)
_SEAT_PITCH = 12.0
_ROW_PITCH = 15.0
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read like 1 and 0


@dataclass(frozen=True)
class _Block:
    """A group of seats between two angles (degrees, 0 = straight towards the stage)."""

    start: float
    end: float


@dataclass(frozen=True)
class _Section:
    name: str
    first_radius: float
    rows: int
    blocks: tuple[_Block, ...]


_AISLE = (5.0, 5.8)
_STALLS_EDGE = 15.0
_BALCONY_EDGE = 13.5
_STALLS_RADIUS = 1350.0
_BALCONY_RADIUS = _STALLS_RADIUS + 24 * _ROW_PITCH + 45.0  # a cross-aisle under the balcony front

_SECTIONS = (
    _Section("Stalls Left", _STALLS_RADIUS, 24, (_Block(-_STALLS_EDGE, -_AISLE[1]),)),
    _Section("Stalls Centre", _STALLS_RADIUS, 24, (_Block(-_AISLE[0], _AISLE[0]),)),
    _Section("Stalls Right", _STALLS_RADIUS, 24, (_Block(_AISLE[1], _STALLS_EDGE),)),
    _Section(
        "Balcony",
        _BALCONY_RADIUS,
        12,
        (
            _Block(-_BALCONY_EDGE, -_AISLE[1]),
            _Block(-_AISLE[0], _AISLE[0]),
            _Block(_AISLE[1], _BALCONY_EDGE),
        ),
    ),
)


def _category(x: float, y: float) -> str:
    distance = math.hypot(x - _STAGE_CENTRE[0], y - _STAGE_CENTRE[1])
    if distance < 300:
        return "A"
    if distance < 540:
        return "B"
    return "C"


def _row_positions(radius: float, blocks: tuple[_Block, ...]) -> list[tuple[float, float]]:
    """Seat positions of one row from the audience's left to right."""
    positions: list[tuple[float, float]] = []
    step = _SEAT_PITCH / radius  # radians between neighbouring seats
    for block in blocks:
        start, end = math.radians(block.start), math.radians(block.end)
        count = int((end - start) / step)
        middle = (start + end) / 2
        for k in range(count):
            angle = middle + (k - (count - 1) / 2) * step
            x = round(_FOCUS_X + radius * math.sin(angle), 1)
            y = round(_FOCUS_Y + radius * math.cos(angle), 1)
            positions.append((x, y))
    return positions


def demo_venue(name: str = "Admitone Hall") -> VenueCreate:
    """A seated concert hall of about 2,400 seats in four sections, the same on every call."""
    sections: list[SectionIn] = []
    for spec in _SECTIONS:
        rows: list[RowIn] = []
        for r in range(spec.rows):
            letter = _ROW_LETTERS[r]
            radius = spec.first_radius + r * _ROW_PITCH
            seats = [
                SeatIn(
                    number=n,
                    x=x,
                    y=y,
                    category=_category(x, y),
                    label=f"{spec.name} {letter}-{n}",
                )
                for n, (x, y) in enumerate(_row_positions(radius, spec.blocks), start=1)
            ]
            rows.append(RowIn(label=letter, seats=seats))
        sections.append(SectionIn(name=spec.name, rows=rows))
    return VenueCreate(name=name, sections=sections)
