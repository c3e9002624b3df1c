"""Option files are checked before anything runs: the schema, cross-field checks, one line per problem."""
import copy
import glob
import json
import os

import pytest
import torch
import yaml

from esrgan_plugin.config import checks as option_check
from esrgan_plugin import schema
from esrgan_plugin.config import registered_sections
from esrgan_plugin.config.checks import check_options, read_options
from esrgan_plugin.config.option_file import apply_overrides, load_yaml, parse_override_value
from esrgan_plugin.training.launch import dataset_phase

from conftest import REPO_ROOT, run_command
from builders import train_options

SHIPPED = sorted(glob.glob(os.path.join(REPO_ROOT, 'options', '*.yml')))


def errors(opt, is_train=True, overridden=()):
    return check_options(opt, 'o.yml', is_train, overridden, check_files=False).errors


def changed(path, value):
    """train_options() with the dotted ``path`` set to ``value`` (or removed, for ``...``)."""
    opt = train_options()
    *parents, last = path.split('.')
    node = opt
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return opt


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)


@pytest.mark.parametrize('path', SHIPPED, ids=os.path.basename)
def test_shipped_option_files_validate(path):
    opt, report = read_options(path, is_train='train_' in os.path.basename(path), check_files=False)
    assert report == ([], [])
    with open(path) as f:
        assert f.readline().startswith('# yaml-language-server: $schema=')


def test_a_complete_file_has_no_problems(no_cuda):
    assert errors(train_options()) == []


