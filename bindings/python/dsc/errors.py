"""Exceptions for the DSC_E* codes of dsc.h.

Each code has its own class; where Python has a matching built-in
(FileNotFoundError, PermissionError, TimeoutError, ValueError...) the class
derives from it too, so `except FileNotFoundError` works as users expect.
"""
import errno as _errno

OK = 0
EINVAL, ENOMEM, EURL, ENOTFOUND, EACCESS, ECREDS = -1, -2, -3, -4, -5, -6
ETIMEDOUT, ENET, ETHROTTLED, ESERVER, EPROTO = -7, -8, -9, -10, -11
ECHANGED, EIO, ECANCELED, EHTTP, EAGAIN, ENOCACHE = -12, -13, -14, -15, -16, -17


class Error(Exception):
    """A libdsc failure: `.code` is the DSC_E* code (negative int),
    `.message` the library's detail (S3 error code, request id, URL).

    Error(code, message), or Error(message) with the class's own code (the
    form torch's DataLoader uses to re-raise a worker's exception)."""
    code = None

    def __init__(self, *args):
        if len(args) == 2 and isinstance(args[0], int):
            code, message = args
        elif len(args) == 1 and isinstance(args[0], str):
            code, message = type(self).code, args[0]
        else:
            raise TypeError("Error(code, message) or Error(message)")
        self.code = code
        self.message = message
        # OSError-derived classes get a POSIX errno, so e.errno works too.
        posix = _POSIX.get(code)
        if isinstance(self, OSError) and posix is not None:
            OSError.__init__(self, posix, message)
        else:
            Exception.__init__(self, code, message)

    def __str__(self):
        name = _NAMES.get(self.code, "error %s" % self.code)
        return "%s: %s" % (name, self.message) if self.message else name

    def __reduce__(self):
        return (type(self), (self.code, self.message))


class InvalidArgument(Error, ValueError):
    code = EINVAL


class OutOfMemory(Error, MemoryError):
    code = ENOMEM


class InvalidURL(Error, ValueError):
    code = EURL


class NotFound(Error, FileNotFoundError):
    code = ENOTFOUND


class AccessDenied(Error, PermissionError):
    code = EACCESS


class CredentialsError(Error):
    code = ECREDS


class Timeout(Error, TimeoutError):
    code = ETIMEDOUT


class NetworkError(Error, ConnectionError):
    code = ENET


class Throttled(Error):
    code = ETHROTTLED


class ServerError(Error):
    code = ESERVER


class ProtocolError(Error):
    code = EPROTO


class Changed(Error):
    """The object was overwritten after it was opened."""
    code = ECHANGED


class LocalIOError(Error, OSError):
    code = EIO


class Canceled(Error):
    code = ECANCELED


class HTTPError(Error):
    code = EHTTP


class QueueFull(Error):
    code = EAGAIN


class NoCache(Error):
    code = ENOCACHE


_CLASSES = {c.code: c for c in (
    InvalidArgument, OutOfMemory, InvalidURL, NotFound, AccessDenied,
    CredentialsError, Timeout, NetworkError, Throttled, ServerError,
    ProtocolError, Changed, LocalIOError, Canceled, HTTPError, QueueFull,
    NoCache)}
# dsc_strerror's names (a test keeps them equal), so str(e) needs no
# library call, also when an exception is re-made in another process.
_NAMES = {
    EINVAL: "invalid argument", ENOMEM: "out of memory",
    EURL: "malformed URL", ENOTFOUND: "no such key or bucket",
    EACCESS: "access denied", ECREDS: "credentials missing or unreadable",
    ETIMEDOUT: "timed out", ENET: "network error",
    ETHROTTLED: "throttled by the server (SlowDown)",
    ESERVER: "server error", EPROTO: "malformed response",
    ECHANGED: "object changed since it was opened", EIO: "local I/O error",
    ECANCELED: "canceled", EHTTP: "unexpected HTTP status",
    EAGAIN: "prefetch queue full", ENOCACHE: "no node cache configured",
}
_POSIX = {
    ENOTFOUND: _errno.ENOENT, EACCESS: _errno.EACCES,
    ETIMEDOUT: _errno.ETIMEDOUT, ENET: _errno.ECONNRESET, EIO: _errno.EIO,
}


# Shown and pickled as dsc.NotFound etc., the names users import.
for _cls in (Error, *_CLASSES.values()):
    _cls.__module__ = "dsc"


def from_code(code, message):
    """The exception for a DSC_E* code (the base Error for unknown ones)."""
    return _CLASSES.get(code, Error)(code, message)
