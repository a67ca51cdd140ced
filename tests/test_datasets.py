"""One description per dataset (vit.datasets), read by every module that needs a dataset's facts."""

import pytest

from vit.datasets import DATASETS, dataset
from vit.data import FILES


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_description_is_complete(name):
    described = DATASETS[name]
    assert described.name == name and len(described.class_names) == 10 and described.noun
    assert set(described.sha256) == {file for pair in FILES.values() for file in pair} and described.mirrors
    assert "/" in described.hub_id and described.framing.box in (20, 28)


def test_settings_with_no_meaning_for_a_dataset_are_named():
    assert DATASETS["mnist"].check_recipe({"flag_ones": 0.5}) is None
    assert DATASETS["fashion-mnist"].check_recipe({"flag_ones": 0.0, "flip": 0.5}) is None
    assert DATASETS["fashion-mnist"].check_recipe({"flag_ones": 0.5}) == (
        "flag_ones has no meaning for Fashion-MNIST: it has no digits")


def test_an_unknown_dataset_names_the_known_ones():
    assert dataset(None).name == "mnist"
    with pytest.raises(KeyError, match="choose one of \\['fashion-mnist', 'mnist'\\]"):
        dataset("cifar-10")


def test_a_model_folder_speaks_of_its_own_dataset(models):
    fashion = models["fashion-mnist"]
    assert fashion.data is DATASETS["fashion-mnist"] and fashion.noun == "fashion item"
    assert fashion.framing == DATASETS["fashion-mnist"].framing != models["mnist"].framing