@pytest.mark.parametrize('path, value, expected', [
    # the examples
    ('manual_sed', 0, 'o.yml: manual_sed: unknown option; did you mean manual_seed?'),
    ('train.ema_decy', 0.999, 'o.yml: train.ema_decy: unknown option; did you mean ema_decay?'),
    ('datasets.train.use_hflip', 'no',
     "o.yml: datasets.train.use_hflip: expected true or false, got 'no' (text); write true or false without quotes"),
    ('network_g.num_blocks', 2, 'o.yml: network_g.num_blocks: unknown option; did you mean num_block?'),
    ('train.optim_g.lr', '2e-4', "o.yml: train.optim_g.lr: expected a number, got '2e-4' (text)"),
    ('datasets.train.batch_size_per_gpu', 0, 'o.yml: datasets.train.batch_size_per_gpu: must be >= 1, got 0'),
    ('datasets.train.batch_size_per_gpu', -2, 'o.yml: datasets.train.batch_size_per_gpu: must be >= 1, got -2'),
    ('datasets.train.batch_size_per_gpu', 'four',
     "o.yml: datasets.train.batch_size_per_gpu: expected a whole number, got 'four' (text)"),
    ('logger.save_checkpoint_freq', 0, 'o.yml: logger.save_checkpoint_freq: must be >= 1, got 0'),
    ('network_g.type', 'ESRGANRRDBNett',
     "o.yml: network_g.type: unknown network type 'ESRGANRRDBNett' (text); did you mean ESRGANRRDBNet?"),
    ('train.gan_opt.type', 'ESRGANRaGanLoss',
     "o.yml: train.gan_opt.type: unknown loss type 'ESRGANRaGanLoss' (text); did you mean ESRGANRaGANLoss?"),
    ('datasets.val.type', 'PairedImageDatset',
     "o.yml: datasets.val.type: unknown dataset type 'PairedImageDatset' (text); did you mean PairedImageDataset?"),
    ('model_type', 'ESRGANRaGANModle', "o.yml: model_type: 'ESRGANRaGANModle' (text) is not allowed; did you mean "
     'ESRGANRaGANModel?'),
    ('network_g.scale', 2, 'o.yml: network_g.scale: 2 does not match scale 4, the scale of the data; set both'),
    # a wrong value for each kind of field
    ('datasets.train.use_rot', 1, 'o.yml: datasets.train.use_rot: expected true or false, got 1'),
    ('network_g.num_feat', 8.5, 'o.yml: network_g.num_feat: expected a whole number, got 8.5'),
    ('train.ema_decay', 'high', "o.yml: train.ema_decay: expected a number, got 'high' (text)"),
    ('train.ema_decay', 1.5, 'o.yml: train.ema_decay: must be < 1.0, got 1.5; change the value'),
    ('train.optim_g.betas', 0.9, 'o.yml: train.optim_g.betas: expected a list such as [0.9, 0.99], got 0.9'),
    ('datasets.train.prefetch_mode', 'gpu',
     "o.yml: datasets.train.prefetch_mode: 'gpu' (text) is not allowed; did you mean cpu? (allowed: cpu, cuda)"),
    ('datasets.train.io_backend.type', 'memory',
     "o.yml: datasets.train.io_backend.type: 'memory' (text) is not allowed; use one of: disk, lmdb"),
    ('train.amp', 'fp8', "o.yml: train.amp: 'fp8' (text) is not allowed; use one of: fp32, bf16, fp16"),
    ('train.perceptual_opt.layer', 'conv5_5',
     "o.yml: train.perceptual_opt.layer: 'conv5_5' (text) is not allowed; did you mean conv5_4? (allowed: conv1_1,"),
    ('train.pixel_opt.reduction', 'avg',
     "o.yml: train.pixel_opt.reduction: 'avg' (text) is not allowed; use one of: none, mean, sum"),
    ('val.metrics.psnr.test_y_chanel', True, 'o.yml: val.metrics.psnr.test_y_chanel: unknown option; did you mean '
     'test_y_channel?'),
    ('val.metrics.psnr.crop_border', ..., 'o.yml: val.metrics.psnr.crop_border: required option is missing'),
    ('path.experiments_root', 'x', 'o.yml: path.experiments_root: is set by the launcher'),
    ('dist', False, 'o.yml: dist: is set by the launcher (from the command line and folders); remove it'),
    ('network_d.type', ['a'], "o.yml: network_d.type: unknown network type ['a']"),
    ('network_g.type', ..., 'o.yml: network_g.type: required option is missing; set the network type'),
    ('network_d', 5, 'o.yml: network_d: expected a mapping with a type key, got 5'),
    ('train.optim_g', 'Adam', "o.yml: train.optim_g: expected a mapping with a type key, got 'Adam' (text)"),
    ('logger', [], 'o.yml: logger: expected a mapping of options, got []'),
    ('val.val_freq', 2.5, 'o.yml: val.val_freq: expected a whole number, got 2.5'),
    ('dist_params.timeout', 0, 'o.yml: dist_params.timeout: must be >= 1, got 0'),
    # what one option says about another
    ('datasets.val.gt_size', 30, 'o.yml: datasets.val.gt_size: 30 is not a multiple of scale 4; use e.g. 28'),
    ('datasets.train.prefetch_mode', 'cuda', "o.yml: datasets.train.prefetch_mode: 'cuda' needs "
     'datasets.train.pin_memory: true; set pin_memory: true, or use prefetch_mode cpu or ~'),
    ('network_d.input_size', 64, 'o.yml: network_d.input_size: 64 does not match datasets.train.gt_size 32'),
    ('train.scheduler.milestones', [80, 50], 'o.yml: train.scheduler.milestones: [80, 50] is not increasing'),
    ('train.accumulate', 3, 'o.yml: train.accumulate: 3 does not divide datasets.train.batch_size_per_gpu 2 into '
     'equal micro-batches; use a divisor of it (1, 2) or change the batch size'),
    ('train.accumulate', 0, 'o.yml: train.accumulate: must be >= 1, got 0'),
    ('datasets.train.phase', 'val', "o.yml: datasets.train.phase: is set by the launcher to 'train' (text), not "
     "'val' (text); remove it"),
    ('datasets.val.scale', 2, 'o.yml: datasets.val.scale: is set by the launcher to 4, not 2; remove it'),
    ('is_train', False, 'o.yml: is_train: is set by the launcher to true, not false; remove it'),
    ('network_d', ..., 'o.yml: network_d: ESRGANRaGANModel trains a discriminator and needs this'),
    ('datasets.train_2', train_options()['datasets']['val'], 'o.yml: datasets.train_2: in a training file a dataset '
     'is named train, val or val_<anything>; rename it'),
])
def test_each_mistake_is_one_line_saying_what_to_do(no_cuda, path, value, expected):
    lines = errors(changed(path, value))
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines


