"""Distributed runs as users start them, on CPU with gloo: two torchrun agents as two machines, and slurm's launcher.

Each run is a subprocess (or two) with a hard timeout, so a hang fails the test instead of stalling the suite.
The machines are two working folders on this one: node 1's ``experiments/`` a link to node 0's (a shared file
system), or a folder of its own (node-local disks).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time

import pytest
import torch
import yaml

from conftest import PYTHON, free_port, subprocess_env
from builders import make_lmdb_pair, read_log

NAME = 'dist'
# Seconds any one run may take before the test fails as a hang; starting torch takes minutes on a busy machine.
RUN_TIMEOUT = 600
# Variables a surrounding torchrun or slurm job would leave; each run here sets its own.
LAUNCHER_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK',
                      'LOCAL_WORLD_SIZE', 'TORCHELASTIC_RUN_ID')


def options(data, total_iter, timeout=60, **extra):
    """A tiny PSNR-stage run (generator num_feat 8, num_block 1; 32x32 crops, batches of 2)."""
    gt, lq = str(data / 'gt.lmdb'), str(data / 'lq.lmdb')
    return {
        'name': NAME, 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 1,
        'datasets': {'train': {'name': 'tiny', 'type': 'DIV2KPairedDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
                               'io_backend': {'type': 'lmdb'}, 'gt_size': 32, 'use_hflip': True, 'use_rot': True,
                               'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2}},
        'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                      'num_grow_ch': 4},
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [1], 'gamma': 0.5}, 'total_iter': total_iter,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 10, 'use_tb_logger': False},
        'dist_params': {'timeout': timeout},
        **extra,
    }


def write(folder, opt, name='opt.yml'):
    path = folder / name
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def environment(**extra):
    env = subprocess_env()
    for key in LAUNCHER_VARIABLES:
        env.pop(key, None)
    env.update(CUDA_VISIBLE_DEVICES='', **extra)
    return env


class Run:
    """A process started in its own process group, its output in a file (a pipe nobody reads could fill)."""

    def __init__(self, cmd, cwd, env, out):
        self.out = out
        with open(out, 'w') as f:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.started = time.monotonic()
        self.seconds = None

    def wait(self, deadline):
        try:
            self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f'{self.out.name} still ran after {RUN_TIMEOUT} s: {self.output()[-3000:]}')
        self.seconds = time.monotonic() - self.started
        return self.proc.returncode

    def output(self):
        return self.out.read_text(errors='replace')

    def workers_output(self):
        """What came before torchrun's own report (its lines name torch/distributed/elastic), which raises and
        prints a traceback of its own whenever a worker exits non-zero or the agent itself gets a signal."""
        return self.output().split('torch/distributed/elastic')[0]


def finish(runs):
    deadline = time.monotonic() + RUN_TIMEOUT
    return [run.wait(deadline) for run in runs]


def two_agents(nodes, yml, *args, tag='run'):
    """``torchrun --nnodes 2 --nproc_per_node 1`` started once in each node's folder, rendezvous on 127.0.0.1."""
    port = free_port()
    return [Run([PYTHON, '-m', 'torch.distributed.run', '--nnodes', '2', '--nproc_per_node', '1', '--node_rank',
                 str(rank), '--master_addr', '127.0.0.1', '--master_port', str(port), '-m', 'esrgan_plugin.train',
                 '-opt', yml, '--launcher', 'pytorch', *args], node, environment(), node.parent / f'{tag}{rank}.out')
            for rank, node in enumerate(nodes)]


def wait_for_iteration(exp, iteration, runs):
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if exp.is_dir() and re.search(rf'iter:\s*{iteration},', read_log(exp)):
            return
        if any(run.proc.poll() is not None for run in runs):
            pytest.fail('a process ended before training started: ' + runs[0].output()[-3000:])
        time.sleep(0.1)
    pytest.fail(f'iteration {iteration} not reached')


