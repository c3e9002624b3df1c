"""Same as ``python -m esrgan_plugin.interpolate``; kept for users of the ESRGAN repository's script name."""
from esrgan_plugin.cli import run_main
from esrgan_plugin.interpolate import main

if __name__ == '__main__':
    run_main(main)