LDL = {'type': 'L1Loss', 'loss_weight': 1.0}
UNET_D = {'type': 'UNetDiscriminatorSN_basicsr', 'num_in_ch': 3, 'num_feat': 4}


@pytest.mark.parametrize('changes, expected', [
    ({'train.ldl_opt': LDL}, None),  # train_options() has ema_decay 0.999
    ({'train.ldl_opt': LDL, 'train.ema_decay': 0}, "o.yml: train.ldl_opt: LDL compares the output with the EMA "
     "generator's, which train.ema_decay 0 turns off; set train.ema_decay: 0.999"),
    ({'train.ldl_opt': LDL, 'train.ema_decay': ...}, 'o.yml: train.ldl_opt: LDL compares the output with the EMA '
     "generator's, which train.ema_decay (unset: 0) turns off"),
    ({'train.ldl_opt': LDL, 'model_type': 'ESRGANModel'},
     'o.yml: train.ldl_opt: ESRGANModel does not use it; remove it, or use ESRGANRaGANModel'),
    ({'network_d': UNET_D}, None),
    ({'network_d': {**UNET_D, 'type': 'UNetDiscriminatorSN'}}, None),  # basicsr's registry finds it without suffix
    ({'network_d': UNET_D, 'datasets.train.gt_size': 36},
     'o.yml: datasets.train.gt_size: 36 is not a multiple of 8, which UNetDiscriminatorSN_basicsr needs (it halves its input '
     'three times); use e.g. 32'),
])
def test_ldl_needs_the_ema_generator_and_the_unet_discriminator_patches_of_8(no_cuda, changes, expected):
    opt = train_options()
    for path, value in changes.items():
        *parents, last = path.split('.')
        node = opt
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    lines = errors(opt)
    assert lines == ([] if expected is None else [lines[0]]), lines
    if expected is not None:
        assert lines[0].startswith(expected), lines


def test_the_cuda_prefetcher_with_pinned_memory_passes_and_a_test_file_ignores_prefetching(no_cuda):
    opt = changed('datasets.train.prefetch_mode', 'cuda')
    opt['datasets']['train']['pin_memory'] = True
    assert errors(opt) == []
    opt = changed('datasets.val.prefetch_mode', 'cuda')  # only the training loader prefetches
    assert errors(opt, is_train=False) == [] and errors(opt) == []


def test_a_gan_file_with_only_the_gan_loss_is_refused(no_cuda):
    """The generator's step needs a pixel or perceptual term in the GAN stage too; the model trusts this check."""
    opt = train_options()
    assert opt['model_type'] == 'ESRGANRaGANModel'
    for key in ('pixel_opt', 'perceptual_opt'):
        opt['train'].pop(key, None)
    assert errors(opt) == ['o.yml: train.pixel_opt: no loss is set; add pixel_opt (e.g. {type: L1Loss}) or '
                           'perceptual_opt']


def test_a_train_patch_size_off_the_scale_is_one_line(no_cuda):
    opt = changed('datasets.train.gt_size', 30)
    opt['network_d']['input_size'] = 30
    assert errors(opt) == ['o.yml: datasets.train.gt_size: 30 is not a multiple of scale 4; use e.g. 28']


@pytest.mark.parametrize('name, phase', [('train', 'train'), ('val', 'val'), ('val_1', 'val'),
                                         ('val_set14', 'val'), ('test_x', 'test')])
def test_a_datasets_phase_is_its_name_before_the_first_underscore(name, phase):
    assert dataset_phase(name) == phase


