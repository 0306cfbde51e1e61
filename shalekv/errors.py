"""Typed exceptions shared by every layer of ShaleKV."""

from __future__ import annotations

from redis import exceptions as _redis


class ShaleError(Exception):
    """Base class of every error ShaleKV raises on purpose."""


class CorruptionError(ShaleError):
    """Stored bytes failed a checksum or a structural check.

    Carries the file and byte offset so an operator can find the damage.
    """

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        self.path = path
        self.offset = offset
        where = ""
        if path is not None:
            where = f" in {path}"
            if offset is not None:
                where += f" at offset {offset}"
        super().__init__(f"corruption{where}: {message}")


class LockError(ShaleError):
    """The data directory is already open in another process (or DB object)."""


class ClosedError(ShaleError):
    """The database was used after close()."""


class InvalidArgumentError(ShaleError, ValueError):
    """An option or argument is out of its documented range."""


class BackgroundError(ShaleError):
    """A flush or compaction failed; writes are refused until the DB is reopened.

    As in RocksDB's background-error state: the DB stays readable and nothing
    acknowledged is lost, but it will not accept writes it may not persist.
    """


# ---------------------------------------------------------------- Redis-compatible errors
#
# Replies must match Redis word for word, so the texts live here once; each error class
# carries its text as the exception message (what redis-py shows as str(err)).


# The Redis-compatible errors subclass redis-py's own, so code written against redis-py
# (`except redis.ResponseError`) works unchanged with the embedded API (decision D10).


class ResponseError(ShaleError, _redis.ResponseError):
    """A command failed the way a Redis server reports it (an `-ERR ...` reply); str()
    is the reply text without the `ERR ` prefix, as redis-py shows it."""


class WrongTypeError(ResponseError):
    """The key holds a value of another type (Redis's WRONGTYPE)."""

    err_prefix = ""  # the text carries its own code

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or WRONGTYPE)


class DataError(ShaleError, _redis.DataError):
    """An argument Python cannot send as a Redis argument (as redis-py's DataError)."""


class WatchError(ShaleError, _redis.WatchError):
    """A WATCHed key changed before the transaction ran (as redis-py's WatchError)."""


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
NOT_FLOAT = "value is not a valid float"
SYNTAX = "syntax error"
NO_SUCH_KEY = "no such key"
INDEX_OUT_OF_RANGE = "index out of range"
OVERFLOW = "increment or decrement would overflow"
INCR_NAN = "increment would produce NaN or Infinity"
HASH_NOT_INTEGER = "hash value is not an integer"
HASH_NOT_FLOAT = "hash value is not a float"
ZADD_NX_XX = "XX and NX options at the same time are not compatible"
ZADD_GT_LT_NX = "GT, LT, and/or NX options at the same time are not compatible"
ZADD_INCR_PAIR = "INCR option supports a single increment-element pair"
ZSET_NAN = "resulting score is not a number (NaN)"
MIN_MAX_FLOAT = "min or max is not a float"
MIN_MAX_LEX = "min or max not valid string range item"
DB_INDEX = "DB index is out of range"
INVALID_EXPIRE = "invalid expire time in '{}' command"
BIT_OFFSET = "bit offset is not an integer or out of range"
BIT_VALUE = "bit is not an integer or out of range"
STRING_TOO_LONG = "string exceeds maximum allowed size (proto-max-bulk-len)"
POSITIVE = "value is out of range, must be positive"
NAN_OR_INF = "value is NaN or Infinity"
VALUE_OUT_OF_RANGE = "value is out of range"
LONG_RANGE = (
    "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)
NUMKEYS_POSITIVE = "numkeys should be greater than 0"
NUMKEYS_TOO_MANY = "Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = "LIMIT can't be negative"
INVALID_CURSOR = "invalid cursor"
LPOS_RANK_ZERO = (
    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "MAXLEN can't be negative"
LMPOP_COUNT_POSITIVE = "count should be greater than 0"
WEIGHT_NOT_FLOAT = "weight value is not a float"
ZRANGE_LIMIT_NEEDS_BY = (
    "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
)
ZRANGE_WITHSCORES_BYLEX = "syntax error, WITHSCORES not supported in combination with BYLEX"
SETOP_NO_KEYS = "at least 1 input key is needed for '{}' command"
