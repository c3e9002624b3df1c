"""The exception types that command-line entry points turn into a one-line message."""
from __future__ import annotations


class UserFacingError(Exception):
    """Bad input from the user (a path, an option, a file); the message says what to do.

    Entry points print ``error: <message>`` and exit non-zero instead of a traceback.
    """


class DataError(UserFacingError, ValueError):
    """Training data that cannot be used as it is; the message names the file or key and what to do."""


class DiskFullError(UserFacingError):
    """A write failed because the file system is full; the previous file under that name is intact."""


def one_line(err: BaseException) -> str:
    """The message of ``err``, without the wrapper a DataLoader worker puts around it.

    torch re-raises an exception from a worker process as the same type, but
    with the message ``Caught <Type> in DataLoader worker process N.`` followed
    by the worker's whole traceback; its last line holds the original message.
    """
    message = str(err)
    marker = '\nOriginal Traceback (most recent call last):'
    if message.startswith('Caught ') and marker in message:
        last = message.rstrip().splitlines()[-1]
        prefix = f'{type(err).__qualname__}: '
        start = last.find(prefix)
        if start >= 0:
            return last[start + len(prefix):]
    return message