@pytest.mark.parametrize('is_train, expected', [
    (True, {'experiments_root': '/r/experiments/e', 'models': '/r/experiments/e/models', 'log': '/r/experiments/e',
            'training_states': '/r/experiments/e/training_states',
            'visualization': '/r/experiments/e/visualization'}),
    (False, {'results_root': '/r/results/e', 'log': '/r/results/e', 'visualization': '/r/results/e/visualization'}),
])
def test_the_checks_expect_the_folders_and_phases_the_launcher_sets(monkeypatch, is_train, expected):
    from esrgan_plugin.training import launch
    monkeypatch.setattr(launch, 'set_random_seed', lambda seed: None)
    opt = train_options()
    opt['name'] = 'e'
    opt['datasets']['val_set14'] = opt['datasets'].pop('val')
    launched = launch.launch_options(opt, launch.Launch(), '/r', is_train)
    assert {key: launched['path'][key] for key in expected} == expected
    assert {phase: dataset['phase'] for phase, dataset in launched['datasets'].items()} == \
        {'train': 'train', 'val_set14': 'val'}
    for keys, value in option_check.launcher_values(opt, is_train, '/r').items():
        node = launched
        for key in keys:
            node = node[key]
        assert node == value, keys


@pytest.mark.parametrize('section', ['datasets', 'network_g', 'train', 'path', 'logger'])
def test_a_missing_section_is_named(no_cuda, section):
    lines = errors(changed(section, ...))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f'o.yml: {section}: ')
    assert 'missing' in lines[0] or 'add network_g' in lines[0]


def test_a_misspelt_count_is_two_lines_the_typo_and_the_missing_option(no_cuda):
    opt = train_options()
    opt['train']['total_iters'] = opt['train'].pop('total_iter')
    assert set(errors(opt)) == {'o.yml: train.total_iters: unknown option; did you mean total_iter?',
                                'o.yml: train.total_iter: required option is missing; add it '
                                '(see options/train_RRDBNet_PSNR_x4.yml)'}


def test_num_gpu_without_cuda(no_cuda):
    assert errors(changed('num_gpu', 1)) == [
        'o.yml: num_gpu: 1 but no CUDA device is available here; set num_gpu: auto (all CUDA devices, the CPU '
        'without CUDA)']
    assert errors(changed('num_gpu', 0)) == []
    assert errors(changed('num_gpu', 'two'))[0].startswith("o.yml: num_gpu: expected 'auto' or a whole number")


def test_two_errors_in_one_file_are_both_reported(no_cuda):
    opt = changed('manual_sed', 0)
    opt['datasets']['train']['batch_size_per_gpu'] = 'four'
    lines = errors(opt)
    assert len(lines) == 2
    assert any('manual_sed' in line for line in lines) and any('batch_size_per_gpu' in line for line in lines)


def test_a_test_file_may_leave_the_architecture_to_the_checkpoint():
    opt, _ = read_options(SHIPPED[0], is_train=False, check_files=False)
    del opt['network_g']
    assert errors(opt, is_train=False) == []
    opt['network_g'] = {'type': 'auto'}
    assert errors(opt, is_train=False) == []
    assert "o.yml: network_g: training needs the generator's architecture; add network_g with its type" in \
        errors(opt, is_train=True)


def test_override_typo_is_reported_as_an_override(no_cuda):
    opt, applied, problems = apply_overrides(train_options(), ['train:ema_decy=0.9', 'trian:total_iter=5'])
    assert problems == ['--force_yml trian:total_iter=5: trian is not a section of the option file; add the '
                        'section to the file or fix the key']
    assert errors(opt, overridden=applied) == [
        'o.yml: train.ema_decy (set by --force_yml): unknown option; did you mean ema_decay?']


