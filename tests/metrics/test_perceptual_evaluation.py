"""The test command with NIQE and LPIPS, its results page, and the perception-distortion sweep, end to end.

Two tiny 104x200 test images, tiny pass-through generators (eval_fixtures), a random AlexNet trunk at
$TORCH_HOME: every figure the commands print is compared with an independent computation on the saved images.
"""
import csv
import glob
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO_ROOT, TINY_ARCH, run_command_in
from eval_fixtures import make_test_set, passthrough_generator, save_alexnet_trunk
from esrgan_plugin import interpolate as interpolate_command
from esrgan_plugin import test as evaluation_command

NAMES = ['astronaut', 'chelsea']
HAVE_LPIPS = __import__('importlib').util.find_spec('lpips') is not None


def parse_log(path: str) -> tuple[dict, dict, dict]:
    """Per-image values, means, and the direction logged beside each metric."""
    text = open(path, encoding='utf-8').read()
    per_image, directions = {}, {}
    for name, values in re.findall(r'INFO: tiny (\w+): (.+)', text):
        per_image[name] = {}
        for metric, value, better in re.findall(r'(\w+) (-?[\d.]+|nan) \((higher|lower) is better\)', values):
            per_image[name][metric] = float(value)
            directions[metric] = better
    means = {k: float(v) for k, v in re.findall(r'# (\w+): (-?[\d.]+|nan) \((?:higher|lower) is better\)', text)}
    return per_image, means, directions


