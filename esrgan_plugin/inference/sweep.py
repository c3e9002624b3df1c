"""The perception-distortion sweep: evaluate interpolated generators for a range of alpha (paper section 4.4, fig. 7).

For each alpha the PSNR-oriented and GAN generators are blended (``interpolate.interpolate``) and the result is
evaluated on the test sets of an option file with the metrics of its ``val.metrics``, exactly as the test command
computes them (``metrics.evaluation``, the one path validation and test take too). The means go to ``sweep.csv``,
one row per alpha and test set, and to ``sweep.png``: the distortion metric (PSNR) against each perceptual one
(NIQE, LPIPS), one point per alpha. A user reads off the alpha with the trade-off they want.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from basicsr.data import build_dataset
from tqdm import tqdm

from esrgan_plugin import fileio
from esrgan_plugin.metrics import evaluation, scoring as metrics
from esrgan_plugin.archs.checkpoint import infer_arch_params, load_generator_state
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference.interpolation import check_compatible, interpolate
from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet


def parse_range(text: str) -> list[float]:
    """'start:stop:step' (stop included) as a list of alphas in 0..1, e.g. '0:1:0.25' -> [0, 0.25, 0.5, 0.75, 1]."""
    try:
        start, stop, step = (float(part) for part in text.split(':'))
    except ValueError:
        raise UserFacingError(f'--sweep {text!r} is not start:stop:step; write e.g. 0:1:0.1') from None
    if step <= 0 or stop < start or not (0.0 <= start <= 1.0 and 0.0 <= stop <= 1.0):
        raise UserFacingError(f'--sweep {text}: need 0 <= start <= stop <= 1 and step > 0, e.g. 0:1:0.1')
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    # Rounded so that 0.1 * 3 is written 0.3; alphas are labels as much as weights.
    return [round(start + i * step, 10) for i in range(count)]


def test_datasets(eval_opt: Mapping) -> list:
    """basicsr datasets of the option file's ``datasets`` (phase test), as the test command builds them."""
    built = []
    for _, dataset_opt in sorted((eval_opt.get('datasets') or {}).items()):
        built.append(build_dataset({**dataset_opt, 'phase': 'test', 'scale': eval_opt.get('scale', 4)}))
    if not built:
        raise UserFacingError('the --eval option file has no datasets; use a test option file such as '
                              'options/test_set14.yml')
    return built


def evaluate_images(net: torch.nn.Module, dataset, metric_opts: Mapping, device: torch.device,
                    label: str = '') -> Iterator[evaluation.ImageEvaluation]:
    """Each image of ``dataset`` evaluated with ``net`` in float32 on ``device``, through the same path as
    validation and the test command (``metrics.evaluation``), with a progress bar over images."""
    net = net.to(device).eval()
    items = (dataset[index] for index in tqdm(range(len(dataset)), unit='image',
                                              desc=f'{label} {dataset.opt["name"]}'.strip()))
    return evaluation.evaluate_pairs(lambda lq: net(lq.to(device)).cpu(), items, metric_opts)


def evaluate_network(net: torch.nn.Module, datasets: Sequence, metric_opts: Mapping, device: torch.device,
                     label: str = '') -> dict[str, dict[str, float]]:
    """{dataset name: {metric: mean}} of ``net`` on ``datasets``, with a progress bar over images."""
    means = {}
    for dataset in datasets:
        per_image = [result.values for result in evaluate_images(net, dataset, metric_opts, device, label)]
        means[dataset.opt['name']] = evaluation.mean_values(per_image, metric_opts)
    return means


def write_csv(rows: list[dict], metric_names: Sequence[str], path: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['alpha', 'dataset', *metric_names])
    for row in rows:
        writer.writerow([f'{row["alpha"]:g}', row['dataset'], *(f'{row[m]:.6f}' for m in metric_names)])
    fileio.save_text(buffer.getvalue(), path)


def plot_axes(better_by_name: Mapping[str, str]) -> tuple[Optional[str], list[str]]:
    """(distortion metric for the y axis, perceptual metrics for the x axes): the first PSNR-like higher-is-better
    metric (``psnr_y`` before ``psnr_rgb``: the order of the option file), and every lower-is-better one."""
    higher = [m for m, way in better_by_name.items() if way == 'higher']
    y = next((m for m in higher if 'psnr' in m.lower()), higher[0] if higher else None)
    return y, [m for m, way in better_by_name.items() if way == 'lower']


def write_plot(rows: list[dict], better_by_name: Mapping[str, str], path: str) -> bool:
    """PSNR against each perceptual metric, one point per alpha (labelled), one line per test set.
    False when the metrics give no such pair."""
    y_name, x_names = plot_axes(better_by_name)
    if y_name is None or not x_names:
        return False
    import matplotlib
    matplotlib.use('Agg')  # files only, no display
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(x_names), figsize=(5.5 * len(x_names), 4.5), squeeze=False)
    for ax, x_name in zip(axes[0], x_names):
        for dataset in dict.fromkeys(r['dataset'] for r in rows):
            points = [r for r in rows if r['dataset'] == dataset]
            ax.plot([r[x_name] for r in points], [r[y_name] for r in points], 'o-', label=dataset)
            for r in points:
                ax.annotate(f'{r["alpha"]:g}', (r[x_name], r[y_name]), textcoords='offset points', xytext=(4, 4),
                            fontsize=8)
        ax.set_xlabel(f'{x_name} (lower is better)')
        ax.set_ylabel(f'{y_name} (higher is better)')
        ax.set_title(f'{y_name} against {x_name}; labels: alpha')
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fileio.write_with(path, lambda tmp: fig.savefig(tmp, format='png', dpi=120))
    plt.close(fig)
    return True


def matplotlib_available() -> bool:
    import importlib.util
    return importlib.util.find_spec('matplotlib') is not None


def run_sweep(psnr_path: str, gan_path: str, alphas: Sequence[float], eval_opt: Mapping, out_dir: str,
              param_key: Optional[str] = None, device: Optional[torch.device] = None,
              report: Callable[[str], None] = lambda line: None) -> dict:
    """Evaluate the blend for each alpha; write ``<out_dir>/sweep.csv`` (and ``sweep.png`` with matplotlib).

    Returns {'rows': [...], 'csv': path, 'png': path or None}. ``report`` receives one line per alpha.
    """
    metric_opts = (eval_opt.get('val') or {}).get('metrics') or {}
    if not metric_opts:
        raise UserFacingError('the --eval option file has no val.metrics; use a test option file such as '
                              'options/test_set14.yml')
    better_by_name = metrics.directions(metric_opts)
    device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    psnr = load_generator_state(psnr_path, param_key)
    gan = load_generator_state(gan_path, param_key)
    check_compatible(psnr, gan)
    datasets = test_datasets(eval_opt)
    net = ESRGANRRDBNet(**infer_arch_params(psnr))
    rows = []
    for alpha in alphas:
        net.load_state_dict(interpolate(psnr, gan, alpha), strict=True)
        for dataset_name, means in evaluate_network(net, datasets, metric_opts, device, f'alpha {alpha:g}').items():
            rows.append({'alpha': alpha, 'dataset': dataset_name, **means})
            report(f'alpha {alpha:g} {dataset_name}: {metrics.describe(means, better_by_name)}')
    csv_path = os.path.join(out_dir, 'sweep.csv')
    write_csv(rows, list(metric_opts), csv_path)
    png_path = os.path.join(out_dir, 'sweep.png')
    drawn = matplotlib_available() and write_plot(rows, better_by_name, png_path)
    return {'rows': rows, 'csv': csv_path, 'png': png_path if drawn else None}
