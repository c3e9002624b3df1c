"""The option files that ship with the package (listed and copied by ``python -m esrgan_plugin.options``).

The files live in the repository's top-level ``options/`` folder. An installed
package (``pip install .``) carries a copy as ``esrgan_plugin/option_files/``
(``setup.py`` maps that package folder onto ``options/``); a clone, an editable
install or a checkout on ``PYTHONPATH`` reads ``options/`` beside the package.
Either way ``-opt train_ESRGAN_x4`` (a bare name) finds them, from any folder.
"""
from __future__ import annotations

import os
import shutil

from esrgan_plugin.errors import UserFacingError

# The package folder, esrgan_plugin/ (this module is in esrgan_plugin/config/).
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTION_EXTENSIONS = ('.yml', '.yaml')


def option_files_dir() -> str:
    """The folder holding the shipped option files: the installed copy, else the checkout's ``options/``."""
    for folder in (os.path.join(PACKAGE_DIR, 'option_files'), os.path.join(os.path.dirname(PACKAGE_DIR), 'options')):
        if os.path.isdir(folder):
            return folder
    raise UserFacingError(f'no option files found beside the package in {PACKAGE_DIR}; reinstall it '
                          '(pip install .) or run from a clone.')


def shipped_option_files() -> list[str]:
    """Paths of the shipped option files, sorted by name."""
    folder = option_files_dir()
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder)) if name.endswith(OPTION_EXTENSIONS)]


def resolve_option_file(path: str) -> str:
    """``path`` itself when it exists; for a bare name such as ``train_ESRGAN_x4`` (with or without ``.yml``) that
    is not a file here, the shipped file of that name; otherwise ``path`` unchanged (the caller reports it missing)."""
    if os.path.exists(path) or os.path.dirname(path):
        return path
    for candidate in shipped_option_files():
        name = os.path.basename(candidate)
        if path in (name, os.path.splitext(name)[0]):
            return candidate
    return path


def summary(path: str) -> str:
    """The first comment line of an option file (schema directives for editors skipped), for ``--list``."""
    with open(path, encoding='utf-8') as f:
        for line in f:
            text = line.strip()
            if not text.startswith('#'):
                break
            text = text.lstrip('#').strip()
            if text and not text.startswith('yaml-language-server'):
                return text
    return ''


def copy_option_files(out_dir: str, overwrite: bool = False) -> list[str]:
    """Copy the shipped option files into ``out_dir`` (created if missing); returns the written paths.

    Raises:
        UserFacingError: a file of the same name exists there and ``overwrite`` is off (nothing is copied then).
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserFacingError(f'{out_dir} is a file; pass a folder to copy the option files into.')
    sources = shipped_option_files()
    targets = [os.path.join(out_dir, os.path.basename(s)) for s in sources]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not overwrite:
        raise UserFacingError(f'{existing[0]} already exists; pass --overwrite to replace it, or another folder.')
    os.makedirs(out_dir, exist_ok=True)
    for source, target in zip(sources, targets):
        shutil.copyfile(source, target)
    return targets
