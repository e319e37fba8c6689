"""Recipes: each fills the settings it decides, on the CLI and on the pages, and leaves the user's own alone."""

import pytest

from core.commands.parser import CliError, build_parser, config_from_args, recipe_defaults
from core.network.backbones import BACKBONES
from core.network.config import RunConfig
from core.network.freezing import PlanError, UnfreezePlan
from core.network.recipes import RECIPE_FIELDS, RECIPES, get_recipe, matching_recipe


def _cli_config(*flags):
    argv = ["train", "--data", "photos", "--out", "x", *flags]
    return config_from_args(build_parser(recipe_defaults(argv)).parse_args(argv))


@pytest.mark.parametrize("key", sorted(RECIPES))
def test_each_recipe_is_a_valid_config_and_the_cli_reproduces_it(key):
    recipe = get_recipe(key)
    config = recipe.config(RunConfig(data="photos", seed=7)).validate()
    assert config.data == "photos" and config.seed == 7  # the user's own settings stay
    assert config.backbone in BACKBONES and recipe.what and recipe.source
    cli = _cli_config("--recipe", key)
    assert all(getattr(cli, name) == getattr(config, name) for name in RECIPE_FIELDS)
    assert matching_recipe(cli) == key
    offline = recipe.config().replace(**recipe.offline).validate()
    assert offline.backbone in BACKBONES


def test_flags_given_with_a_recipe_override_it():
    config = _cli_config("--recipe", "chollet_vgg16", "--head-lr", "0.01", "--zoom", "0")
    assert config.head_learning_rate == 0.01 and config.augmentation.zoom == 0.0
    assert config.backbone == "vgg16" and config.head_units == (256,) and config.optimizer == "rmsprop"
    assert matching_recipe(config) is None


def test_the_schedule_and_averaging_flags_turn_on_and_off_over_a_recipe():
    default = _cli_config()
    assert default.cosine_decay and default.average_weights and default.feature_views == 8
    plain = _cli_config("--no-cosine-decay", "--no-average-weights")
    assert not plain.cosine_decay and not plain.average_weights
    guide = _cli_config("--recipe", "keras_guide", "--cosine-decay")
    assert guide.cosine_decay and not guide.average_weights and guide.feature_views == 2


def test_image_size_auto_and_what_to_keep_on_the_cli():
    default = _cli_config()
    assert default.image_size == 0 and default.keep == "auto"  # 0: chosen from the photos
    assert _cli_config("--image-size", "auto").image_size == 0 and _cli_config("--image-size", "192").image_size == 192
    assert _cli_config("--keep", "best").keep == "best"
    classic = _cli_config("--recipe", "chollet_vgg16")
    assert classic.keep == "best" and classic.image_size == 180
    with pytest.raises(CliError, match="--image-size: Image size .* must be a whole number. Received: 'large'"):
        _cli_config("--image-size", "large")


def test_the_default_config_is_the_studio_recipe():
    assert matching_recipe(RunConfig()) == "studio"
    with pytest.raises(KeyError, match="Choose one of"):
        get_recipe("magic")


def test_freezing_the_first_n_layers():
    spec = BACKBONES["vgg19"]
    names = [f"layer{i}" for i in range(10)]
    assert UnfreezePlan.parse("from:5").mask(spec, names) == [False] * 5 + [True] * 5
    with pytest.raises(PlanError, match="0 to 9"):
        UnfreezePlan.parse("from:10").mask(spec, names)


@pytest.mark.heavy
def test_the_model_page_applies_a_recipe_and_shows_its_settings():
    from tests.test_pages import page

    at = page("model").run()
    assert at.selectbox(key="recipe_model").value == "studio"
    at.selectbox(key="recipe_model").set_value("chollet_vgg16").run()
    at.button(key="use_recipe_model").click().run()
    assert not at.exception
    draft = at.session_state["draft"]
    assert draft.backbone == "vgg16" and str(draft.unfreeze) == "block:block5" and draft.head_units == (256,)
    assert at.selectbox(key="backbone").value == "vgg16"
    assert at.radio(key="unfreeze.kind").value == "block" and at.selectbox(key="unfreeze.block").value == "block5"
    assert at.selectbox(key="pooling").value == "flatten" and at.text_input(key="head_units").value == "256"
    assert at.slider(key="dropout").value == 0.5
    assert at.selectbox(key="recipe_model").value == "chollet_vgg16"


@pytest.mark.heavy
def test_the_train_page_applies_a_recipe_and_a_change_makes_the_settings_your_own():
    from tests.test_pages import page

    at = page("train").run()
    at.selectbox(key="recipe_train").set_value("keras_guide").run()
    at.button(key="use_recipe_train").click().run()
    assert not at.exception
    assert at.number_input(key="head_epochs").value == 20 and at.number_input(key="head_learning_rate").value == 1e-3
    assert at.selectbox(key="optimizer").value == "adam"
    assert at.toggle(key="cosine_decay").value is False and at.toggle(key="average_weights").value is False
    assert at.number_input(key="feature_views").value == 2 and at.selectbox(key="keep").value == "best"
    assert str(at.session_state["draft"].unfreeze) == "all"
    at.number_input(key="head_epochs").set_value(3).run()
    assert at.selectbox(key="recipe_train").value is None
    assert any("your own" in caption.value for caption in at.caption)


@pytest.mark.heavy
def test_the_train_page_back_to_the_default_recipe_restores_its_schedule_averaging_and_views():
    from tests.test_pages import page

    at = page("train").run()
    at.selectbox(key="recipe_train").set_value("blog_dense1024").run()
    at.button(key="use_recipe_train").click().run()
    assert at.toggle(key="average_weights").value is False
    at.selectbox(key="recipe_train").set_value("studio").run()
    at.button(key="use_recipe_train").click().run()
    assert not at.exception
    assert at.toggle(key="cosine_decay").value is True and at.toggle(key="average_weights").value is True
    assert at.number_input(key="feature_views").value == 8 and at.number_input(key="finetune_epochs").value == 15
    assert at.selectbox(key="keep").value == "auto"
    draft = at.session_state["draft"]
    assert draft.cosine_decay is True and draft.average_weights is True and draft.feature_views == 8
