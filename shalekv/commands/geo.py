"""GEO commands (Redis 7.0's geo.c) over sorted sets: a position is a member whose score
is its 52-bit geohash (`shalekv.types.geohash`), so every sorted-set command works on
a geo key too, as in Redis. Searches read at most nine score ranges of the set (the
cells around the centre) and check each point found exactly; replies, errors and the
order of unsorted results are Redis's.
"""

from __future__ import annotations

import math
from typing import Any

from shalekv.commands.pqsort import pqsort
from shalekv.commands.registry import Context, command, syntax
from shalekv.commands.reply import NULL_ARRAY, DoubleText
from shalekv.commands.zsets import parse_score
from shalekv.errors import ResponseError
from shalekv.types import geohash as gh
from shalekv.types import zsets as zs
from shalekv.types.numbers import parse_int

_UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
UNIT_ERROR = "unsupported unit provided. please use M, KM, FT, MI"
NO_MEMBER = "could not decode requested zset member"


def _lon_lat(a: bytes, b: bytes) -> tuple[float, float]:
    """extractLongLatOrReply."""
    x, y = parse_score(a), parse_score(b)
    if not (gh.LONG_MIN <= x <= gh.LONG_MAX and gh.LAT_MIN <= y <= gh.LAT_MAX):
        raise ResponseError(f"invalid longitude,latitude pair {x:f},{y:f}")
    return x, y


def _unit(b: bytes) -> float:
    """extractUnitOrReply: meters per unit."""
    u = _UNITS.get(b.lower())
    if u is None:
        raise ResponseError(UNIT_ERROR)
    return u


def _human(v: float) -> DoubleText:
    """addReplyHumanLongDouble: "%.17Lf" without trailing zeros (a bulk in RESP2, a
    double in RESP3)."""
    s = f"{v:.17f}"
    if "." in s:
        s = s.rstrip("0")
        if s.endswith("."):
            s = s[:-1]
    if s == "-0":
        s = "0"
    return DoubleText(s.encode())


def _distance_text(d: float) -> bytes:
    """addReplyDoubleDistance: four decimals, a bulk string in both protocols."""
    return b"%.4f" % d


@command("geoadd", -5, "write denyoom")
def geoadd(ctx: Context, a: list[bytes]) -> int:
    """Add members at (longitude, latitude) positions to a sorted set."""
    nx = xx = ch = False
    i = 2
    while i < len(a):
        o = a[i].lower()
        if o == b"nx":
            nx = True
        elif o == b"xx":
            xx = True
        elif o == b"ch":
            ch = True
        else:
            break
        i += 1
    if (len(a) - i) % 3 or (nx and xx):
        raise syntax()
    pairs = []
    for j in range(i, len(a), 3):
        x, y = _lon_lat(a[j], a[j + 1])
        score = gh.score_of(x, y)
        assert score is not None
        pairs.append((float(score), a[j + 2]))
    if not pairs:  # zaddGenericCommand: no score-member pair
        raise syntax()
    added, updated, _ = zs.add(ctx.t, ctx.db, a[1], pairs, nx, xx)
    return added + updated if ch else added


@command("geopos", -2, "readonly")
def geopos(ctx: Context, a: list[bytes]) -> list[Any]:
    """Longitude and latitude of members (a null array for a missing one)."""
    out: list[Any] = []
    for s in zs.mscore(ctx.t, ctx.db, a[1], a[2:]):
        if s is None:
            out.append(NULL_ARRAY)
        else:
            x, y = gh.position(s)
            out.append([_human(x), _human(y)])
    return out


@command("geohash", -2, "readonly")
def geohash(ctx: Context, a: list[bytes]) -> list[bytes | None]:
    """Members' positions as 11-character geohash strings."""
    return [
        None if s is None else gh.hash_string(s).encode()
        for s in zs.mscore(ctx.t, ctx.db, a[1], a[2:])
    ]


@command("geodist", -4, "readonly")
def geodist(ctx: Context, a: list[bytes]) -> bytes | None:
    """Distance between two members, in meters or the given unit."""
    to_meter = 1.0
    if len(a) == 5:
        to_meter = _unit(a[4])
    elif len(a) > 5:
        raise syntax()
    s1, s2 = zs.mscore(ctx.t, ctx.db, a[1], a[2:4])
    if s1 is None or s2 is None:
        return None
    x1, y1 = gh.position(s1)
    x2, y2 = gh.position(s2)
    return _distance_text(gh.distance(x1, y1, x2, y2) / to_meter)


# ---------------------------------------------------------------- searches

COORDS, MEMBER, NOSTORE, SEARCH, SEARCHSTORE = 1, 2, 4, 8, 16