def test_yaml_floats_as_written_and_overrides_read_like_the_file(tmp_path):
    text = 'a: 2e-4\nb: !!float 2e-4\nc: "2e-4"\nd: 5\ne: 1.5\nf: 1E+5\ng: -3e2\nh: 1_000\ni: 2e-4x\nj: .5e-1\n'
    assert load_yaml(text) == {'a': 2e-4, 'b': 2e-4, 'c': '2e-4', 'd': 5, 'e': 1.5, 'f': 1e5, 'g': -300.0, 'h': 1000,
                               'i': '2e-4x', 'j': 0.05}
    assert yaml.safe_load('a: 2e-4') == {'a': '2e-4'}  # what plain PyYAML (YAML 1.1) gives
    assert type(load_yaml('d: 5')['d']) is int
    for text, value in [('2e-4', 2e-4), ('-1', -1), ('[0.9, 0.99]', [0.9, 0.99]), ('None', None), ('~', None),
                        ('true', True), ('ESRGANRRDBNet', 'ESRGANRRDBNet'), ('[oops', '[oops')]:
        assert parse_override_value(text) == value
    original = train_options()
    apply_overrides(original, ['train:optim_g:lr=3e-4'])
    assert original == train_options()  # the input is never changed


class _UserNet(torch.nn.Module):
    def __init__(self, widgets: int = 3, colour: str = 'red') -> None:
        super().__init__()


def test_a_users_own_registered_arch_passes_with_one_warning(no_cuda):
    from basicsr.utils.registry import ARCH_REGISTRY
    if 'TestOnlyUserNet' not in ARCH_REGISTRY:
        ARCH_REGISTRY._do_register('TestOnlyUserNet', _UserNet)
    opt = train_options()
    opt['network_g'] = {'type': 'TestOnlyUserNet', 'widgets': 5, 'sprockets': 2}
    report = check_options(opt, 'o.yml', True, check_files=False)
    assert report.errors == []
    assert report.warnings == [f'o.yml: network_g: TestOnlyUserNet is registered by {__name__}, not by basicsr or '
                               'esrgan_plugin; its options are passed to it unchecked']


def test_basicsr_names_registered_with_a_suffix_are_found_without_it(no_cuda):
    opt = changed('network_g', {'type': 'SRVGGNetCompact', 'upscale': 4, 'num_conv': 2})
    assert errors(opt) == []  # basicsr registers it as SRVGGNetCompact_basicsr; its get() finds both
    assert errors(changed('network_g', {'type': 'SRVGGNetCompact', 'num_convs': 2})) == [
        'o.yml: network_g.num_convs: unknown option; did you mean num_conv?']


def test_generator_keywords_come_from_the_registered_class():
    from basicsr.utils.registry import ARCH_REGISTRY
    import inspect
    section = registered_sections.keyword_section('network', 'ESRGANRRDBNet', ARCH_REGISTRY.get('ESRGANRRDBNet'))
    expected = set(inspect.signature(ARCH_REGISTRY.get('ESRGANRRDBNet')).parameters) | {'type'}
    assert set(section.model_fields) == expected


def test_schema_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        schema.main(['-h'])
    assert exit_.value.code == 0 and 'esrgan_options.schema.json' in capsys.readouterr().out


def test_json_schema_validates_shipped_files_with_an_independent_validator(tmp_path):
    import jsonschema
    assert schema.main(['-o', str(tmp_path / 's.json')]) == 0
    document = json.loads((tmp_path / 's.json').read_text())
    validator = jsonschema.validators.validator_for(document)(document)
    assert isinstance(validator, jsonschema.Draft7Validator)
    for path in SHIPPED:
        with open(path) as f:
            opt = load_yaml(f.read())
        assert list(validator.iter_errors(opt)) == [], path
        opt['train' if 'train' in opt else 'val']['ema_decy'] = 0.9
        assert list(validator.iter_errors(opt)), path  # the same typo is an error for editors too
    assert not list(validator.iter_errors(train_options()))
    assert list(validator.iter_errors(changed('network_g.num_blocks', 2)))


# ----------------------------------------------------------------------------- through the commands, in this process
def _run(command, tmp_path, monkeypatch, capsys, *args):
    """``python -m esrgan_plugin.<command> *args`` run in ``tmp_path``, without a CUDA device."""
    import importlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    return run_command(capsys, importlib.import_module(f'esrgan_plugin.{command}').main, *args)


