"""The schema of option files: every option ``python -m esrgan_plugin.train``/``.test`` read, as pydantic models.

One model serves both the check before a run (``option_check``) and editors
(``python -m esrgan_plugin.schema > esrgan_options.schema.json``).

Sections are strict: an unknown key is an error, and values are not coerced
(``"no"`` is not a bool, ``16.0`` is not an int), because basicsr reads the file
itself afterwards and would see the uncoerced value. Sections whose ``type`` names
a registered class are checked against that class's own keywords, read with
``inspect.signature`` from basicsr's registries (so the plugin's generator, basicsr's
losses and metrics, and new ones registered later need no copy here). A ``type``
registered by neither basicsr nor the plugin (a user's own arch or loss) gets a
section that accepts any key; ``option_check`` warns that it is passed on unchecked.

To add an option, add a field to the one section class that holds it below.
Importing this module needs only pydantic; ``options_model()`` imports the
registries (torch, basicsr) when it is first called.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import json
import sys
import types
import typing
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, PlainValidator, Tag,
                      WithJsonSchema, create_model, model_validator)
from pydantic_core import PydanticCustomError

PRECISIONS = ('fp32', 'bf16', 'fp16')
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')


# ----------------------------------------------------------------------------- building blocks
class UnknownOption:
    """Stands in for the value of a key a section does not have, carrying what to tell the user."""

    def __init__(self, hint: str) -> None:
        self.hint = hint

    def __repr__(self) -> str:  # what pydantic prints as the input
        return self.hint


def suggestion(word: str, choices) -> Optional[str]:
    """The closest choice to a misspelt ``word``, or None."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None


class Section(BaseModel):
    """A mapping of options: unknown keys are errors, values are taken as written (no coercion)."""

    model_config = ConfigDict(extra='forbid', strict=True)
    # Keys basicsr sets itself from the command line and the folders; writing them has no effect.
    set_by_launcher: ClassVar[tuple] = ()

    @model_validator(mode='before')
    @classmethod
    def _explain_unknown_keys(cls, data: Any) -> Any:
        # pydantic reports an unknown key with its value; the value is replaced by the advice to give.
        if not isinstance(data, dict) or cls.model_config.get('extra') != 'forbid':
            return data
        known = cls.model_fields
        explained = {}
        for key, value in data.items():
            if key in known:
                explained[key] = value
            elif key in cls.set_by_launcher:
                explained[key] = UnknownOption('is set by the launcher (from the command line and folders); '
                                               'remove it')
            else:
                close = suggestion(key, known)
                explained[key] = UnknownOption(f'unknown option; did you mean {close}?' if close else
                                               f'unknown option; remove it (options here: {", ".join(known)})')
        return explained


class OpenSection(Section):
    """A section of a class registered outside basicsr and the plugin: its own keys pass through."""

    model_config = ConfigDict(extra='allow', strict=True)


def _whole(value: float) -> float:
    if not float(value).is_integer():  # also .inf and .nan
        raise PydanticCustomError('whole_number', 'expected a whole number, got {value}', {'value': value})
    return value


# A count written as 5000 or !!float 5e3 (basicsr's own files do the latter); basicsr uses it as written.
Count = Annotated[float, AfterValidator(_whole), Field(ge=1), WithJsonSchema({'type': 'number', 'minimum': 1})]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]


def _num_gpu(value: Any) -> Any:
    if value == 'auto' or (type(value) is int and value >= 0):
        return value
    raise PydanticCustomError('num_gpu', "expected 'auto' or a whole number >= 0, got {value}", {'value': repr(value)})


NumGpu = Annotated[Any, PlainValidator(_num_gpu),
                   WithJsonSchema({'anyOf': [{'type': 'integer', 'minimum': 0}, {'const': 'auto'}]})]


def _compile(value: Any) -> Any:
    if type(value) is bool or value in COMPILE_MODES:
        return value
    raise PydanticCustomError('compile_mode', 'expected true, false or a torch.compile mode ({modes}), got {value}',
                              {'value': repr(value), 'modes': ', '.join(COMPILE_MODES)})


CompileOption = Annotated[Any, PlainValidator(_compile),
                          WithJsonSchema({'anyOf': [{'type': 'boolean'}, {'enum': list(COMPILE_MODES)}]})]


# ----------------------------------------------------------------------------- sections with fixed keys
class IoBackend(Section):
    type: Literal['disk', 'lmdb'] = Field(description='lmdb for *.lmdb folders, disk for image folders')


