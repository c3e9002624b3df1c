import torch

from esrgan_plugin.losses.ragan_loss import ESRGANRaGANLoss, ragan_d_terms, ragan_g_loss

REAL = torch.tensor([[2.0], [0.5], [-1.0], [3.0]])
FAKE = torch.tensor([[-0.5], [1.5], [0.0], [-2.0]])


def d_ra(a, b):
    """The paper's D_Ra(a, b) = sigmoid(C(a) - E[C(b)]), written out."""
    return torch.sigmoid(a - b.mean())


def test_discriminator_loss_matches_the_paper():
    # L_D = -E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))], averaged over the two terms
    expected_real = -torch.log(d_ra(REAL, FAKE)).mean() / 2
    expected_fake = -torch.log(1 - d_ra(FAKE, REAL)).mean() / 2
    l_real, l_fake = ragan_d_terms(REAL, FAKE)
    torch.testing.assert_close(l_real, expected_real)
    torch.testing.assert_close(l_fake, expected_fake)


def test_generator_loss_matches_the_paper():
    # L_G = -E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)], averaged
    expected = (-torch.log(1 - d_ra(REAL, FAKE)).mean() - torch.log(d_ra(FAKE, REAL)).mean()) / 2
    torch.testing.assert_close(ragan_g_loss(REAL, FAKE), expected)
    torch.testing.assert_close(ESRGANRaGANLoss(5e-3)(REAL, FAKE), 5e-3 * expected)


def test_generator_gets_gradients_from_real_and_fake_terms():
    real = REAL.clone().requires_grad_()
    fake = FAKE.clone().requires_grad_()
    ragan_g_loss(real, fake).backward()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0


def test_stable_for_extreme_logits():
    big = torch.tensor([[80.0], [-80.0]])
    assert torch.isfinite(ragan_g_loss(big, -big)) and all(torch.isfinite(t) for t in ragan_d_terms(big, -big))


def test_per_pixel_logits_average_over_batch_and_pixels():
    """A per-pixel discriminator (N×1×H×W): every logit is a sample, E[C(x)] the mean over batch and pixels."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 1, 4, 5, generator=g), torch.randn(2, 1, 4, 5, generator=g)
    expected_real = -torch.log(torch.sigmoid(real - fake.mean())).mean() / 2
    expected_fake = -torch.log(1 - torch.sigmoid(fake - real.mean())).mean() / 2
    l_real, l_fake = ragan_d_terms(real, fake)
    torch.testing.assert_close(l_real, expected_real)
    torch.testing.assert_close(l_fake, expected_fake)
    # the same logits as one image of 2·4·5 pixels or 40 one-pixel images give the same losses
    torch.testing.assert_close(ragan_g_loss(real, fake), ragan_g_loss(real.reshape(40, 1), fake.reshape(40, 1)))
    torch.testing.assert_close(ragan_g_loss(real, fake), ragan_g_loss(real.reshape(1, 1, 8, 5), fake.reshape(1, 1, 8, 5)))
