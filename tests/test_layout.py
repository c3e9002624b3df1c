"""The package's shape, read from its imports (ast; nothing is imported): no circles, commands apart from the
library, and imports that run one way between the layers (docs/development.md#layout-of-the-code)."""
import ast
import os

from conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, 'esrgan_plugin')
# Each layer may import only from itself and the layers before it; the commands and the package's __init__
# (register()) come last. Leaves are modules at the package top; subpackages are named by folder.
LAYERS = (
    ('errors', 'fileio', 'choices'),
    ('archs',),
    ('data',),
    ('losses',),
    ('metrics',),
    ('training',),
    ('models',),
    ('inference',),
    ('config',),
    ('compat',),
    ('demo_realworld',),
)
COMMANDS = ('cli', 'train', 'test', 'infer', 'interpolate', 'export', 'prepare_data', 'options', 'schema', 'demo',
            'degrade')


def modules() -> dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                rel = os.path.relpath(os.path.join(folder, name), REPO_ROOT)[:-3].split(os.sep)
                found['.'.join(rel[:-1] if rel[-1] == '__init__' else rel)] = os.path.join(folder, name)
    return found


def imports(path: str, names: set) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in the file (function-level imports count)."""
    tree = ast.parse(open(path, encoding='utf-8').read())
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f'{path}: relative import; the package imports itself absolutely'
            # `from pkg import module` imports the module; `from module import name` the module itself
            targets = [f'{node.module}.{alias.name}' if f'{node.module}.{alias.name}' in names else node.module
                       for alias in node.names]
        for target in targets:
            if target in names:
                found.add(target)
    return found


def graph() -> dict[str, set]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def place(module: str) -> tuple[str, int]:
    """('command' | 'library' | 'package', layer index) of a dotted module name."""
    parts = module.split('.')[1:]
    if not parts:
        return 'package', len(LAYERS)
    top = parts[0]
    if top in COMMANDS and len(parts) == 1:
        return 'command', len(LAYERS)
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return 'library', index
    raise AssertionError(f'{module} is in no layer; add it to LAYERS (and to docs/development.md#layout-of-the-code)')


def test_every_module_has_a_place():
    for module in modules():
        place(module)


def test_no_import_circles():
    edges = graph()
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        for nxt in sorted(edges[node]):
            if nxt.split('.')[:2] == ['esrgan_plugin'] and nxt == 'esrgan_plugin':
                continue  # `import esrgan_plugin` for register(): the package's top, checked below
            if state.get(nxt) == 'open':
                raise AssertionError('import circle: ' + ' -> '.join(stack[stack.index(nxt):] + [node, nxt])
                                     if nxt in stack else f'import circle through {node} -> {nxt}')
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 'done'

    for node in sorted(edges):
        if node not in state:
            visit(node, [])


def test_library_modules_import_no_command_and_nothing_above_their_layer():
    wrong = []
    for module, targets in graph().items():
        kind, layer = place(module)
        if kind != 'library':
            continue
        for target in targets:
            target_kind, target_layer = place(target)
            if target_kind == 'command':
                wrong.append(f'{module} imports the command {target}')
            elif target_kind == 'package':
                wrong.append(f'{module} imports the package top ({target}); commands call register()')
            elif target_layer > layer:
                wrong.append(f'{module} (layer {layer}) imports {target} (layer {target_layer})')
    assert not wrong, '\n'.join(wrong)


def test_commands_do_not_import_each_other_except_the_shared_cli():
    for module, targets in graph().items():
        if place(module)[0] == 'command' and module != 'esrgan_plugin.cli':
            others = {t for t in targets if place(t)[0] == 'command'} - {'esrgan_plugin.cli'}
            assert not others, f'{module} imports {others}'


def test_the_checker_sees_a_wrong_import(tmp_path, monkeypatch):
    # The rules are only worth something if a violation is caught: a library module importing a command.
    fake = tmp_path / 'esrgan_plugin' / 'archs'
    fake.mkdir(parents=True)
    (tmp_path / 'esrgan_plugin' / 'train.py').write_text('')
    (fake / 'x_arch.py').write_text('from esrgan_plugin.train import main\nfrom esrgan_plugin.config import loading\n')
    (tmp_path / 'esrgan_plugin' / 'config').mkdir()
    (tmp_path / 'esrgan_plugin' / 'config' / 'loading.py').write_text('')
    monkeypatch.setattr(__import__(__name__), 'PACKAGE', str(tmp_path / 'esrgan_plugin'))
    monkeypatch.setattr(__import__(__name__), 'REPO_ROOT', str(tmp_path))
    try:
        test_library_modules_import_no_command_and_nothing_above_their_layer()
    except AssertionError as err:
        assert 'imports the command esrgan_plugin.train' in str(err)
        assert 'esrgan_plugin.archs.x_arch (layer 1) imports esrgan_plugin.config.loading (layer 8)' in str(err)
    else:
        raise AssertionError('the layer check passed a library module importing a command')
