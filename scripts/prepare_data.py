"""``python scripts/prepare_data.py HR_DIR OUT_DIR ...``: the same as ``python -m esrgan_plugin.prepare_data``, from a clone."""
import os
import sys

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __name__ == '__main__':
    # Hand over to `python -m esrgan_plugin.prepare_data` with this checkout first on the path (so it runs without
    # installing): the command as users run it, which parses its arguments, and answers -h, before importing torch.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [CHECKOUT, os.environ.get('PYTHONPATH')])))
    os.execve(sys.executable, [sys.executable, '-m', 'esrgan_plugin.prepare_data', *sys.argv[1:]], env)
