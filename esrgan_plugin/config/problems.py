"""A problem of an option file, and reading a dict that may not have the shape the schema asks for.

Every check (``config.schema_errors``, ``config.cross_field_rules``, ``config.checks``) says what is wrong as
a :class:`Problem`; ``config.checks`` turns them into the one-line messages.
"""
from __future__ import annotations

from typing import Any, NamedTuple

# The shipped file a message points to: for training, for testing.
EXAMPLE = {True: 'options/train_RRDBNet_PSNR_x4.yml', False: 'options/test_set14.yml'}


class Problem(NamedTuple):
    keys: tuple  # where, in the option dict
    message: str  # what is wrong; what to do
    # 'error': the run would break, or do something other than what the file says; it is refused.
    # 'warning': valid but probably unintended (a setting the run never reaches); one line, and the run goes on.
    severity: str = 'error'


def warning(keys: tuple, message: str) -> Problem:
    return Problem(keys, message, 'warning')


def get(opt: Any, *keys: str) -> Any:
    """``opt[keys[0]][keys[1]]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(opt, dict):
            return None
        opt = opt.get(key)
    return opt


def mapping(opt: Any, *keys: str) -> dict:
    """The section at ``keys``, or {} when it is missing or not a mapping (the schema reports that)."""
    section = get(opt, *keys)
    return section if isinstance(section, dict) else {}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value as the user wrote it in YAML, saying when it was read as text."""
    if isinstance(value, str):
        return f'{value!r} (text)'
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)
