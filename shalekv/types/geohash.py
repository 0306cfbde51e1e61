"""Geohash arithmetic for the GEO commands, as Redis 7.0 does it (geohash.c,
geohash_helper.c), so that scores, positions, distances and search areas come out bit
for bit the same.

A position is stored as a sorted-set score: the 52-bit interleave of its latitude and
longitude cells (26 bits each; latitude in the even bits) over Web Mercator's range
(latitude +-85.05112878). A radius or box search walks the sorted set over at most nine
score ranges: the geohash cell holding the centre, at a precision (step) estimated
from the radius, and its eight neighbours; points found are then checked exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
STEP_MAX = 26  # 52 bits: what a double holds exactly
EARTH_RADIUS = 6372797.560856  # meters: Earth's quadratic mean radius for WGS-84
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA
_M64 = (1 << 64) - 1


class Box(NamedTuple):
    """A cell's bounds in degrees."""

    long_min: float
    long_max: float
    lat_min: float
    lat_max: float


class Cell(NamedTuple):
    bits: int
    step: int  # 0 with bits 0: no cell (a neighbour left out of a search)


NONE = Cell(0, 0)


def _spread(v: int) -> int:
    """The low 32 bits of v in the even bit positions of a 64-bit word."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & _EVEN


def _squash(v: int) -> int:
    """The even bits of v, packed into 32 bits (the inverse of _spread)."""
    v &= _EVEN
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0xFFFFFFFF


def encode(
    longitude: float,
    latitude: float,
    step: int,
    lat_min: float = LAT_MIN,
    lat_max: float = LAT_MAX,
) -> Cell | None:
    """geohashEncode over [-180, 180] x [lat_min, lat_max]; None out of range."""
    if not (LONG_MIN <= longitude <= LONG_MAX and LAT_MIN <= latitude <= LAT_MAX):
        return None
    if not (lat_min <= latitude <= lat_max):
        return None
    lat_off = (latitude - lat_min) / (lat_max - lat_min) * (1 << step)
    long_off = (longitude - LONG_MIN) / (LONG_MAX - LONG_MIN) * (1 << step)
    return Cell(_spread(int(lat_off)) | (_spread(int(long_off)) << 1), step)


def decode(cell: Cell) -> Box:
    """geohashDecode over the Mercator ranges."""
    step = cell.step
    lat_cell = _squash(cell.bits)
    long_cell = _squash(cell.bits >> 1)
    lat_scale = LAT_MAX - LAT_MIN
    long_scale = LONG_MAX - LONG_MIN
    n = float(1 << step)
    return Box(
        LONG_MIN + (long_cell * 1.0 / n) * long_scale,
        LONG_MIN + ((long_cell + 1) * 1.0 / n) * long_scale,
        LAT_MIN + (lat_cell * 1.0 / n) * lat_scale,
        LAT_MIN + ((lat_cell + 1) * 1.0 / n) * lat_scale,
    )


def score_of(longitude: float, latitude: float) -> int | None:
    """The sorted-set score (an integer below 2**52 for valid input) of a position."""
    cell = encode(longitude, latitude, STEP_MAX)
    return None if cell is None else cell.bits << (52 - 2 * STEP_MAX)


def position(score: float) -> tuple[float, float]:
    """decodeGeohash: (longitude, latitude) at the centre of a score's cell, clamped to
    the valid range. The score is truncated to an unsigned 64-bit integer, as C's cast
    does for the values it defines."""
    bits = int(score) & _M64 if math.isfinite(score) and score >= 0 else 0
    b = decode(Cell(bits, STEP_MAX))
    x = (b.long_min + b.long_max) / 2
    y = (b.lat_min + b.lat_max) / 2
    return min(max(x, LONG_MIN), LONG_MAX), min(max(y, LAT_MIN), LAT_MAX)


_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"


def hash_string(score: float) -> str:
    """GEOHASH's 11 characters: the position re-encoded over the standard latitude
    range [-90, 90] (52 bits, then a zero character)."""
    x, y = position(score)
    cell = encode(x, y, STEP_MAX, -90.0, 90.0)
    bits = 0 if cell is None else cell.bits
    out = [_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
    return "".join(out) + _ALPHABET[0]


def _move(cell: Cell, d: int, odd: bool) -> Cell:
    """geohash_move_x (odd bits: longitude) or geohash_move_y (even: latitude)."""
    bits, step = cell
    mine, other = (_ODD, _EVEN) if odd else (_EVEN, _ODD)
    v = bits & mine
    keep = bits & other
    zz = other >> (64 - step * 2)
    if d > 0:
        v = (v + (zz + 1)) & _M64
    else:
        v = ((v | zz) - (zz + 1)) & _M64
    v &= mine >> (64 - step * 2)
    return Cell(v | keep, step)


def neighbours(c: Cell) -> list[Cell]:
    """north, south, east, west, north-east, north-west, south-east, south-west."""

    def at(dx: int, dy: int) -> Cell:
        n = c
        if dx:
            n = _move(n, dx, True)
        if dy:
            n = _move(n, dy, False)
        return n

    return [at(0, 1), at(0, -1), at(1, 0), at(-1, 0), at(1, 1), at(-1, 1), at(1, -1), at(-1, -1)]


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: haversine great-circle distance in meters."""
    lat1r = lat1 * _D_R
    lon1r = lon1 * _D_R
    lat2r = lat2 * _D_R
    lon2r = lon2 * _D_R
    u = math.sin((lat2r - lat1r) / 2)
    v = math.sin((lon2r - lon1r) / 2)
    return (
        2.0 * EARTH_RADIUS * math.asin(math.sqrt(u * u + math.cos(lat1r) * math.cos(lat2r) * v * v))
    )


