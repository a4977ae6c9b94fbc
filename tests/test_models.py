"""lutnb.zoo.models: output shapes, torchvision-matching parameter counts, names LUTBoost relies on."""
import pytest
import torch
from torch import nn

from lutnb.zoo import models as M

SHAPES = {
    "digits_cnn": (2, 1, 8, 8),
    "mnist1d_cnn": (2, 1, 40),
    "mnist1d_mlp": (2, 1, 40),
    "resnet20": (2, 3, 32, 32),
    "vgg_small": (2, 3, 32, 32),
    "resnet18_imagenet": (1, 3, 64, 64),
    "resnet50_imagenet": (1, 3, 64, 64),
    "vit_digits": (2, 1, 8, 8),
}


def test_every_registered_model_has_a_shape_test():
    assert set(SHAPES) == set(M.MODELS)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_output_shape_and_conv1(name):
    torch.manual_seed(0)
    model = M.get_model(name).eval()
    out_classes = 1000 if name.endswith("imagenet") else 10
    with torch.no_grad():
        y = model(torch.randn(SHAPES[name]))
    assert y.shape == (SHAPES[name][0], out_classes)
    if name not in ("mnist1d_mlp", "vit_digits"):  # no convolution in these two
        assert isinstance(model.conv1, nn.Conv2d)
    names = [n for n, _ in model.named_modules()]
    assert len(names) == len(set(names)) == len(list(model.modules()))  # no aliased modules


def test_num_classes_passes_through():
    assert M.get_model("digits_cnn", num_classes=7)(torch.randn(3, 1, 8, 8)).shape == (3, 7)


def test_mnist1d_cnn_is_conv2d_only_and_accepts_flat_input():
    m = M.mnist1d_cnn().eval()
    assert not any(isinstance(x, nn.Conv1d) for x in m.modules())
    x = torch.randn(4, 1, 40)
    with torch.no_grad():
        assert torch.allclose(m(x), m(x.reshape(4, 40)))
    with pytest.raises(ValueError, match="length 40"):
        m(torch.randn(2, 1, 30))


def test_parameter_counts_match_torchvision():
    assert M.count_parameters(M.resnet18_imagenet()) == 11_689_512
    assert M.count_parameters(M.resnet50_imagenet()) == 25_557_032
    assert M.count_parameters(M.resnet20()) == 272_474  # 1x1-conv shortcuts (option A: 269,722)


def test_imagenet_attribute_names():
    m = M.resnet50_imagenet()
    for attr in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"):
        assert hasattr(m, attr)
    assert m.layer1[0].conv3.out_channels == 256 and m.layer4[0].conv2.stride == (2, 2)
    assert m.fc.in_features == 2048


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="resnet20"):
        M.get_model("resnet1000")