def files(folder):
    """Every file under ``folder`` (links followed) with its size and modification time."""
    found = {}
    for root, _, names in os.walk(folder, followlinks=True):
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            found[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


def stopped_iteration(exp):
    states = sorted(int(name.split('.')[0]) for name in os.listdir(exp / 'training_states'))
    return states[-1]


@pytest.fixture(scope='module')
def stopped_shared_run(tmp_path_factory):
    """Two agents on a shared experiments/ folder, node 1's agent stopped by SIGTERM after iteration 3.

    Returns (folder holding node0/, data/ and the option file, the runs)."""
    base = tmp_path_factory.mktemp('shared')
    make_lmdb_pair(base / 'data', count=8, size=32)
    nodes = [base / 'node0', base / 'node1']
    (nodes[0] / 'experiments').mkdir(parents=True)
    nodes[1].mkdir()
    os.symlink(nodes[0] / 'experiments', nodes[1] / 'experiments')  # as a cluster file system mounted on both
    yml = write(base, options(base / 'data', total_iter=20))
    runs = two_agents(nodes, yml, tag='stop')
    wait_for_iteration(nodes[0] / 'experiments' / NAME, 3, runs)
    os.kill(runs[1].proc.pid, signal.SIGTERM)  # node 1's agent alone; it passes the signal to its worker
    finish(runs)
    return base, runs


def copy_node(source, target):
    shutil.copytree(source / 'experiments', target / 'experiments')


def test_sigterm_to_one_agent_stops_both_ranks_at_one_iteration_and_resume_finishes(stopped_shared_run):
    base, runs = stopped_shared_run
    exp = base / 'node0' / 'experiments' / NAME
    log = read_log(exp)
    stopped_at = stopped_iteration(exp)
    assert stopped_at >= 3
    assert f'Stopped by SIGTERM at iteration {stopped_at}: checkpoint and training state saved' in log
    # the stop's checkpoint compared the generator of both ranks, so rank 1 reached that same iteration's save
    assert f'iter {stopped_at}: generator weights identical on all 2 ranks' in log
    assert not re.search(rf'iter:\s*{stopped_at + 1},', log)
    # torchrun reports a stopped worker as its own failure (exit code 1), with the worker's exit code in its summary
    assert [run.proc.returncode for run in runs] == [1, 1]
    assert 'exitcode  : 143' in runs[0].output() or 'exitcode: 143' in runs[0].output().replace(' ', ''), \
        runs[0].output()[-3000:]
    assert all('Traceback' not in run.workers_output() for run in runs)

    # Resume on the shared folder (a copy, so the other tests start from the stopped run too).
    nodes = [base / 'resume0', base / 'resume1']
    nodes[0].mkdir()
    copy_node(base / 'node0', nodes[0])
    nodes[1].mkdir()
    os.symlink(nodes[0] / 'experiments', nodes[1] / 'experiments')
    resumed = two_agents(nodes, str(base / 'opt.yml'), '--auto_resume', tag='resume')
    assert finish(resumed) == [0, 0], resumed[0].output()[-3000:] + resumed[1].output()[-3000:]
    log = read_log(nodes[0] / 'experiments' / NAME)
    assert f'iter: {stopped_at}.' in log and 'Resuming training from epoch' in log
    assert 'iter 20: generator weights identical on all 2 ranks' in log
    assert os.path.isfile(nodes[0] / 'experiments' / NAME / 'models' / 'net_g_latest.pth')


def test_node_local_folders_stop_every_rank_with_one_line_and_write_nothing(stopped_shared_run):
    base, _ = stopped_shared_run
    nodes = [base / 'local0', base / 'local1']
    nodes[0].mkdir()
    copy_node(base / 'node0', nodes[0])  # node 0 sees the stopped run; node 1's own disk has no experiments/
    nodes[1].mkdir()
    before = [files(node) for node in nodes]
    timeout = 120
    opt = options(base / 'data', total_iter=20, timeout=timeout)
    runs = two_agents(nodes, write(base, opt, 'local.yml'), '--auto_resume', tag='local')
    codes = finish(runs)
    stopped_at = stopped_iteration(nodes[0] / 'experiments' / NAME)
    expected = (f'error: rank 1 on {socket.gethostname()} cannot resume from the training state rank 0 on '
                f'{socket.gethostname()} chose (iteration {stopped_at}): '
                f'{nodes[1] / "experiments" / NAME / "training_states" / f"{stopped_at}.state"} is missing; '
                'experiments/ must be on a file system every machine of the job sees, or copy '
                f'{socket.gethostname()}:{nodes[0] / "experiments" / NAME} to '
                f'{socket.gethostname()}:{nodes[1] / "experiments" / NAME} before starting')
    for run, code in zip(runs, codes):
        assert code != 0
        lines = [line for line in run.output().splitlines() if line.startswith('error: ')]
        assert len(lines) == 1 and lines[0].startswith(expected), run.output()[-3000:]
        # the ranks agreed to stop; none waited for the timeout (that would end in another line, too)
        assert run.seconds < timeout
        assert 'Traceback' not in run.workers_output()
    assert [files(node) for node in nodes] == before


def test_ranks_that_see_different_newest_states_resume_from_rank_0s_choice(stopped_shared_run):
    base, _ = stopped_shared_run
    nodes = [base / 'newer0', base / 'newer1']
    for node in nodes:
        node.mkdir()
        copy_node(base / 'node0', node)
    stopped_at = stopped_iteration(nodes[0] / 'experiments' / NAME)
    # Node 1 shows a newer state than node 0 does (a file system that shows rank 0 a new file late): alone, rank 1
    # would resume 5 iterations later than rank 0 and the ranks would run apart.
    exp1 = nodes[1] / 'experiments' / NAME
    newer = stopped_at + 5
    state = torch.load(exp1 / 'training_states' / f'{stopped_at}.state', weights_only=True)
    torch.save({**state, 'iter': newer}, exp1 / 'training_states' / f'{newer}.state')
    shutil.copy(exp1 / 'models' / f'net_g_{stopped_at}.pth', exp1 / 'models' / f'net_g_{newer}.pth')
    node1_before = files(nodes[1])
    runs = two_agents(nodes, str(base / 'opt.yml'), '--auto_resume', tag='newer')
    assert finish(runs) == [0, 0], runs[0].output()[-3000:] + runs[1].output()[-3000:]
    log = read_log(nodes[0] / 'experiments' / NAME)
    assert re.search(rf'Resuming training from epoch: \d+, iter: {stopped_at}\.', log)
    assert 'iter 20: generator weights identical on all 2 ranks' in log
    assert files(nodes[1]) == node1_before  # rank 1 read its own copy and wrote nothing


def test_slurm_launcher_on_loopback_stops_both_tasks_on_sigterm_to_one_and_resumes(tmp_path):
    """``--launcher slurm`` in a simulated allocation: SLURM_* variables, a stand-in ``scontrol`` that resolves the
    node list to 127.0.0.1, two tasks in one folder; SIGTERM to task 1 (slurm may signal the tasks one by one),
    then --auto_resume to the end."""
    make_lmdb_pair(tmp_path / 'data', count=8, size=32)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls = tmp_path / 'scontrol_calls'
    (bin_dir / 'scontrol').write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho 127.0.0.1\necho 127.0.0.1\n')
    (bin_dir / 'scontrol').chmod(0o755)
    opt = options(tmp_path / 'data', total_iter=20)
    opt['dist_params']['port'] = free_port()
    yml = write(tmp_path, opt)

    def tasks(*args, tag):
        return [Run([PYTHON, '-m', 'esrgan_plugin.train', '-opt', yml, '--launcher', 'slurm', *args], tmp_path,
                    environment(SLURM_PROCID=str(task), SLURM_NTASKS='2', SLURM_NODELIST='node[01-02]',
                                SLURM_LOCALID='0', PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'),
                    tmp_path / f'{tag}{task}.out') for task in range(2)]

    exp = tmp_path / 'experiments' / NAME
    runs = tasks(tag='task')
    wait_for_iteration(exp, 3, runs)
    os.kill(runs[1].proc.pid, signal.SIGTERM)  # rank 1, not the rank that saves
    assert finish(runs) == [143, 143], runs[0].output()[-3000:] + runs[1].output()[-3000:]
    stopped_at = stopped_iteration(exp)
    log = read_log(exp)
    assert 'World size (gpu number): 2' in log
    assert f'Stopped by SIGTERM at iteration {stopped_at}: checkpoint and training state saved' in log
    assert f'iter {stopped_at}: generator weights identical on all 2 ranks' in log
    assert sorted(os.listdir(exp / 'models')) == sorted(
        [f'net_g_{i}.pth' for i in range(10, stopped_at, 10)] + [f'net_g_{stopped_at}.pth'])

    resumed = tasks('--auto_resume', tag='resumed')
    assert finish(resumed) == [0, 0], resumed[0].output()[-3000:] + resumed[1].output()[-3000:]
    log = read_log(exp)
    assert f'iter: {stopped_at}.' in log and 'iter 20: generator weights identical on all 2 ranks' in log
    assert os.path.isfile(exp / 'models' / 'net_g_latest.pth')
    assert calls.read_text().splitlines() == ['show hostname node[01-02]'] * 4  # every task of both runs asked


def test_a_rank_that_never_joins_a_collective_ends_the_others_wait_after_dist_params_timeout(tmp_path):
    """Two processes started as torchrun starts them; rank 1 never joins the stop agreement (a hang, or a rank
    that runs apart). Rank 0 gives up after dist_params.timeout with one line instead of waiting for ever."""
    script = tmp_path / 'wait.py'
    script.write_text(textwrap.dedent("""
        import os, sys, time
        import torch
        import esrgan_plugin
        esrgan_plugin.register()  # as every command does first: basicsr's launcher on the CPU (compat)
        from esrgan_plugin.cli import run_main
        from esrgan_plugin.training import distributed
        from esrgan_plugin.training.launch import Launch, launch_options
        from esrgan_plugin.training.stop_signals import StopSignals

        def main(argv):
            # Both ranks start the group together (importing torch takes seconds longer on a busy machine), so
            # that the only wait longer than the timeout is the one under test.
            open(f'ready{sys.argv[1]}', 'w').close()
            while not all(os.path.exists(f'ready{rank}') for rank in range(2)):
                time.sleep(0.01)
            opt = {'name': 'wait', 'num_gpu': 0, 'manual_seed': 1, 'datasets': {}, 'path': {}, 'logger': {},
                   'dist_params': {'timeout': 5}}
            opt = launch_options(opt, Launch('pytorch'), '.', is_train=False)
            if opt['rank'] == 1:
                time.sleep(120)
            start = time.monotonic()
            try:
                with distributed.collective(opt, 'agreeing whether to stop after this step'):
                    StopSignals().agreed_stop(True, torch.device('cpu'))
            finally:
                print(f'waited {time.monotonic() - start:.1f} s', file=sys.stderr)
            return 0

        run_main(main)
    """))
    port = str(free_port())
    runs = [Run([PYTHON, str(script), str(rank)], tmp_path,
                environment(RANK=str(rank), LOCAL_RANK='0', WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=port), tmp_path / f'wait{rank}.out') for rank in range(2)]
    try:
        assert finish(runs[:1]) == [1], runs[0].output()[-3000:]
    finally:
        os.killpg(runs[1].proc.pid, signal.SIGKILL)
        runs[1].proc.wait()
    output = runs[0].output()
    waited = float(re.search(r'waited (\d+\.\d) s', output).group(1))
    assert 5 <= waited < 60, output
    assert (f'error: rank 0 on {socket.gethostname()}: agreeing whether to stop after this step failed: another '
            'rank stopped, or did not answer within dist_params.timeout (5 s) (') in output
    assert 'Traceback' not in output