def _nothing_written(tmp_path):
    return not any((tmp_path / name).exists() for name in ('experiments', 'results', 'tb_logger'))


@pytest.mark.parametrize('command', ['train', 'test'])
def test_the_commands_list_every_problem_and_exit_2_before_writing_anything(tmp_path, monkeypatch, capsys, command):
    opt = train_options()
    opt['manual_sed'] = 0
    opt['datasets']['val']['use_hflip'] = 'no'
    for name in ('gt', 'lq', 'gt.lmdb', 'lq.lmdb'):
        (tmp_path / name).mkdir()
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    run = _run(command, tmp_path, monkeypatch, capsys, '-opt', 'o.yml', '--force_yml', 'train:ema_decy=0.9',
               'num_gpu=0')
    assert run.code == 2, run.err
    lines = run.err.splitlines()
    assert 'error: o.yml: manual_sed: unknown option; did you mean manual_seed?' in lines
    assert ("error: o.yml: datasets.val.use_hflip: expected true or false, got 'no' (text); write true or false "
            'without quotes') in lines
    assert 'error: o.yml: train.ema_decy (set by --force_yml): unknown option; did you mean ema_decay?' in lines
    # the data is checked in the same run: the LMDB folders here are empty
    assert 'error: LMDB gt.lmdb has no data.mdb; rebuild it with python -m esrgan_plugin.prepare_data (with ' \
        '--overwrite) or copy gt.lmdb again from an intact source.' in lines
    assert lines[-1] == '4 problems in the options; nothing was run or written'
    assert 'Traceback' not in run.err
    assert _nothing_written(tmp_path)


def test_the_rules_the_run_relies_on_stop_the_train_command_with_one_line_each(tmp_path, monkeypatch, capsys):
    opt = train_options()
    opt['datasets']['train'].update(prefetch_mode='cuda', gt_size=30)
    opt['network_d']['input_size'] = 30
    opt['datasets']['train_2'] = opt['datasets']['val']
    for name in ('gt', 'lq'):
        (tmp_path / name).mkdir()
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    run = _run('train', tmp_path, monkeypatch, capsys, '-opt', 'o.yml', '--force_yml',
               'datasets:train:io_backend:type=disk', 'datasets:train:dataroot_gt=gt', 'datasets:train:dataroot_lq=lq')
    assert run.code == 2, run.err
    assert run.err.splitlines() == [
        'error: o.yml: datasets.train_2: in a training file a dataset is named train, val or val_<anything>; rename it',
        "error: o.yml: datasets.train.prefetch_mode: 'cuda' needs datasets.train.pin_memory: true; set pin_memory: "
        'true, or use prefetch_mode cpu or ~',
        'error: o.yml: datasets.train.gt_size: 30 is not a multiple of scale 4; use e.g. 28',
        '3 problems in the options; nothing was run or written']
    assert _nothing_written(tmp_path)


def test_lr_written_2e_4_trains_with_lr_2e_4(tmp_path, monkeypatch, capsys):
    from builders import make_lmdb_pair
    gt, lq = make_lmdb_pair(tmp_path / 'data', count=2)
    opt = train_options()
    opt['model_type'] = 'ESRGANPSNRModel'
    for key in ('network_d', 'val', 'dist_params'):
        del opt[key]
    opt['datasets'] = {'train': {**opt['datasets']['train'], 'dataroot_gt': gt, 'dataroot_lq': lq}}
    opt['train'] = {'total_iter': 1, 'optim_g': {'type': 'Adam', 'lr': 'LR'}, 'pixel_opt': {'type': 'L1Loss'}}
    opt['logger'] = {'print_freq': 1, 'save_checkpoint_freq': 1, 'use_tb_logger': False}
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt).replace('lr: LR', 'lr: 2e-4'))
    assert 'lr: 2e-4\n' in (tmp_path / 'o.yml').read_text()  # unquoted: a string to plain PyYAML
    run = _run('train', tmp_path, monkeypatch, capsys, '-opt', 'o.yml')
    assert run.code == 0, run.err[-3000:]
    state = torch.load(tmp_path / 'experiments' / 'tiny' / 'training_states' / '1.state', weights_only=True)
    assert state['optimizers'][0]['param_groups'][0]['lr'] == 2e-4


