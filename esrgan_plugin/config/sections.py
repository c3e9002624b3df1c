"""The fixed sections of option files, as pydantic models, and the building blocks of every section.

Sections are strict: an unknown key is an error, and values are not coerced (``"no"`` is not a bool, ``16.0`` is
not an int), because basicsr reads the dict afterwards and would see the uncoerced value. To add an option, add a
field to the one section class that holds it below. Only pydantic here (no torch).
"""
from __future__ import annotations

import difflib
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from esrgan_plugin.choices import (BLUR_KERNELS, COMPILE_MODES, DEGRADATIONS, DIST_TIMEOUT_S, PRECISIONS,
                                   REALWORLD_DEFAULTS, REALWORLD_QUEUE_SIZE)


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
    num_worker_per_gpu: Optional[NonNegativeInt] = Field(None, description='DataLoader workers per process')
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


# The real-world degradation's keys: types and lengths here, defaults from the one table in choices.py; what the
# values must satisfy (bounds, order, sums, odd sizes) is in config/cross_field_rules.py.
Range = Annotated[list[float], Field(min_length=2, max_length=2)]
UpDownKeep = Annotated[list[float], Field(min_length=3, max_length=3)]
KernelList = list[Literal[BLUR_KERNELS]]


def _realworld(key: str, description: str) -> Any:
    return Field(REALWORLD_DEFAULTS[key], description=description)


class GTOnlyDatasetOptions(DataloaderOptions):
    """GTOnlyDataset: GT images only; LR made by Real-ESRGAN's degradation or MATLAB bicubic, on the fly."""

    type: Literal['GTOnlyDataset']
    dataroot_gt: str
    io_backend: IoBackend
    gt_size: Optional[PositiveInt] = Field(None, description='HR patch size (train phase); a multiple of scale')
    use_hflip: bool = False
    use_rot: bool = False
    degradation: Literal[DEGRADATIONS] = Field('realworld', description="how LR is made: realworld "
                                               "(Real-ESRGAN's degradation) or bicubic (MATLAB's, the paper's)")
    crop_pad_size: PositiveInt = _realworld('crop_pad_size', 'GT region degraded before the gt_size crop; '
                                            'smaller images are reflect-padded to it')
    blur_kernel_size: PositiveInt = _realworld('blur_kernel_size', 'largest blur kernel (odd): sizes 7 to it drawn')
    kernel_list: KernelList = _realworld('kernel_list', "blur kernel types (basicsr's random_mixed_kernels)")
    kernel_prob: list[float] = _realworld('kernel_prob', 'probability of each kernel_list type')
    sinc_prob: float = _realworld('sinc_prob', 'probability of a sinc kernel instead of kernel_list\'s')
    blur_sigma: Range = _realworld('blur_sigma', 'range of the kernels\' sigma (px)')
    betag_range: Range = _realworld('betag_range', 'range of beta of the generalized Gaussian kernels')
    betap_range: Range = _realworld('betap_range', 'range of beta of the plateau kernels')
    blur_kernel_size2: PositiveInt = _realworld('blur_kernel_size2', 'second degradation and final sinc: '
                                                'largest kernel (odd)')
    kernel_list2: KernelList = _realworld('kernel_list2', 'second degradation: blur kernel types')
    kernel_prob2: list[float] = _realworld('kernel_prob2', 'second degradation: probability of each type')
    sinc_prob2: float = _realworld('sinc_prob2', 'second degradation: probability of a sinc kernel')
    blur_sigma2: Range = _realworld('blur_sigma2', 'second degradation: range of sigma (px)')
    betag_range2: Range = _realworld('betag_range2', 'second degradation: generalized Gaussian beta range')
    betap_range2: Range = _realworld('betap_range2', 'second degradation: plateau beta range')
    final_sinc_prob: float = _realworld('final_sinc_prob', 'probability of the final sinc filter')
    resize_prob: UpDownKeep = _realworld('resize_prob', 'probabilities of resizing up, down, or keeping the size')
    resize_range: Range = _realworld('resize_range', 'range of the resize factor')
    gaussian_noise_prob: float = _realworld('gaussian_noise_prob', 'probability of Gaussian (else Poisson) noise')
    noise_range: Range = _realworld('noise_range', 'range of the Gaussian noise sigma (of 255 levels)')
    poisson_scale_range: Range = _realworld('poisson_scale_range', 'range of the Poisson noise scale')
    gray_noise_prob: float = _realworld('gray_noise_prob', 'probability that the noise is the same in every channel')
    jpeg_range: Range = _realworld('jpeg_range', 'range of the JPEG quality (1 to 100)')
    second_blur_prob: float = _realworld('second_blur_prob', 'probability of the second blur')
    resize_prob2: UpDownKeep = _realworld('resize_prob2', 'second degradation: up, down, keep probabilities')
    resize_range2: Range = _realworld('resize_range2', 'second degradation: range of the resize factor')
    gaussian_noise_prob2: float = _realworld('gaussian_noise_prob2', 'second degradation: Gaussian noise probability')
    noise_range2: Range = _realworld('noise_range2', 'second degradation: Gaussian sigma range')
    poisson_scale_range2: Range = _realworld('poisson_scale_range2', 'second degradation: Poisson scale range')
    gray_noise_prob2: float = _realworld('gray_noise_prob2', 'second degradation: grey noise probability')
    jpeg_range2: Range = _realworld('jpeg_range2', 'second degradation: JPEG quality range')
    gt_usm: bool = _realworld('gt_usm', 'train against the GT sharpened by unsharp masking (basicsr\'s USMSharp)')
    queue_size: NonNegativeInt = Field(REALWORLD_QUEUE_SIZE, description="Real-ESRGAN's training-pair pool: pairs kept, a multiple of "
                                       'batch_size_per_gpu; 0: no pool (models/realworld_batches.py)')


DATASET_SECTIONS = {'DIV2KPairedDataset': DIV2KPairedDatasetOptions,
                    'PairedImageDataset': PairedImageDatasetOptions,
                    'GTOnlyDataset': GTOnlyDatasetOptions}


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
    timeout: PositiveInt = Field(DIST_TIMEOUT_S, description='seconds a rank waits for the others (start-up and every '
                                 'collective) before every rank stops with an error')


class TrainBase(Section):
    """``train:`` keys other than the typed sections (optimizers, scheduler, losses: see options_model)."""

    total_iter: Count
    warmup_iter: Annotated[int, Field(ge=-1)] = -1
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = Field(0, description='0: no EMA of the generator')
    net_d_iters: PositiveInt = 1
    net_d_init_iters: NonNegativeInt = 0
    max_nonfinite_steps: PositiveInt = Field(10, description='steps with a non-finite loss in a row that stop '
                                             'training')
    accumulate: PositiveInt = Field(1, description='micro-batches per step: batch_size_per_gpu is split into this '
                                    'many, their gradients summed (divides batch_size_per_gpu)')
    amp: Literal[PRECISIONS] = Field('fp32', description='mixed precision of the training step')
    channels_last: bool = False
    compile: CompileOption = Field(False, description='torch.compile the generator: false, true or a mode')
    deterministic: bool = Field(False, description='only deterministic kernels: GPU runs repeat bit for bit, slower')
    # Training for real photos (datasets.train.degradation: realworld; docs/training.md#training-for-real-photos)
    degradation_preview: NonNegativeInt = Field(0, description='realworld training: write the GT crops and LR of '
                                                'the first N batches to <experiment>/degradation_preview')


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
