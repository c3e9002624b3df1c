"""Every command answers -h before importing torch or basicsr (issue 12: help took 10-50 s)."""
import glob
import os
import subprocess
import time

import pytest

from conftest import PYTHON, REPO_ROOT, subprocess_env

MODULES = ['train', 'test', 'infer', 'interpolate', 'export', 'prepare_data', 'demo', 'options', 'schema', 'degrade']
SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, 'scripts', '*.py')))
# Scripts that hand their arguments over to a command: the help that comes back is the command's.
HANDED_OVER = {'interpolate_networks.py': 'interpolate', 'prepare_data.py': 'prepare_data'}
# Importing torch and basicsr takes about 10 s on the 2-core machine (more when it is busy); the commands
# themselves need well under a second. The bound only has to tell the two apart.
BOUND_S = 6.0


def imported_modules(importtime_log: str) -> set:
    """Module names from Python's -X importtime report ('import time: self | cumulative | name')."""
    return {line.rsplit('|', 1)[1].strip() for line in importtime_log.splitlines() if line.startswith('import time:')}


@pytest.mark.parametrize('command', [['-m', f'esrgan_plugin.{m}'] for m in MODULES]
                         + [[os.path.join(REPO_ROOT, 'scripts', s)] for s in SCRIPTS],
                         ids=MODULES + SCRIPTS)
def test_help_is_answered_without_importing_torch(tmp_path, command):
    # PYTHONPROFILEIMPORTTIME (= -X importtime) is inherited by the interpreter a script hands over to.
    env = dict(subprocess_env(), PYTHONPROFILEIMPORTTIME='1')
    start = time.perf_counter()
    result = subprocess.run([PYTHON, *command, '-h'], capture_output=True, text=True, env=env, timeout=120,
                            cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith('usage:')
    handed_to = HANDED_OVER.get(os.path.basename(command[0]))
    if handed_to:
        assert result.stdout.startswith(f'usage: python -m esrgan_plugin.{handed_to} ')
    modules = imported_modules(result.stderr)
    assert 'argparse' in modules  # the report is there at all
    assert not {'torch', 'basicsr', 'torchvision'} & modules
    assert elapsed < BOUND_S, f'{elapsed:.1f} s'

