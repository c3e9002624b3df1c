"""Sections whose ``type`` names a registered class, checked against that class's own keywords.

The keywords are read with ``inspect.signature`` from basicsr's registries, so the plugin's generator, basicsr's
losses and metrics, and classes registered later need no copy here. A ``type`` registered by neither basicsr nor
the plugin (a user's own arch or loss) gets a section that accepts any key; ``config.cross_field_rules`` warns
that it is passed on unchecked. Optimizers and schedulers are the classes ``models.optimizers`` builds.
"""
from __future__ import annotations

import inspect
import types
import typing
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Discriminator, Field, Tag, create_model

from esrgan_plugin.config.sections import DATASET_SECTIONS, OpenSection, OtherDatasetOptions, Section


# ----------------------------------------------------------------------------- sections of registered classes
# Keywords whose valid values the signatures do not say, by (type, keyword); type None: any class.
# The classes reject anything else when they are built, which is after basicsr has created folders.
KEYWORD_CHOICES = {
    (None, 'reduction'): ('none', 'mean', 'sum'),
    (None, 'input_order'): ('HWC', 'CHW'),
    (None, 'gan_type'): ('vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge'),
    (None, 'convert_to'): ('y', 'gray'),
    ('ESRGANPerceptualLoss', 'criterion'): ('l1', 'l2'),
    ('PerceptualLoss', 'criterion'): ('l1', 'fro'),  # basicsr 1.4.2's 'l2' names a torch class that does not exist
}


def keyword_choices(type_name: str, keyword: str) -> Optional[tuple]:
    if (type_name, keyword) == ('ESRGANPerceptualLoss', 'layer'):
        from esrgan_plugin.losses.perceptual_loss import VGG19_CONV_INDEX
        return tuple(VGG19_CONV_INDEX)
    return KEYWORD_CHOICES.get((type_name, keyword)) or KEYWORD_CHOICES.get((None, keyword))


# Keywords whose default is an int but which take any number.
FLOAT_KEYWORDS = {'eta_min'}
# Arguments the caller supplies, never the option file.
SUPPLIED_BY_CALLER = {'self', 'params', 'optimizer', 'last_epoch', 'img', 'img2'}
SIMPLE_TYPES = (bool, int, float, str)


def _simple_annotation(annotation: Any) -> Any:
    """``int``, ``float``, ``bool`` or ``str`` when ``annotation`` is one of them or Optional of one, else None."""
    if annotation in SIMPLE_TYPES:
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = set(typing.get_args(annotation)) - {type(None)}
        if len(args) == 1 and args <= set(SIMPLE_TYPES):
            return args.pop()
    return None


def _annotation(type_name: str, name: str, parameter: inspect.Parameter) -> Any:
    """The pydantic type of one keyword: its choices, a simple annotation, or the type of its default."""
    default = parameter.default
    if keyword_choices(type_name, name):
        kind = Literal[keyword_choices(type_name, name)]
    elif name in FLOAT_KEYWORDS:
        kind = float
    elif _simple_annotation(parameter.annotation) is not None:
        kind = _simple_annotation(parameter.annotation)
    elif isinstance(default, SIMPLE_TYPES):
        kind = type(default)
    elif isinstance(default, (tuple, list)):
        kind = list
    else:  # no default, None, or something YAML cannot write anyway
        kind = Any
    return Optional[kind] if default is None else kind


def _signature(obj: Any) -> inspect.Signature:
    try:
        return inspect.signature(obj, eval_str=True)
    except Exception:  # an annotation that does not evaluate: the defaults still say enough
        return inspect.signature(obj)


