"""The one exception type that command-line entry points turn into a one-line message."""


class UserFacingError(Exception):
    """Bad input from the user (a path, an option, a file); the message says what to do.

    Entry points print ``error: <message>`` and exit non-zero instead of a traceback.
    """
