"""The models' shape: both stages stand on ESRGANBaseModel, which basicsr cannot build by name."""
from basicsr.models import build_model
from basicsr.utils.registry import MODEL_REGISTRY

from builders import batch, model_opt
from esrgan_plugin.models.base_model import ESRGANBaseModel
from esrgan_plugin.models.psnr_model import ESRGANPSNRModel
from esrgan_plugin.models.ragan_model import ESRGANRaGANModel


def test_both_stages_stand_on_the_base_and_only_they_are_registered():
    assert ESRGANPSNRModel.__bases__ == (ESRGANBaseModel,)
    assert ESRGANRaGANModel.__bases__ == (ESRGANBaseModel,)  # not the PSNR stage: it shares nothing of its step
    assert MODEL_REGISTRY.get('ESRGANPSNRModel') is ESRGANPSNRModel
    assert MODEL_REGISTRY.get('ESRGANRaGANModel') is ESRGANRaGANModel
    assert 'ESRGANBaseModel' not in MODEL_REGISTRY


def test_the_psnr_stage_trains_the_generator_alone(tmp_path):
    model = build_model(model_opt(tmp_path, 'ESRGANPSNRModel'))
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert list(model.get_current_log()) == ['l_pix']
    assert len(model.optimizers) == 1 and not hasattr(model, 'net_d')
    assert model.training_state().keys() == {'optimizers', 'schedulers', 'nonfinite_in_a_row'}