def keyword_section(category: str, name: str, obj: Any, extra_fields: Optional[dict] = None) -> type:
    """A section for ``type: name``: one field per keyword of ``obj`` (a class or function)."""
    fields = {'type': (Literal[name], ...)}
    for key, parameter in _signature(obj).parameters.items():
        if key in SUPPLIED_BY_CALLER or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = parameter.default
        if default is parameter.empty:
            default = ...
        elif isinstance(default, tuple):
            default = list(default)
        elif not isinstance(default, (*SIMPLE_TYPES, list, type(None))):  # e.g. a class: not JSON
            default = Field(default_factory=lambda value=default: value)
        fields[key] = (_annotation(name, key, parameter), default)
    fields.update(extra_fields or {})
    doc = (inspect.getdoc(obj) or '').split('\n')[0]
    return create_model(f'{category}_{name}', __base__=Section, __doc__=doc or None, **fields)


def open_section(category: str, names: list, base: type = OpenSection) -> type:
    """One section for every type registered outside basicsr and the plugin: any key passes."""
    return create_model(f'{category}_registered_elsewhere', __base__=base, type=(Literal[tuple(names)], ...))


def is_ours_or_basicsrs(obj: Any) -> bool:
    return getattr(obj, '__module__', '').split('.')[0] in ('basicsr', 'esrgan_plugin')


def typed_union(category: str, sections: dict, elsewhere: Optional[type], names: list) -> Any:
    """A union of sections picked by their ``type`` key; an unknown type is one error naming the choices."""
    members = [Annotated[section, Tag(name)] for name, section in sections.items()]
    if elsewhere is not None:
        members.append(Annotated[elsewhere, Tag('registered elsewhere')])

    def pick(value: Any) -> Optional[str]:
        kind = value.get('type') if isinstance(value, dict) else getattr(value, 'type', None)
        if not isinstance(kind, str):
            return None
        if kind in sections:
            return kind
        return 'registered elsewhere' if elsewhere is not None and kind in names else None

    return Annotated[Union[tuple(members)], Discriminator(
        # The message carries the choices (option_check suggests the closest); a context dict is unhashable.
        pick, custom_error_type='unknown_type', custom_error_message=f'{category}|{"|".join(names)}')]


def registered(registry) -> dict:
    """Name -> class or function, as ``registry.get`` finds them.

    basicsr registers some names with a suffix (``SRVGGNetCompact_basicsr``) and its
    ``get`` also finds them without it, so both spellings are valid ``type`` values.
    """
    objects = dict(registry._obj_map)
    for name, obj in list(objects.items()):
        if name.endswith('_basicsr'):
            objects.setdefault(name[:-len('_basicsr')], obj)
    return objects


def registered_sections(category: str, registry, extra_fields: Optional[dict] = None) -> tuple:
    """For every name in ``registry``: basicsr's and the plugin's sections, one open section for the rest."""
    objects = registered(registry)
    ours = {name: keyword_section(category, name, obj, extra_fields) for name, obj in objects.items()
            if is_ours_or_basicsrs(obj)}
    others = [name for name in objects if name not in ours]
    return ours, open_section(category, others) if others else None, list(objects)


def optimizer_union() -> Any:
    from esrgan_plugin.models.optimizers import OPTIMIZER_CLASSES
    sections = {name: keyword_section('optimizer', name, cls) for name, cls in OPTIMIZER_CLASSES.items()}
    return typed_union('optimizer', sections, None, list(OPTIMIZER_CLASSES))


def scheduler_union() -> Any:
    from esrgan_plugin.models.optimizers import SCHEDULER_CLASSES
    sections = {name: keyword_section('scheduler', name, cls) for name, cls in SCHEDULER_CLASSES.items()}
    return typed_union('scheduler', sections, None, list(SCHEDULER_CLASSES))


def dataset_union() -> Any:
    from basicsr.utils.registry import DATASET_REGISTRY
    objects = registered(DATASET_REGISTRY)
    sections = {name: DATASET_SECTIONS[name] for name in objects if name in DATASET_SECTIONS}
    others = [name for name in objects if name not in sections]
    elsewhere = open_section('dataset', others, OtherDatasetOptions) if others else None
    return typed_union('dataset', sections, elsewhere, list(objects))
