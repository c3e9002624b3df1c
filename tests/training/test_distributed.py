"""What the ranks of a distributed run agree on (the training state to resume from) and how long they wait.

The collectives themselves run in tests/integration/test_distributed.py; here each rank's part is called
directly: rank 0's choice and another rank's check of it, on folders made in the test.
"""
import copy
import datetime
import hashlib
import shutil
import socket

import pytest
import torch

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.training import distributed, launch, resume


def experiment(folder, iterations=(2, 4)):
    """An experiment folder as training leaves it: a state and a generator per saved iteration."""
    for iteration in iterations:
        (folder / 'training_states').mkdir(parents=True, exist_ok=True)
        (folder / 'models').mkdir(exist_ok=True)
        torch.save({'iter': iteration, 'epoch': 0}, folder / 'training_states' / f'{iteration}.state')
        torch.save({'params': {'w': torch.full((2,), float(iteration))}}, folder / 'models' / f'net_g_{iteration}.pth')
    return folder


def rank_opt(folder, rank):
    return {'dist': True, 'rank': rank, 'world_size': 2, 'auto_resume': True, 'network_g': {},
            'path': {'experiments_root': str(folder), 'models': str(folder / 'models')}}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rank_0_chooses_the_newest_intact_state_and_sends_a_digest_of_every_file_resume_reads(tmp_path):
    exp = experiment(tmp_path / 'node0' / 'e')
    choice = resume._choice(rank_opt(exp, 0))
    assert choice['iteration'] == 4
    assert choice['files'] == [str(exp / 'training_states' / '4.state'), str(exp / 'models' / 'net_g_4.pth')]
    assert choice['digests'] == [sha256(exp / 'training_states' / '4.state'), sha256(exp / 'models' / 'net_g_4.pth')]
    assert resume._choice(rank_opt(tmp_path / 'empty', 0)) == {'iteration': None}


def test_a_rank_that_sees_the_same_files_has_no_objection_even_with_a_newer_state_of_its_own(tmp_path):
    exp0 = experiment(tmp_path / 'node0' / 'e')
    exp1 = tmp_path / 'node1' / 'e'
    shutil.copytree(exp0, exp1)
    experiment(exp1, iterations=(6,))  # rank 1 alone would resume from 6
    assert resume._difference(rank_opt(exp1, 1), resume._choice(rank_opt(exp0, 0))) is None


def test_a_missing_state_is_one_line_naming_rank_host_path_and_what_to_do(tmp_path):
    exp0 = experiment(tmp_path / 'node0' / 'e')
    exp1 = tmp_path / 'node1' / 'e'
    host = socket.gethostname()
    problem = resume._difference(rank_opt(exp1, 1), resume._choice(rank_opt(exp0, 0)))
    assert problem == (f'rank 1 on {host} cannot resume from the training state rank 0 on {host} chose (iteration 4): '
                       f'{exp1 / "training_states" / "4.state"} is missing; experiments/ must be on a file system '
                       f'every machine of the job sees, or copy {host}:{exp0} to {host}:{exp1} before starting '
                       '(docs/training.md#several-machines)')


@pytest.mark.parametrize('changed', ['training_states/4.state', 'models/net_g_4.pth'])
def test_a_file_with_other_content_than_rank_0s_is_named(tmp_path, changed):
    exp0 = experiment(tmp_path / 'node0' / 'e')
    exp1 = tmp_path / 'node1' / 'e'
    shutil.copytree(exp0, exp1)
    with open(exp1 / changed, 'ab') as f:
        f.write(b'\0')  # a file still being copied, or another run's file of the same name
    problem = resume._difference(rank_opt(exp1, 1), resume._choice(rank_opt(exp0, 0)))
    assert f': {exp1 / changed} differs from rank 0\'s {exp0 / changed}; ' in problem


def test_without_ddp_the_resume_point_is_this_process_own_choice(tmp_path):
    exp = experiment(tmp_path / 'e')
    point = resume.agreed_resume_point({**rank_opt(exp, 0), 'dist': False, 'world_size': 1})
    assert point.iteration == 4 and point.path == str(exp / 'training_states' / '4.state')


def test_a_failed_collective_is_one_line_naming_the_rank_the_wait_and_the_timeout():
    opt = {'dist': True, 'rank': 1, 'dist_params': {'timeout': 7}}
    with pytest.raises(distributed.RanksApart) as raised:
        with distributed.collective(opt, 'agreeing whether to stop after this step'):
            raise RuntimeError('[gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:4242\nmore')
    assert str(raised.value) == (
        f'rank 1 on {socket.gethostname()}: agreeing whether to stop after this step failed: another rank stopped, '
        'or did not answer within dist_params.timeout (7 s) ([gloo/transport/tcp/pair.cc:561] Connection closed by '
        'peer [127.0.0.1]:4242); the first error in the other ranks\' output says why '
        '(docs/training.md#several-machines)')
    assert isinstance(raised.value, UserFacingError)
    with pytest.raises(RuntimeError, match='not a collective'):  # without DDP nothing is reworded
        with distributed.collective({'dist': False, 'rank': 0}, 'x'):
            raise RuntimeError('not a collective')


@pytest.mark.parametrize('launcher,dist_params,expected', [
    ('pytorch', None, {'timeout': datetime.timedelta(minutes=10)}),  # choices.DIST_TIMEOUT_S
    ('pytorch', {'timeout': 30, 'port': 1234}, {'timeout': datetime.timedelta(seconds=30)}),  # port: slurm only
    ('slurm', {'timeout': 30, 'port': 1234, 'backend': 'gloo'},
     {'timeout': datetime.timedelta(seconds=30), 'port': 1234, 'backend': 'gloo'}),
])
def test_the_process_group_starts_with_the_timeout(monkeypatch, launcher, dist_params, expected):
    calls = []
    monkeypatch.setattr(launch.basicsr_options, 'init_dist', lambda name, **kwargs: calls.append((name, kwargs)))
    opt = {'name': 'e', 'num_gpu': 0, 'manual_seed': 1, 'datasets': {}, 'path': {}, 'logger': {}}
    if dist_params is not None:
        opt['dist_params'] = dist_params
    before = copy.deepcopy(opt)
    launched = launch.launch_options(opt, launch.Launch(launcher), '/tmp', is_train=False)
    assert calls == [(launcher, expected)]
    assert launched['dist'] and opt == before  # the caller's options are left as they were


def test_a_rank_that_never_joins_the_start_is_one_line(monkeypatch):
    def init_dist(name, **kwargs):
        raise torch.distributed.DistStoreError('Timed out after 31 seconds waiting for clients. 1/2 clients joined.')
    monkeypatch.setattr(launch.basicsr_options, 'init_dist', init_dist)
    monkeypatch.setenv('RANK', '0')
    opt = {'name': 'e', 'num_gpu': 0, 'datasets': {}, 'path': {}, 'logger': {}, 'dist_params': {'timeout': 30}}
    with pytest.raises(distributed.RanksApart, match=rf'^rank 0 on {socket.gethostname()}: starting the process group '
                       r'failed: .* \(30 s\) \(Timed out after 31 seconds waiting for clients. 1/2 clients joined.\)'):
        launch.launch_options(opt, launch.Launch('pytorch'), '/tmp', is_train=False)