class _Shape:
    """GeoShape: a circle (radius) or a box (width x height) around (x, y), in units
    of `conversion` meters."""

    __slots__ = ("x", "y", "conversion", "radius", "width", "height", "box")

    def __init__(self) -> None:
        self.x = self.y = 0.0
        self.conversion = 1.0
        self.radius = self.width = self.height = 0.0
        self.box = False

    def contains(self, x: float, y: float) -> float | None:
        """geoWithinShape: the distance in meters from the centre, None outside."""
        c = self.conversion
        if self.box:
            return gh.in_rectangle(self.width * c, self.height * c, self.x, self.y, x, y)
        d = gh.distance(self.x, self.y, x, y)
        return None if d > self.radius * c else d

    def cells(self) -> list[gh.Cell]:
        c = self.conversion
        if self.box:
            radius = math.sqrt((self.width / 2) ** 2 + (self.height / 2) ** 2) * c
            return gh.search_cells(self.x, self.y, radius, c * self.width / 2, c * self.height / 2)
        r = self.radius * c
        return gh.search_cells(self.x, self.y, r, r, r)


def _radius(shape: _Shape, num: bytes, unit: bytes) -> None:
    """extractDistanceOrReply."""
    r = parse_score(num, "need numeric radius")
    if r < 0:
        raise ResponseError("radius cannot be negative")
    shape.radius = r
    shape.conversion = _unit(unit)


def _box(shape: _Shape, w: bytes, h: bytes, unit: bytes) -> None:
    """extractBoxOrReply."""
    width = parse_score(w, "need numeric width")
    height = parse_score(h, "need numeric height")
    if height < 0 or width < 0:
        raise ResponseError("height or width cannot be negative")
    shape.width, shape.height = width, height
    shape.conversion = _unit(unit)
    shape.box = True


def _from_member(ctx: Context, key: bytes, member: bytes, shape: _Shape) -> None:
    s = zs.score(ctx.t, ctx.db, key, member)
    if s is None:
        raise ResponseError(NO_MEMBER)
    shape.x, shape.y = gh.position(s)


_Point = tuple[float, float, float, float, bytes]  # distance, score, lon, lat, member


def _find(ctx: Context, key: bytes, shape: _Shape, limit: int) -> list[_Point]:
    """membersOfAllNeighbors: the points inside the shape, cell by cell in Redis's
    order (each cell's in score order), stopping at `limit` found when it is set."""
    found: list[_Point] = []
    cells = shape.cells()
    last = 0
    for i, cell in enumerate(cells):
        if cell == gh.NONE:
            continue
        # A huge radius can make adjacent neighbours the same cell: skip a repeat.
        if last and cell == cells[last]:
            continue
        if found and limit and len(found) >= limit:
            break
        lo, hi = gh.score_range(cell)
        r = (float(lo), False, float(hi), True)  # min <= score < max
        pairs = zs.range_(ctx.t, ctx.db, key, zs.SCORE, r, withscores=True)
        for member, score in pairs:  # type: ignore[misc]
            assert isinstance(member, bytes) and isinstance(score, float)
            x, y = gh.position(score)
            d = shape.contains(x, y)
            if d is not None:
                found.append((d, score, x, y, member))
            if found and limit and len(found) >= limit:
                break
        last = i
    return found


