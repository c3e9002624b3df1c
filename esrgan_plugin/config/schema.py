"""The schema of option files: every option ``python -m esrgan_plugin.train``/``.test`` read, as one pydantic model.

One model serves both the check before a run (``config.checks``) and editors (``python -m esrgan_plugin.schema
-o esrgan_options.schema.json``). It is assembled from the fixed sections (``config.sections``) and the sections
derived from the registered classes (``config.registered_sections``), from the registries as they are when it
is built: register your own classes before checking a file that names them.
"""
from __future__ import annotations

import functools
from typing import Annotated, Literal, Optional

from pydantic import Field, create_model

from esrgan_plugin.config.registered_sections import (dataset_union, optimizer_union, registered, registered_sections,
                                                      scheduler_union, typed_union)
from esrgan_plugin.config.sections import DistParams, LoggerOptions, OptionsBase, Section, TrainBase, ValBase


def _registry_names() -> tuple:
    """What the registries hold now; the model is rebuilt when something new is registered."""
    from basicsr.utils import registry
    return tuple(tuple(r._obj_map) for r in (registry.ARCH_REGISTRY, registry.LOSS_REGISTRY, registry.METRIC_REGISTRY,
                                             registry.DATASET_REGISTRY, registry.MODEL_REGISTRY))


def options_model() -> type:
    """The top-level model of an option file, built from the registries as they are now."""
    return _options_model(_registry_names())


@functools.lru_cache(maxsize=4)
def _options_model(registry_names: tuple) -> type:
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    from esrgan_plugin.metrics.scoring import LOWER_IS_BETTER

    archs, other_archs, arch_names = registered_sections('network', ARCH_REGISTRY)
    network = typed_union('network', archs, other_archs, arch_names)
    # The test command may read the architecture off the checkpoint instead (network_g absent or type auto).
    auto = create_model('network_auto', __base__=Section, type=(Literal['auto'], ...))
    generator = typed_union('network', {**archs, 'auto': auto}, other_archs, arch_names + ['auto'])
    loss = typed_union('loss', *registered_sections('loss', LOSS_REGISTRY))
    metric = typed_union('metric', *registered_sections('metric', METRIC_REGISTRY, extra_fields={
        'better': (Optional[Literal['higher', 'lower']], Field(None, description=(
            'which way is better (log and best-metric tracking); default: lower for '
            f'{", ".join(sorted(LOWER_IS_BETTER))}, higher for the others (esrgan_plugin.metrics.scoring)')))}))
    optimizer, scheduler = optimizer_union(), scheduler_union()

    train = create_model(
        'TrainOptions', __base__=TrainBase,
        optim_g=(optimizer, ...), optim_d=(Optional[optimizer], None), scheduler=(Optional[scheduler], None),
        pixel_opt=(Optional[loss], None), perceptual_opt=(Optional[loss], None), gan_opt=(Optional[loss], None),
        ldl_opt=(Optional[loss], None))
    val = create_model('ValOptions', __base__=ValBase, metrics=(Optional[dict[str, metric]], None))
    model_types = tuple(registered(MODEL_REGISTRY))
    return create_model(
        'ESRGANPluginOptions', __base__=OptionsBase,
        __doc__='Option file of python -m esrgan_plugin.train / esrgan_plugin.test (basicsr 1.4.2 format).',
        model_type=(Literal[model_types], Field(description='a model registered in basicsr (ESRGAN...: the plugin)')),
        datasets=(Annotated[dict[str, dataset_union()], Field(min_length=1)], ...),
        network_g=(Optional[generator], None), network_d=(Optional[network], None),
        train=(Optional[train], None), val=(Optional[val], None), logger=(Optional[LoggerOptions], None),
        dist_params=(Optional[DistParams], None))


def json_schema() -> dict:
    """JSON schema (draft-07) of ``options_model()``, for editors."""
    schema = options_model().model_json_schema()
    schema['$schema'] = 'http://json-schema.org/draft-07/schema#'  # what editors' YAML servers read best
    return schema
