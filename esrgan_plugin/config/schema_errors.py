"""What the schema finds wrong, as one problem per pydantic error: where, what is wrong, what to do."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from esrgan_plugin.config import schema
from esrgan_plugin.config.problems import EXAMPLE, Problem, shown
from esrgan_plugin.config.sections import UnknownOption, suggestion

SECTIONS = {'datasets', 'network_g', 'network_d', 'path', 'train', 'val', 'logger', 'dist_params', 'io_backend',
            'optim_g', 'optim_d', 'scheduler', 'metrics', 'wandb'}
VALUE_KINDS = {
    'int_type': 'a whole number', 'float_type': 'a number', 'bool_type': 'true or false', 'string_type': 'text',
    'list_type': 'a list such as [0.9, 0.99]', 'dict_type': 'a mapping of options',
    'model_type': 'a mapping of options', 'model_attributes_type': 'a mapping of options',
}


def schema_problems(opt: dict, example: str = EXAMPLE[True]) -> list:
    """What the schema finds wrong; ``example`` is the shipped file that missing options point to."""
    try:
        schema.options_model().model_validate(opt)
    except ValidationError as err:
        return [describe(error, opt, example) for error in err.errors()]
    return []


def _keys_in_data(opt: dict, loc: tuple) -> tuple:
    """pydantic's location without the union tags it inserts (``network_g.ESRGANRRDBNet.num_block``)."""
    keys, node = [], opt
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            keys.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            keys.append(part)
            node = node[part] if part < len(node) else None
        elif i == len(loc) - 1:  # a missing key
            keys.append(part)
    return tuple(keys)


def describe(error: dict, opt: dict, example: str = EXAMPLE[True]) -> Problem:
    """One pydantic error as what is wrong and what to do."""
    kind, value, ctx = error['type'], error.get('input'), error.get('ctx') or {}
    keys = _keys_in_data(opt, error['loc'])
    if kind == 'extra_forbidden':
        hint = value.hint if isinstance(value, UnknownOption) else 'unknown option; remove it'
        return Problem(keys, hint)
    if kind == 'missing':
        what = 'section' if keys and keys[-1] in SECTIONS else 'option'
        return Problem(keys, f'required {what} is missing; add it (see {example})')
    if kind == 'unknown_type':
        category, *choices = error['msg'].split('|')
        return Problem(keys + ('type',) if isinstance(value, dict) else keys,
                       _unknown_type(category, choices, value, example))
    if kind == 'literal_error':
        choices = [c.strip().strip("'") for c in ctx.get('expected', '').replace(' or ', ', ').split(', ')]
        close = suggestion(value, choices) if isinstance(value, str) else None
        advice = f'did you mean {close}? (allowed: {", ".join(choices)})' if close else \
            f'use one of: {", ".join(choices)}'
        return Problem(keys, f'{shown(value)} is not allowed; {advice}')
    if kind in VALUE_KINDS:
        as_text = {'int_type': 'write a whole number without quotes, e.g. 16',
                   'float_type': 'write a number without quotes, e.g. 2e-4',
                   'bool_type': 'write true or false without quotes'}
        advice = as_text.get(kind, 'fix the value') if isinstance(value, str) else 'fix the value'
        return Problem(keys, f'expected {VALUE_KINDS[kind]}, got {shown(value)}; {advice}')
    bounds = {'greater_than_equal': ('>=', 'ge'), 'greater_than': ('>', 'gt'), 'less_than': ('<', 'lt'),
              'less_than_equal': ('<=', 'le')}
    if kind in bounds:
        sign, name = bounds[kind]
        return Problem(keys, f'must be {sign} {ctx.get(name)}, got {shown(value)}; change the value')
    if kind == 'too_short':
        return Problem(keys, 'is empty; add at least one entry')
    return Problem(keys, f'{error["msg"]}; fix the value')


def _unknown_type(category: str, choices: list, value: Any, example: str) -> str:
    listed = ', '.join(choices) if len(choices) <= 12 else f"the names in basicsr's {category} registry"
    if not isinstance(value, dict):
        return f'expected a mapping with a type key, got {shown(value)}; see {example}'
    if 'type' not in value:
        return f'required option is missing; set the {category} type, one of: {listed}'
    close = suggestion(value['type'], choices)
    advice = f'did you mean {close}?' if close else f'use one of: {listed} (or register your own class)'
    return f'unknown {category} type {shown(value["type"])}; {advice}'