def _search(ctx: Context, a: list[bytes], src: int, flags: int) -> Any:
    """georadiusGeneric: GEORADIUS[BYMEMBER][_RO], GEOSEARCH, GEOSEARCHSTORE."""
    key = a[src]
    exists = zs.check_type(ctx.t, ctx.db, key)
    # lookupKeyRead once, as Redis: the member lookup and the cell scans below load
    # the set again, and must not count more keyspace hits or misses
    ctx.t.count_reads = False
    shape = _Shape()
    store: bytes | None = None
    storedist = False
    if flags & COORDS:
        base = 6
        shape.x, shape.y = _lon_lat(a[2], a[3])
        _radius(shape, a[4], a[5])
    elif flags & MEMBER and not exists:
        base = 5  # no source: parse the rest, to know which empty reply to send
    elif flags & MEMBER:
        base = 5
        _from_member(ctx, key, a[2], shape)
        _radius(shape, a[3], a[4])
    else:
        base = 2
        if flags & SEARCHSTORE:
            base = 3
            store = a[1]
    withdist = withhash = withcoord = anyflag = False
    frommember = fromloc = byradius = bybox = False
    sort = 0  # 1 ascending, -1 descending
    count = 0
    n = len(a) - base
    i = 0
    while i < n:
        arg = a[base + i].lower()
        left = n - i - 1
        if arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoord = True
        elif arg == b"any":
            anyflag = True
        elif arg == b"asc":
            sort = 1
        elif arg == b"desc":
            sort = -1
        elif arg == b"count" and left >= 1:
            count = parse_int(a[base + i + 1])
            if count <= 0:
                raise ResponseError("COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and not flags & (NOSTORE | SEARCH):
            store = a[base + i + 1]
            storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & SEARCH and flags & SEARCHSTORE:
            storedist = True
        elif arg == b"frommember" and left >= 1 and flags & SEARCH and not fromloc:
            if exists:
                _from_member(ctx, key, a[base + i + 1], shape)
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and flags & SEARCH and not frommember:
            shape.x, shape.y = _lon_lat(a[base + i + 1], a[base + i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and left >= 2 and flags & SEARCH and not bybox:
            _radius(shape, a[base + i + 1], a[base + i + 2])
            byradius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and flags & SEARCH and not byradius:
            _box(shape, a[base + i + 1], a[base + i + 2], a[base + i + 3])
            bybox = True
            i += 3
        else:
            raise syntax()
        i += 1
    name = a[0].decode("utf-8", "replace")
    if store is not None and (withdist or withhash or withcoord):
        what = "GEOSEARCHSTORE" if flags & SEARCHSTORE else "STORE option in GEORADIUS"
        raise ResponseError(
            f"{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )
    if flags & SEARCH and not (frommember or fromloc):
        raise ResponseError(f"exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & SEARCH and not (byradius or bybox):
        raise ResponseError(f"exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if anyflag and not count:
        raise ResponseError("the ANY argument requires COUNT argument")
    if not exists:
        return [] if store is None else zs.store(ctx.t, ctx.db, store, [])
    if count and not sort and not anyflag:
        sort = 1  # the closest COUNT: sorted, as Redis does
    found = _find(ctx, key, shape, count if anyflag else 0)
    returned = len(found) if not count or len(found) < count else count
    if sort:
        if returned == len(found):
            found.sort(key=_dist, reverse=sort < 0)  # glibc's qsort: a merge sort, stable
        else:
            pqsort(found, _asc if sort > 0 else _desc, 0, returned - 1)
    found = found[:returned]
    conv = shape.conversion
    if store is not None:
        pairs = [(p[4], p[0] / conv if storedist else p[1]) for p in found]
        return zs.store(ctx.t, ctx.db, store, pairs)
    if not (withdist or withhash or withcoord):
        return [p[4] for p in found]
    out = []
    for d, score, x, y, member in found:
        item: list[Any] = [member]
        if withdist:
            item.append(_distance_text(d / conv))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append([_human(x), _human(y)])
        out.append(item)
    return out


def _dist(p: _Point) -> float:
    return p[0]


def _asc(a: _Point, b: _Point) -> int:
    """sort_gp_asc."""
    return 1 if a[0] > b[0] else (0 if a[0] == b[0] else -1)


def _desc(a: _Point, b: _Point) -> int:
    return -_asc(a, b)


@command("georadius", -6, "write denyoom movablekeys")
def georadius(ctx: Context, a: list[bytes]) -> Any:
    """Members within a radius of a position (STORE/STOREDIST write the result)."""
    return _search(ctx, a, 1, COORDS)


@command("georadius_ro", -6, "readonly")
def georadius_ro(ctx: Context, a: list[bytes]) -> Any:
    """GEORADIUS without STORE."""
    return _search(ctx, a, 1, COORDS | NOSTORE)


@command("georadiusbymember", -5, "write denyoom movablekeys")
def georadiusbymember(ctx: Context, a: list[bytes]) -> Any:
    """Members within a radius of a member."""
    return _search(ctx, a, 1, MEMBER)


@command("georadiusbymember_ro", -5, "readonly")
def georadiusbymember_ro(ctx: Context, a: list[bytes]) -> Any:
    """GEORADIUSBYMEMBER without STORE."""
    return _search(ctx, a, 1, MEMBER | NOSTORE)


@command("geosearch", -7, "readonly")
def geosearch(ctx: Context, a: list[bytes]) -> Any:
    """Members inside a circle or a box around a member or a position."""
    return _search(ctx, a, 1, SEARCH)


@command("geosearchstore", -8, "write denyoom", 1, 2, 1)
def geosearchstore(ctx: Context, a: list[bytes]) -> Any:
    """GEOSEARCH, its result stored as a sorted set (scores: geohashes or distances)."""
    return _search(ctx, a, 2, SEARCH | SEARCHSTORE)
