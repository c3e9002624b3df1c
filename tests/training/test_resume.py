"""Choosing the training state to resume from (training/resume.py) without training anything."""
import pytest
import torch

from esrgan_plugin.errors import UserFacingError


def test_damaged_network_file_makes_its_state_unusable(tmp_path):
    from esrgan_plugin.training.resume import find_resume_point
    root = tmp_path / 'experiments' / 'x'
    (root / 'models').mkdir(parents=True)
    (root / 'training_states').mkdir()
    for it in (2, 4):
        torch.save({'iter': it}, root / 'training_states' / f'{it}.state')
        torch.save({'params': {}}, root / 'models' / f'net_g_{it}.pth')
    (root / 'models' / 'net_g_4.pth').write_bytes(b'\0' * 10)
    opt = {'auto_resume': True, 'network_g': {},
           'path': {'experiments_root': str(root), 'models': str(root / 'models')}}
    point = find_resume_point(opt)
    assert point.iteration == 2
    assert len(point.damaged) == 1 and 'net_g_4.pth' in point.damaged[0]
    (root / 'models' / 'net_g_2.pth').unlink()
    with pytest.raises(UserFacingError, match='no intact training state'):
        find_resume_point(opt)
