"""``python scripts/prepare_data.py HR_DIR OUT_DIR ...``: the same as ``python -m esrgan_plugin.prepare_data``, from a clone."""
import os
import sys

# Run from a clone without installing: the checkout comes first on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from esrgan_plugin.cli import run_main  # noqa: E402
from esrgan_plugin.prepare_data import main  # noqa: E402

if __name__ == '__main__':
    run_main(main, sys.argv[1:])
