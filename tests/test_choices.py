"""Each name list (precisions, compile modes, optimizers, schedulers) has one definition, esrgan_plugin.choices:
the commands' choices, the schema's allowed values and the builders' accepted values are derived from it."""
import argparse
import os
import re

import pytest
import torch

from conftest import REPO_ROOT
from esrgan_plugin import choices, infer
from esrgan_plugin.config.schema import options_model
from esrgan_plugin.inference import runtime
from esrgan_plugin.models import optimizers
from esrgan_plugin.training import precision


def option_choices(parser: argparse.ArgumentParser, flag: str):
    return next(action.choices for action in parser._actions if flag in action.option_strings)


def enum_values(schema: dict, *path: str) -> list:
    """The allowed values of the JSON schema's property at ``path`` (through $refs, anyOf and discriminators)."""
    defs = schema['$defs']
    node = schema
    for key in path:
        node = node['properties'][key]
        node = defs[node['$ref'].split('/')[-1]] if '$ref' in node else node
        if 'anyOf' in node and key != path[-1]:
            node = next(defs[n['$ref'].split('/')[-1]] for n in node['anyOf'] if '$ref' in n)
    found = []
    for part in node.get('anyOf', [node]):
        found += part.get('enum', []) + ([part['const']] if 'const' in part else [])
    return found


@pytest.fixture(scope='module')
def json_schema():
    return options_model().model_json_schema()


def test_precisions(json_schema):
    parser = infer.build_parser()
    assert option_choices(parser, '--precision') is choices.PRECISIONS
    assert tuple(precision.DTYPES) == choices.PRECISIONS == tuple(precision.AMP_DTYPES)
    assert enum_values(json_schema, 'train', 'amp') == list(choices.PRECISIONS)
    assert enum_values(json_schema, 'val', 'amp') == list(choices.PRECISIONS)
    for name in choices.PRECISIONS:  # the inference runtime takes the same names to the same dtypes
        assert runtime.choose_dtype(name, torch.device('cuda'))[0] is precision.DTYPES[name]


def test_compile_modes(json_schema):
    assert option_choices(infer.build_parser(), '--compile') == [True, *choices.COMPILE_MODES]
    assert enum_values(json_schema, 'train', 'compile') == list(choices.COMPILE_MODES)
    for mode in choices.COMPILE_MODES:
        assert precision.parse_compile(mode, 'train.compile') == mode


def test_optimizers_and_schedulers(json_schema):
    assert tuple(optimizers.OPTIMIZER_CLASSES) == choices.OPTIMIZERS
    assert tuple(optimizers.SCHEDULER_CLASSES) == choices.SCHEDULERS
    text = str(json_schema)
    for name in choices.OPTIMIZERS + choices.SCHEDULERS:
        assert f"'const': '{name}'" in text or f"'enum': ['{name}']" in text, name
    with pytest.raises(Exception, match='use one of Adam, AdamW'):
        optimizers.build_optimizer({'type': 'SGD', 'lr': 1}, [torch.nn.Parameter(torch.zeros(1))])


def test_no_other_module_spells_out_a_name_list():
    # A second tuple of these names anywhere in the package would be a second definition to keep in step.
    lists = [re.escape(repr(choices.PRECISIONS)), r"'max-autotune-no-cudagraphs'", r"\('Adam', 'AdamW'\)",
             r"'MultiStepRestartLR', 'CosineAnnealingRestartLR'"]
    found = []
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, 'esrgan_plugin')):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith('.py') and not path.endswith(os.path.join('esrgan_plugin', 'choices.py')):
                text = open(path, encoding='utf-8').read()
                found += [f'{path}: {pattern}' for pattern in lists if re.search(pattern, text)]
    assert not found, found