def _lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(lat2 * _D_R - lat1 * _D_R)


def in_rectangle(
    width_m: float, height_m: float, x1: float, y1: float, x2: float, y2: float
) -> float | None:
    """geohashGetDistanceIfInRectangle: the distance from the centre (x1, y1) if (x2, y2)
    lies in the box (width_m x height_m around the centre), else None."""
    if _lat_distance(y2, y1) > height_m / 2:
        return None
    if distance(x2, y2, x1, y2) > width_m / 2:
        return None
    return distance(x1, y1, x2, y2)


def estimate_step(range_m: float, lat: float) -> int:
    """geohashEstimateStepsByRadius: the cell precision for a search of this size."""
    if range_m == 0:
        return 26
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2  # make sure the range is included in most of the base cases
    if lat > 66 or lat < -66:  # wider cells towards the poles
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def bounding_box(x: float, y: float, width_m: float, height_m: float) -> tuple[float, ...]:
    """geohashBoundingBox: (min lon, min lat, max lon, max lat) of a search of half
    sizes width_m x height_m around (x, y) (a radius search: both the radius)."""
    lat_delta = (height_m / EARTH_RADIUS) / _D_R
    long_delta_top = (width_m / EARTH_RADIUS / math.cos((y + lat_delta) * _D_R)) / _D_R
    long_delta_bottom = (width_m / EARTH_RADIUS / math.cos((y - lat_delta) * _D_R)) / _D_R
    south = y < 0  # the trapezoid points the other way in the southern hemisphere
    d = long_delta_bottom if south else long_delta_top
    return x - d, y - lat_delta, x + d, y + lat_delta


def search_cells(x: float, y: float, radius_m: float, half_w: float, half_h: float) -> list[Cell]:
    """geohashCalculateAreasByShapeWGS84 + membersOfAllNeighbors' order: the centre
    cell and its neighbours (NONE where a neighbour cannot hold a match), at a step
    coarse enough that they cover the search; radius_m bounds the search."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(x, y, half_w, half_h)
    steps = estimate_step(radius_m, y)
    cell = encode(x, y, steps)
    assert cell is not None
    near = neighbours(cell)
    north, south, east, west = (decode(n) for n in near[:4])
    if (
        north.lat_max < max_lat
        or south.lat_min > min_lat
        or east.long_max < max_lon
        or west.long_min > min_lon
    ) and steps > 1:
        steps -= 1
        cell = encode(x, y, steps)
        assert cell is not None
        near = neighbours(cell)
    area = decode(cell)
    n, s, e, w, ne, nw, se, sw = near
    if steps >= 2:
        if area.lat_min < min_lat:
            s = se = sw = NONE
        if area.lat_max > max_lat:
            n = ne = nw = NONE
        if area.long_min < min_lon:
            w = sw = nw = NONE
        if area.long_max > max_lon:
            e = se = ne = NONE
    return [cell, n, s, e, w, ne, nw, se, sw]


def score_range(cell: Cell) -> tuple[int, int]:
    """scoresOfGeoHashBox: [min, max) of the scores inside a cell."""
    shift = 52 - cell.step * 2
    return cell.bits << shift, (cell.bits + 1) << shift