def write_options(tmp_path, name: str, net_path: str, gt_dir: str, lq_dir: str) -> str:
    with open(os.path.join(REPO_ROOT, 'options', 'test_set14.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    opt['datasets']['test_1'].update(name='tiny', dataroot_gt=gt_dir, dataroot_lq=lq_dir)
    opt['network_g'] = {'type': 'ESRGANRRDBNet', **TINY_ARCH}
    opt['path']['pretrain_network_g'] = net_path
    if HAVE_LPIPS:
        opt['val']['metrics']['lpips'] = {'type': 'calculate_lpips', 'net': 'alex', 'crop_border': 4}
    path = tmp_path / f'{name}.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return str(path)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """The test command on generators A and B (both on the tiny test set)."""
    tmp_path = tmp_path_factory.mktemp('perceptual')
    gt_dir, lq_dir = make_test_set(tmp_path / 'data')
    trunk = save_alexnet_trunk(tmp_path / 'torch_home', seed=4)
    env = {'TORCH_HOME': str(tmp_path / 'torch_home')}
    out = dict(tmp=tmp_path, gt_dir=gt_dir, lq_dir=lq_dir, env=env, trunk=trunk)
    for label, seed in (('A', 1), ('B', 2)):
        net_path = str(tmp_path / f'{label}.pth')
        torch.save({'params': passthrough_generator(seed).state_dict()}, net_path)
        opt_path = write_options(tmp_path, f'tiny_{label}', net_path, gt_dir, lq_dir)
        result = run_command_in(tmp_path, evaluation_command.main, '-opt', opt_path, env=env)
        assert result.code == 0, result.err[-3000:]
        results = tmp_path / 'results' / f'tiny_{label}'
        (log,) = glob.glob(str(results / f'test_tiny_{label}_*.log'))
        out[label] = dict(net=net_path, results=results, log=log, stderr=result.err, opt=opt_path)
    return out


def saved_images(run: dict, gt_dir: str):
    for name in NAMES:
        sr = cv2.imread(str(run['results'] / 'visualization' / 'tiny' / f'{name}_{run["results"].name}.png'))
        yield name, sr, cv2.imread(os.path.join(gt_dir, f'{name}.png'))


def test_logged_niqe_equals_basicsr_on_the_saved_images(runs):
    from basicsr.metrics import calculate_niqe

    per_image, means, directions = parse_log(runs['A']['log'])
    assert sorted(per_image) == NAMES
    assert directions['niqe'] == 'lower' and directions['psnr_y'] == 'higher'
    independent = {name: calculate_niqe(sr, crop_border=4, input_order='HWC', convert_to='y')
                   for name, sr, _ in saved_images(runs['A'], runs['gt_dir'])}
    for name, value in independent.items():
        assert np.isfinite(value)
        assert per_image[name]['niqe'] == pytest.approx(value, abs=1e-4), name
    assert means['niqe'] == pytest.approx(np.mean(list(independent.values())), abs=1e-4)


@pytest.mark.skipif(not HAVE_LPIPS, reason='the lpips package (the reference implementation) is not installed')
def test_logged_lpips_equals_the_lpips_package_on_the_saved_images(runs):
    import lpips

    reference = lpips.LPIPS(net='alex', pnet_rand=True, verbose=False).eval()
    for layers in reference.net.children():
        for index, layer in layers.named_children():
            layer.load_state_dict({k: runs['trunk'][f'features.{index}.{k}'] for k in layer.state_dict()})
    per_image, means, directions = parse_log(runs['A']['log'])
    assert directions['lpips'] == 'lower'
    values = []
    for name, sr, gt in saved_images(runs['A'], runs['gt_dir']):
        tensors = [lpips.im2tensor(np.ascontiguousarray(x[4:-4, 4:-4, ::-1])) for x in (sr, gt)]
        with torch.no_grad():
            values.append(float(reference(*tensors)))
        assert per_image[name]['lpips'] == pytest.approx(values[-1], abs=1e-4), name
    assert means['lpips'] == pytest.approx(np.mean(values), abs=1e-4)


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.sources, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'a' and 'href' in attrs:
            self.links.append(attrs['href'])
        if tag in ('img', 'script', 'link') and (attrs.get('src') or attrs.get('href')):
            self.sources.append(attrs.get('src') or attrs.get('href'))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def test_results_page_shows_every_image_and_metric_and_references_only_existing_files(runs):
    results = runs['A']['results']
    page = PageParser()
    page.feed((results / 'index.html').read_text(encoding='utf-8'))
    referenced = page.links + page.sources
    assert referenced and all(not re.match(r'^[a-z]+:', ref) and not ref.startswith('/') for ref in referenced)
    for ref in referenced:
        assert (results / ref).is_file(), ref
    # each image: LR, bicubic, SR and ground truth, each a crop linked to its full image
    for name in NAMES:
        rows = [ref for ref in page.sources if os.path.basename(ref).startswith(name + '_')]
        assert sorted(os.path.basename(r) for r in rows) == sorted(
            f'{name}_{kind}_crop.png' for kind in ('LR', 'bicubic', 'SR', 'ground_truth'))
        assert f'visualization/tiny/{name}_tiny_A.png' in page.links
        assert name in page.text
    per_image, means, _ = parse_log(runs['A']['log'])
    for metric in per_image[NAMES[0]]:
        assert metric in page.text
        for name in NAMES:
            assert f'{per_image[name][metric]:.4f}' in page.text, (name, metric)
        assert f'{means[metric]:.4f}' in page.text, metric
    # the crops are the same region of each image; the bicubic one is MATLAB bicubic of the LR
    from basicsr.utils.matlab_functions import imresize
    from esrgan_plugin.metrics.results_page import detailed_region
    gt = cv2.imread(os.path.join(runs['gt_dir'], 'astronaut.png'))
    lq = cv2.imread(os.path.join(runs['lq_dir'], 'astronaut.png'))
    top, left, size = detailed_region(gt, 128, 4)
    crops = {kind: cv2.imread(str(results / 'page' / 'tiny' / f'astronaut_{kind}_crop.png'))
             for kind in ('LR', 'bicubic', 'ground_truth')}
    assert np.array_equal(crops['ground_truth'], gt[top:top + size, left:left + size])
    assert np.array_equal(crops['LR'], lq[top // 4:(top + size) // 4, left // 4:(left + size) // 4])
    bicubic = np.clip(np.round(imresize(lq / 255.0, 4) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(crops['bicubic'], bicubic[top:top + size, left:left + size])


def test_console_has_progress_bar_and_ends_with_the_table_of_means(runs):
    err = runs['A']['stderr']
    assert re.search(r'tiny: 100%\|.*\| 2/2', err)
    _, means, _ = parse_log(runs['A']['log'])
    tail = err[err.rindex('Mean of each metric:'):].splitlines()[1:]
    assert tail[0].split()[0] == 'dataset' and tail[1].split()[0] == 'better:'
    row = dict(zip(tail[0].split()[1:], tail[2].split()[1:]))
    assert tail[2].split()[0] == 'tiny' and set(row) == set(means)
    assert all(float(row[m]) == pytest.approx(means[m], abs=1e-4) for m in means)


def chromium() -> str:
    for name in ('chromium', 'chromium-browser', 'google-chrome', 'chrome'):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip('no Chromium on this machine (apt-get install chromium)')


# Appended to a copy of the page: after loading, counts the images that decoded; a broken one throws.
IMAGE_CHECK = """<script>window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  if (broken.length) throw new Error('broken image ' + broken[0].src);
  document.body.setAttribute('data-images-loaded', String(document.images.length));
});</script>"""


def render(browser: str, page, profile) -> subprocess.CompletedProcess:
    return subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr',
                           '--v=0', f'--user-data-dir={profile}', '--dump-dom', page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)


def test_results_page_renders_in_headless_chromium_without_errors(runs, tmp_path):
    browser = chromium()
    results = runs['A']['results']
    html = (results / 'index.html').read_text(encoding='utf-8')
    assert '<script' not in html  # the page itself needs no script
    checked = results / 'index_checked.html'  # same folder: same relative paths
    checked.write_text(html.replace('</body>', IMAGE_CHECK + '</body>'), encoding='utf-8')
    try:
        result = render(browser, checked, tmp_path / 'profile')
    finally:
        checked.unlink()
    assert result.returncode == 0, result.stderr[-2000:]
    # Chromium logs script errors and uncaught exceptions (a broken image, above) as CONSOLE lines.
    assert 'CONSOLE' not in result.stderr and 'Uncaught' not in result.stderr, result.stderr[-2000:]
    assert f'data-images-loaded="{4 * len(NAMES)}"' in result.stdout
    # the check can fail: a page with a missing image is reported
    broken = tmp_path / 'broken.html'
    broken.write_text('<html><body><img src="missing.png">' + IMAGE_CHECK + '</body></html>')
    assert 'broken image' in render(browser, broken, tmp_path / 'profile').stderr


def test_sweep_rows_per_alpha_and_endpoints_equal_evaluating_the_inputs(runs):
    tmp = runs['tmp']
    result = run_command_in(tmp, interpolate_command.main, '--psnr', runs['A']['net'], '--gan', runs['B']['net'],
                            '--sweep', '0:1:0.5', '--eval', runs['A']['opt'], '-o', 'sweep', env=runs['env'])
    assert result.code == 0, result.err[-3000:]
    assert 'alpha 0.5 tiny: psnr_y' in result.out and '(lower is better)' in result.out
    with open(tmp / 'sweep' / 'sweep.csv', newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [(r['alpha'], r['dataset']) for r in rows] == [('0', 'tiny'), ('0.5', 'tiny'), ('1', 'tiny')]
    for row, label in ((rows[0], 'A'), (rows[2], 'B')):
        _, means, _ = parse_log(runs[label]['log'])
        assert set(means) <= set(row)
        for metric, value in means.items():
            assert float(row[metric]) == pytest.approx(value, abs=1e-4), (label, metric)
    assert float(rows[1]['psnr_y']) != pytest.approx(float(rows[0]['psnr_y']), abs=1e-3)
    if HAVE_MATPLOTLIB:
        png = cv2.imread(str(tmp / 'sweep' / 'sweep.png'))
        assert png is not None and png.shape[0] > 100
    assert sorted(os.listdir(tmp / 'sweep')) == (['sweep.csv', 'sweep.png'] if HAVE_MATPLOTLIB else ['sweep.csv'])


HAVE_MATPLOTLIB = __import__('importlib').util.find_spec('matplotlib') is not None