def test_committed_json_schema_is_what_the_command_writes(tmp_path, monkeypatch, capsys):
    from basicsr.utils import registry
    for names in (registry.ARCH_REGISTRY, registry.DATASET_REGISTRY, registry.LOSS_REGISTRY, registry.METRIC_REGISTRY,
                  registry.MODEL_REGISTRY):  # as a user's process has them: without the classes tests register
        monkeypatch.setattr(names, '_obj_map', {name: obj for name, obj in names._obj_map.items()
                                                if registered_sections.is_ours_or_basicsrs(obj)})
    run = _run('schema', tmp_path, monkeypatch, capsys)
    assert run.code == 0, run.err
    with open(os.path.join(REPO_ROOT, 'esrgan_options.schema.json'), encoding='utf-8') as f:
        assert json.loads(run.out) == json.load(f), \
            'regenerate it: python -m esrgan_plugin.schema > esrgan_options.schema.json'


# ----------------------------------------------------------------------------- warnings: valid, probably unintended
def report(opt, is_train=True):
    return check_options(opt, 'o.yml', is_train, check_files=False)


@pytest.mark.parametrize('path, value, expected', [
    ('train.scheduler.milestones', [50, 100],
     'o.yml: train.scheduler.milestones: 100 is not below total_iter 100; the learning rate never changes there'),
    ('val.val_freq', 500, 'o.yml: val.val_freq: 500 is past total_iter 100: validation runs once, at the end'),
    ('logger.save_checkpoint_freq', 5e3,
     'o.yml: logger.save_checkpoint_freq: 5000 is past total_iter 100: the networks are saved once, at the end'),
    ('logger.print_freq', 101, 'o.yml: logger.print_freq: 101 is past total_iter 100: no loss is logged'),
    ('datasets.train.phase', 'train', "o.yml: datasets.train.phase: is set by the launcher to 'train' (text) anyway; "
     'remove it'),
    ('datasets.val.phase', 'val', "o.yml: datasets.val.phase: is set by the launcher to 'val' (text) anyway"),
    ('datasets.val.scale', 4, 'o.yml: datasets.val.scale: is set by the launcher to 4 anyway; remove it'),
    ('is_train', True, 'o.yml: is_train: is set by the launcher to true anyway; remove it'),
])
def test_a_setting_the_run_never_reaches_is_one_warning_not_an_error(no_cuda, path, value, expected):
    opt = train_options()
    *parents, last = path.split('.')
    node = opt
    for key in parents:
        node = node[key]
    node[last] = value
    checked = report(opt)
    assert checked.errors == []
    assert len(checked.warnings) == 1 and checked.warnings[0].startswith(expected), checked.warnings


def test_the_launchers_folders_copied_from_a_log_dump_warn(no_cuda, tmp_path):
    opt = train_options()
    experiment = str(tmp_path / 'experiments' / 'tiny')
    opt['path'].update({'experiments_root': experiment, 'models': experiment + '/models'})
    checked = check_options(opt, 'o.yml', True, check_files=False, root=str(tmp_path))
    assert checked.errors == [] and len(checked.warnings) == 2, checked
    opt['path']['models'] = '/elsewhere/models'
    checked = check_options(opt, 'o.yml', True, check_files=False, root=str(tmp_path))
    assert checked.errors == [f"o.yml: path.models: is set by the launcher to '{experiment}/models' (text), not "
                              "'/elsewhere/models' (text); remove it"]


def test_every_shipped_training_file_shortened_to_a_few_iterations_only_warns(no_cuda):
    for path in SHIPPED:
        if 'train_' not in os.path.basename(path):
            continue
        opt, checked = read_options(path, ['train:total_iter=10'], True, check_files=False)
        assert checked.errors == [], checked.errors
        assert any('total_iter 10' in line for line in checked.warnings), checked.warnings