class DataloaderOptions(Section):
    """Keys basicsr's launcher and ``build_dataloader`` read, whatever the dataset type."""

    set_by_launcher: ClassVar[tuple] = ('phase', 'scale')
    name: str
    num_worker_per_gpu: Optional[NonNegativeInt] = Field(None, description='DataLoader workers (train phase)')
    batch_size_per_gpu: Optional[PositiveInt] = Field(None, description='batch size per process (train phase)')
    dataset_enlarge_ratio: PositiveInt = 1
    prefetch_mode: Optional[Literal['cpu', 'cuda']] = None
    num_prefetch_queue: PositiveInt = 1
    pin_memory: bool = False
    persistent_workers: bool = False


class PairedDatasetOptions(DataloaderOptions):
    """DIV2KPairedDataset (the plugin's) and basicsr's PairedImageDataset read the same keys."""

    dataroot_gt: str
    dataroot_lq: str
    io_backend: IoBackend
    filename_tmpl: str = '{}'
    gt_size: Optional[PositiveInt] = Field(None, description='HR patch size (train phase); a multiple of scale')
    use_hflip: bool = False
    use_rot: bool = False
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None


class DIV2KPairedDatasetOptions(PairedDatasetOptions):
    type: Literal['DIV2KPairedDataset']
    color: Optional[Literal['rgb']] = None


class PairedImageDatasetOptions(PairedDatasetOptions):
    type: Literal['PairedImageDataset']
    meta_info_file: Optional[str] = None
    color: Optional[Literal['y']] = None


class OtherDatasetOptions(DataloaderOptions):
    """Another registered dataset reads its own keys from its dict: only the loader's keys are typed here."""

    model_config = ConfigDict(extra='allow', strict=True)


DATASET_SECTIONS = {'DIV2KPairedDataset': DIV2KPairedDatasetOptions,
                    'PairedImageDataset': PairedImageDatasetOptions}


class PathOptions(Section):
    set_by_launcher: ClassVar[tuple] = ('experiments_root', 'models', 'training_states', 'log', 'visualization',
                                        'results_root')
    pretrain_network_g: Optional[str] = Field(None, description='generator checkpoint, any layout')
    param_key_g: Optional[str] = Field(None, description="params, params_ema, or ~ for the EMA weights if present")
    strict_load_g: bool = True
    pretrain_network_d: Optional[str] = None
    param_key_d: Optional[str] = None
    strict_load_d: bool = True
    resume_state: Optional[str] = None
    ignore_resume_networks: Optional[list[str]] = None


class WandbOptions(Section):
    project: Optional[str] = None
    resume_id: Optional[str] = None


class LoggerOptions(Section):
    print_freq: Count
    save_checkpoint_freq: Count
    use_tb_logger: bool
    wandb: Optional[WandbOptions] = None


class DistParams(Section):
    backend: Optional[str] = None
    port: Optional[Annotated[int, Field(ge=1, le=65535)]] = None


class TrainBase(Section):
    """``train:`` keys other than the typed sections (optimizers, scheduler, losses: see options_model)."""

    total_iter: Count
    warmup_iter: Annotated[int, Field(ge=-1)] = -1
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = Field(0, description='0: no EMA of the generator')
    net_d_iters: PositiveInt = 1
    net_d_init_iters: NonNegativeInt = 0
    max_nonfinite_steps: PositiveInt = Field(10, description='non-finite losses in a row that stop training')
    amp: Literal[PRECISIONS] = Field('fp32', description='mixed precision of the training step')
    channels_last: bool = False
    compile: CompileOption = Field(False, description='torch.compile the generator: false, true or a mode')
    deterministic: bool = Field(False, description='only deterministic kernels: GPU runs repeat bit for bit, slower')


class ValBase(Section):
    val_freq: Optional[Count] = Field(None, description='validate every val_freq iterations (training)')
    save_img: bool
    suffix: Optional[str] = None
    pbar: bool = False
    # Validation/test precision; unset: training's (esrgan_plugin.training.precision.evaluation_precision).
    amp: Optional[Literal[PRECISIONS]] = Field(None, description="validation/test precision; unset: train.amp's")
    channels_last: Optional[bool] = Field(None, description="unset: train.channels_last's")
    compile: Optional[CompileOption] = Field(None, description="unset: train.compile's")


class OptionsBase(Section):
    set_by_launcher: ClassVar[tuple] = ('is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path')
    name: str = Field(description='experiment name: experiments/<name>, results/<name>')
    scale: PositiveInt
    num_gpu: NumGpu = Field(description="'auto' (all CUDA devices, 0 without CUDA) or a number; 0: CPU")
    manual_seed: Optional[int] = None
    find_unused_parameters: bool = False
    path: PathOptions


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
    import torch
    names = ('Adam', 'AdamW')  # what the plugin's models build (basicsr's SRModel: Adam only)
    sections = {name: keyword_section('optimizer', name, getattr(torch.optim, name)) for name in names}
    return typed_union('optimizer', sections, None, list(names))


