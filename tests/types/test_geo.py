"""GEO commands: differential tests against a real redis-server 7.0 (positions, hashes,
distances, radius and box searches with every option, stores), fixed cases and
hypothesis-generated point sets near the equator, a pole, the antimeridian and in the
southern hemisphere."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.types.differential import Pair
from tests.types.test_zsets import raw

SICILY = [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]


def test_positions_hashes_distances(pair: Pair) -> None:
    pair.same("geoadd", "g", SICILY)
    pair.same("geoadd", "g", [13.361389, 38.115556, "Palermo"], ch=True)
    pair.same("geoadd", "g", [13.5, 38.2, "Palermo", 1, 2, "new"], xx=True, ch=True)
    pair.same("geoadd", "g", [13.6, 38.3, "Palermo", 1, 2, "new"], nx=True)
    pair.same("geopos", "g", "Palermo", "nope", "Catania")
    pair.same("geopos", "nokey", "a", "b")
    pair.same("geohash", "g", "Palermo", "Catania", "nope")
    pair.same("geohash", "nokey", "a")
    for unit in (None, "m", "km", "ft", "mi"):
        pair.same("geodist", "g", "Palermo", "Catania", unit)
    pair.same("geodist", "g", "Palermo", "nope")
    pair.same("geodist", "nokey", "a", "b")
    pair.same("zrange", "g", 0, -1, withscores=True)
    # extremes of the valid range, and just past them
    for lon, lat in ((180, 85.05112878), (-180, -85.05112878), (0, 0), (180.0001, 0), (0, 85.06)):
        pair.same("geoadd", "edge", [lon, lat, f"{lon},{lat}"])
    pair.same("zrange", "edge", 0, -1, withscores=True)
    pair.same("geopos", "edge", "180,85.05112878", "-180,-85.05112878", "0,0")
    pair.same("geohash", "edge", "180,85.05112878", "-180,-85.05112878", "0,0")
    # a member added with ZADD: any score decodes to some position
    pair.same("zadd", "g", {"plain": 7})
    pair.same("geopos", "g", "plain")
    pair.same("geohash", "g", "plain")


def test_errors(pair: Pair) -> None:
    pair.same("set", "str", "x")
    pair.same("geoadd", "g", SICILY)
    for args in [
        ("GEOADD", "g", 200, 10, "m"),
        ("GEOADD", "g", 10, 86, "m"),
        ("GEOADD", "g", "x", 10, "m"),
        ("GEOADD", "g", 10, "nan", "m"),
        ("GEOADD", "g", "xx", "nx", 1, 2, "m"),
        ("GEOADD", "g", 1, 2, "m", 3),
        ("GEOADD", "g", "nx", "ch", "xx"),
        ("GEOADD", "str", 1, 2, "m"),
        ("GEOPOS", "str", "a"),
        ("GEOHASH", "str", "a"),
        ("GEODIST", "str", "a", "b"),
        ("GEODIST", "g", "Palermo", "Catania", "yd"),
        ("GEODIST", "g", "Palermo", "Catania", "km", "x"),
        ("GEORADIUS", "g", 15, 37, -1, "km"),
        ("GEORADIUS", "g", 15, 37, "x", "km"),
        ("GEORADIUS", "g", 15, 37, 10, "yd"),
        ("GEORADIUS", "g", 15, 37, 10, "km", "ANY"),
        ("GEORADIUS", "g", 15, 37, 10, "km", "COUNT", 0),
        ("GEORADIUS", "g", 15, 37, 10, "km", "COUNT", "x"),
        ("GEORADIUS", "g", 15, 37, 10, "km", "STORE", "d", "WITHDIST"),
        ("GEORADIUS", "g", 15, 37, 10, "km", "BOGUS"),
        ("GEORADIUS", "str", 15, 37, 10, "km"),
        ("GEORADIUS_RO", "g", 15, 37, 10, "km", "STORE", "d"),
        ("GEORADIUSBYMEMBER", "g", "nope", 10, "km"),
        ("GEORADIUSBYMEMBER", "nokey", "nope", 10, "km", "STORE", "d"),
        ("GEORADIUSBYMEMBER", "nokey", "nope", "x", "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km", "FROMMEMBER", "Palermo"),
        ("GEOSEARCH", "g", "BYRADIUS", 1, "km", "ASC", "WITHDIST", "x"),
        ("geosearch", "g", "BYRADIUS", 1, "km", "ASC", "WITHDIST"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "ASC", "WITHDIST"),
        ("GEOSEARCH", "g", "FROMMEMBER", "nope", "BYBOX", 1, 2, "km"),
        ("GEOSEARCH", "nokey", "FROMMEMBER", "nope", "BYBOX", 1, 2, "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "BYBOX", -1, 2, "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "BYBOX", "w", 2, "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "BYBOX", 1, "h", "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km", "BYBOX", 1, 1, "km"),
        ("GEOSEARCH", "g", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km", "STOREDIST"),
        ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km", "WITHHASH"),
        ("GEOSEARCHSTORE", "d", "nokey", "FROMLONLAT", 1, 2, "BYRADIUS", 1, "km"),
    ]:
        raw(pair, *args)


def test_searches_fixed(pair: Pair) -> None:
    pair.same("geoadd", "g", SICILY)
    pair.same("geoadd", "g", [12.758489, 38.788135, "edge1", 17.241510, 38.788135, "edge2"])
    for kw in (
        {},
        {"withdist": True},
        {"withcoord": True, "withhash": True},
        {"withdist": True, "sort": "DESC", "count": 2},
        {"count": 1, "any": True},
        {"count": 3, "any": True, "sort": "ASC"},
    ):
        pair.same("georadius", "g", 15, 37, 200, "km", **kw)
        pair.same("georadiusbymember", "g", "Palermo", 250, "km", **kw)
        pair.same("geosearch", "g", longitude=15, latitude=37, radius=200, unit="km", **kw)
        pair.same("geosearch", "g", member="Catania", width=500, height=300, unit="km", **kw)
    pair.same("georadius", "g", 15, 37, 200, "km", store="d1")
    pair.same("zrange", "d1", 0, -1, withscores=True)
    pair.same("georadius", "g", 15, 37, 200, "km", store_dist="d2", count=1)
    pair.same("zrange", "d2", 0, -1, withscores=True)
    pair.same("geosearchstore", "d3", "g", member="Palermo", radius=300, unit="km")
    pair.same("geosearchstore", "d4", "g", member="Palermo", radius=300, unit="km", storedist=True)
    pair.same("zrange", "d3", 0, -1, withscores=True)
    pair.same("zrange", "d4", 0, -1, withscores=True)
    pair.same("geosearchstore", "d4", "g", longitude=0, latitude=0, radius=1, unit="m")
    pair.same("exists", "d4")  # an empty result deletes the destination
    raw(pair, "GEORADIUS_RO", "g", 15, 37, 200, "km", "WITHDIST", "ASC")
    raw(pair, "GEORADIUSBYMEMBER_RO", "g", "Palermo", 200, "km", "WITHCOORD", "DESC")
    pair.same("georadius", "nokey", 15, 37, 200, "km")
    pair.same("georadius", "nokey", 15, 37, 200, "km", store="d1")
    pair.same("exists", "d1")
    pair.check_all_keys()


def test_unsorted_order_over_a_grid(pair: Pair) -> None:
    """Without ASC/DESC the reply lists the centre cell's points, then the north,
    south, east, west, north-east, north-west, south-east and south-west cells', each in
    score order: a grid of points fills all nine."""
    for cx, cy in ((13.36, 38.11), (-70.6, -33.4), (179.95, 0.02)):
        pts = []
        for i in range(-10, 11):
            for j in range(-10, 11):
                x = cx + i * 0.1
                x = x - 360 if x > 180 else x
                pts += [x, cy + j * 0.1, f"{i},{j}"]
        pair.same("geoadd", "grid", pts)
        for r in (3, 12, 40, 90, 400):
            pair.same("georadius", "grid", cx, cy, r, "km")
            pair.same(
                "geosearch", "grid", longitude=cx, latitude=cy, width=r, height=r / 2, unit="km"
            )
            pair.same("georadius", "grid", cx, cy, r, "km", count=5, any=True)
        pair.same("delete", "grid")


def test_count_with_ties_is_redis_partial_sort(pair: Pair) -> None:
    """COUNT below the number found sorts with Redis's pqsort, which is not stable:
    points at the same distance must come out in its order (60 at one spot, 40 around)."""
    pts: list = []
    for i in range(60):
        pts += [2.35, 48.85, f"same{i}"]
    for i in range(40):
        pts += [2.35 + (i % 7 - 3) * 0.01, 48.85 + (i % 5 - 2) * 0.01, f"near{i}"]
    pair.same("geoadd", "ties", pts)
    for count in (1, 6, 7, 8, 20, 41, 60, 61, 99, 100, 150):
        for sort in ("ASC", "DESC"):
            pair.same("georadius", "ties", 2.35, 48.85, 10, "km", count=count, sort=sort)
        pair.same("geosearch", "ties", member="same3", radius=5, unit="km", count=count)


# ---------------------------------------------------------------- generated

CENTERS = [(13.36, 38.11), (-0.12, 51.5), (179.9, 0.3), (-179.95, -0.2), (2.0, 84.7),
           (-70.6, -33.4), (0.0, 0.0), (151.2, -85.0)]  # fmt: skip
UNITS = ["m", "km", "ft", "mi"]
SIZES = [0, 1, 75, 1500, 30000, 250000, 2000000, 7000000]  # meters (converted to the unit)


@st.composite
def points(draw: Any, centers: list[tuple[float, float]]) -> list[tuple[float, float, str]]:
    out = []
    n = draw(st.integers(0, 30))
    for i in range(n):
        cx, cy = draw(st.sampled_from(centers))
        dx = draw(st.floats(-2, 2, allow_nan=False))
        dy = draw(st.floats(-2, 2, allow_nan=False))
        x = min(max(cx + dx, -180.0), 180.0)
        y = min(max(cy + dy, -85.05112878), 85.05112878)
        out.append((x, y, f"p{i}"))
    return out


def _size(meters: int, unit: str) -> str:
    per = {"m": 1.0, "km": 1000.0, "ft": 0.3048, "mi": 1609.34}[unit]
    return repr(meters / per)


@st.composite
def searches(
    draw: Any, centers: list[tuple[float, float]]
) -> tuple[str, list[Any], dict[str, Any]]:
    unit = draw(st.sampled_from(UNITS))
    cx, cy = draw(st.sampled_from(centers))
    x = min(max(cx + draw(st.floats(-1, 1, allow_nan=False)), -180.0), 180.0)
    y = min(max(cy + draw(st.floats(-1, 1, allow_nan=False)), -85.05112878), 85.05112878)
    opts: dict[str, Any] = {}
    for flag in ("withdist", "withcoord", "withhash"):
        if draw(st.booleans()):
            opts[flag] = True
    sort = draw(st.sampled_from([None, "ASC", "DESC"]))
    if sort:
        opts["sort"] = sort
    count = draw(st.sampled_from([None, 1, 3, 50]))
    if count:
        opts["count"] = count
        if draw(st.booleans()):
            opts["any"] = True
    kind = draw(st.sampled_from(["georadius", "geosearch-radius", "geosearch-box"]))
    if kind == "georadius":
        return "georadius", ["g", x, y, _size(draw(st.sampled_from(SIZES)), unit), unit], opts
    where: dict[str, Any] = {"longitude": x, "latitude": y}
    if draw(st.booleans()):
        where = {"member": draw(st.sampled_from(["p0", "p1", "p5", "nope"]))}
    if kind == "geosearch-radius":
        where["radius"] = _size(draw(st.sampled_from(SIZES)), unit)
    else:
        where["width"] = _size(draw(st.sampled_from(SIZES)), unit)
        where["height"] = _size(draw(st.sampled_from(SIZES)), unit)
    return "geosearch", ["g"], {**where, "unit": unit, **opts}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_searches(pair: Pair, data: st.DataObject) -> None:
    """Points around one or two places, searches around the same places."""
    centers = data.draw(st.lists(st.sampled_from(CENTERS), min_size=1, max_size=2))
    pts = data.draw(points(centers))
    queries = data.draw(st.lists(searches(centers), min_size=1, max_size=8))
    pair.shale.flushall()
    pair.real.flushall()
    if pts:
        pair.same("geoadd", "g", [v for p in pts for v in p])
    pair.same("zrange", "g", 0, -1, withscores=True)
    for method, args, kwargs in queries:
        pair.same(method, *args, **kwargs)
        if not any(k in kwargs for k in ("withdist", "withcoord", "withhash")):
            if method == "georadius":
                pair.same(method, *args, **kwargs, store_dist="dst")
            else:
                pair.same("geosearchstore", "dst", *args, **kwargs)
            pair.same("zrange", "dst", 0, -1, withscores=True)
    names = [p[2] for p in pts[:6]] + ["nope"]
    pair.same("geopos", "g", *names)
    pair.same("geohash", "g", *names)
    if len(names) >= 3:
        pair.same("geodist", "g", names[0], names[1], "km")
