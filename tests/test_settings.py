"""Every setting at the ends of its allowed range goes through the CLI and opens on its page unchanged.

Bounds, choices and widgets all come from one declaration per setting (`core/network/config.py`), so
a run configured on the CLI with any value the config accepts must open in the dashboard
without an error, showing that value, and without the page quietly changing it.
"""

import functools

import pytest

from core.commands.parser import build_parser, config_from_args
from core.network.backbones import BACKBONES
from core.network.config import SETTINGS, RunConfig
from core.network.freezing import PlanError
from core.runs.directory import RunDirectory, runs_root
from tests.test_pages import page

# The page that shows each setting (the rest are on the Train page).
DATA_PAGE = ("augmentation.", "val_fraction", "test_fraction")
MODEL_PAGE = ("backbone", "image_size", "unfreeze", "pooling", "head_units", "dropout")
NOT_ON_A_PAGE = ("data", "val_data", "test_data", "weights", "name")  # chosen with their own controls
UNFREEZE = [
    "auto",
    "none",
    "all",
    "top:0",
    "top:100000",
    "from:0",
    "from:100000",
    "block:block_6",
    "layers:0",
    "layers:3,99999",
]


def page_of(name: str) -> str:
    if name.startswith(DATA_PAGE):
        return "data"
    return "model" if name in MODEL_PAGE else "train"


def extremes(name: str) -> list[str]:
    """The ends of a setting's range as CLI text: both bounds (an open one approached closely), every
    special value and every choice (for the backbones, the first and the last)."""
    info = SETTINGS[name]
    meta = info.declaration
    if name == "unfreeze":
        return UNFREEZE
    if info.kind is bool:
        return ["--no", "--yes"]
    if meta.choices is not None:
        choices = list(meta.choices)
        return [choices[0], choices[-1]] if name == "backbone" else choices
    if info.kind is tuple:
        return [f"{meta.low:g}", f"{meta.high:g},{meta.low:g}", ""]
    nudge = 1e-6 if info.kind is float else 1
    low = meta.low + nudge if meta.above_low else meta.low
    high = meta.high - nudge if meta.below_high else meta.high
    values = [info.kind(low), info.kind(high)]
    return [meta.show(v) if meta.show else str(v) for v in [*values, *meta.special]]


def legal(values: dict[str, str]) -> dict[str, str]:
    """Values at their extremes that break a rule across settings, moved just enough to keep to it."""
    if values.get("head_epochs") == "0" and values.get("finetune_epochs") == "0":
        values["finetune_epochs"] = "1"
    if float(values.get("val_fraction", 0.15)) + float(values.get("test_fraction", 0.15)) >= 0.8:
        values["test_fraction"] = "0.3"
    if "image_size" in values and values["image_size"] != "auto":
        minimum = BACKBONES[values.get("backbone", "mobilenet_v2_0.5")].min_size
        values["image_size"] = str(max(int(values["image_size"]), minimum))
    return values


def extreme_configs(page_name: str) -> list[RunConfig]:
    """Configs whose settings of one page all sit at their extremes, each through the CLI's own parser."""
    names = [n for n in SETTINGS if n not in NOT_ON_A_PAGE and page_of(n) == page_name]
    rounds = max(len(extremes(n)) for n in names)
    configs = []
    for k in range(rounds):
        values = legal({name: extremes(name)[k % len(extremes(name))] for name in names})
        argv = ["train", "--data", "demo", "--out", "x"]
        for name, text in values.items():
            flag = SETTINGS[name].flag
            if SETTINGS[name].kind is bool:
                argv.append(flag if text == "--yes" else "--no-" + flag[2:])
            else:
                argv.append(f"{flag}={text}")
        configs.append(config_from_args(build_parser().parse_args(argv)))
    return configs


@functools.cache
def layer_rows(backbone: str) -> list[dict]:
    """The real layer table of a backbone, built once at its smallest size (as the page's task would)."""
    from core.network.freezing import layer_table

    spec = BACKBONES[backbone]
    return [row.__dict__ for row in layer_table(spec.build(spec.min_size, weights=None), spec)]


def fake_task(name, args, message):
    """The page's TensorFlow tasks, answered here: the network's layers, and the augmentation preview."""
    if name == "network":
        return {"rows": layer_rows(args["backbone"]), "head_params": 1000}, None
    return {"images": args["paths"]}, None


@pytest.mark.heavy
@pytest.mark.parametrize("page_name", ["data", "model", "train"])
def test_every_setting_at_its_extremes_opens_on_its_page_unchanged(page_name, monkeypatch):
    monkeypatch.setattr("app_pages.task_views.task_result", fake_task)
    configs = extreme_configs(page_name)
    for index, config in enumerate(configs):
        run = RunDirectory.create(runs_root(), config, run_id=f"{page_name}-extreme-{index}")
        at = page(page_name)
        at.query_params["run"] = run.id
        at.run()
        assert not at.exception, (run.config(), at.exception)
        assert at.session_state["draft"] == run.config(), f"the {page_name} page changed a setting of {run.config()}"
        if page_name == "model":
            names = [row["name"] for row in layer_rows(config.backbone)]
            try:
                config.unfreeze.mask(BACKBONES[config.backbone], names)
            except PlanError as error:  # a plan this network cannot follow is said, and kept for the person to change
                assert any(str(error) in e.value for e in at.error), (config.unfreeze, [e.value for e in at.error])