def scheduler_union() -> Any:
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR
    classes = {'MultiStepLR': MultiStepRestartLR, 'MultiStepRestartLR': MultiStepRestartLR,
               'CosineAnnealingRestartLR': CosineAnnealingRestartLR}
    sections = {name: keyword_section('scheduler', name, cls) for name, cls in classes.items()}
    return typed_union('scheduler', sections, None, list(classes))


def dataset_union() -> Any:
    from basicsr.utils.registry import DATASET_REGISTRY
    objects = registered(DATASET_REGISTRY)
    sections = {name: DATASET_SECTIONS[name] for name in objects if name in DATASET_SECTIONS}
    others = [name for name in objects if name not in sections]
    elsewhere = open_section('dataset', others, OtherDatasetOptions) if others else None
    return typed_union('dataset', sections, elsewhere, list(objects))


def _registry_names() -> tuple:
    """What the registries hold now; the model is rebuilt when something new is registered."""
    import esrgan_plugin  # noqa: F401  registration (and basicsr's adaptations)
    from basicsr.utils import registry
    return tuple(tuple(r._obj_map) for r in (registry.ARCH_REGISTRY, registry.LOSS_REGISTRY, registry.METRIC_REGISTRY,
                                             registry.DATASET_REGISTRY, registry.MODEL_REGISTRY))


def options_model() -> type:
    """The top-level model of an option file, built from the registries as they are now."""
    return _options_model(_registry_names())


@functools.lru_cache(maxsize=4)
def _options_model(registry_names: tuple) -> type:
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    archs, other_archs, arch_names = registered_sections('network', ARCH_REGISTRY)
    network = typed_union('network', archs, other_archs, arch_names)
    # The test command may read the architecture off the checkpoint instead (network_g absent or type auto).
    auto = create_model('network_auto', __base__=Section, type=(Literal['auto'], ...))
    generator = typed_union('network', {**archs, 'auto': auto}, other_archs, arch_names + ['auto'])
    loss = typed_union('loss', *registered_sections('loss', LOSS_REGISTRY))
    metric = typed_union('metric', *registered_sections('metric', METRIC_REGISTRY, extra_fields={
        'better': (Optional[Literal['higher', 'lower']], Field(None, description=(
            'which way is better (log and best-metric tracking); default: lower for calculate_niqe and '
            'calculate_lpips, higher for the others (esrgan_plugin.metrics.scoring)')))}))
    optimizer, scheduler = optimizer_union(), scheduler_union()

    train = create_model(
        'TrainOptions', __base__=TrainBase,
        optim_g=(optimizer, ...), optim_d=(Optional[optimizer], None), scheduler=(Optional[scheduler], None),
        pixel_opt=(Optional[loss], None), perceptual_opt=(Optional[loss], None), gan_opt=(Optional[loss], None),
        ldl_opt=(Optional[loss], None))
    val = create_model('ValOptions', __base__=ValBase, metrics=(Optional[dict[str, metric]], None))
    model_types = tuple(registered(MODEL_REGISTRY))
    return create_model(
        'ESRGANPluginOptions', __base__=OptionsBase,
        __doc__='Option file of python -m esrgan_plugin.train / esrgan_plugin.test (basicsr 1.4.2 format).',
        model_type=(Literal[model_types], Field(description='a model registered in basicsr (ESRGAN...: the plugin)')),
        datasets=(Annotated[dict[str, dataset_union()], Field(min_length=1)], ...),
        network_g=(Optional[generator], None), network_d=(Optional[network], None),
        train=(Optional[train], None), val=(Optional[val], None), logger=(Optional[LoggerOptions], None),
        dist_params=(Optional[DistParams], None))


def json_schema() -> dict:
    """JSON schema (draft-07) of ``options_model()``, for editors."""
    schema = options_model().model_json_schema()
    schema['$schema'] = 'http://json-schema.org/draft-07/schema#'  # what editors' YAML servers read best
    return schema


def main(argv: Optional[list] = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.schema',
        description='Print the JSON schema of option files (for editor completion and inline errors), e.g. '
        'python -m esrgan_plugin.schema > esrgan_options.schema.json')
    parser.add_argument('-o', '--output', help='write to this file instead of standard output')
    args = parser.parse_args(argv)
    from esrgan_plugin import register

    register()  # the schema lists the registered classes; registration waits until the arguments are parsed
    text = json.dumps(json_schema(), indent=1)
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    else:
        from esrgan_plugin.cli import say
        say(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
