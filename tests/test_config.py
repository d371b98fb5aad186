"""Config contract: defaults, TOML files, --set overrides, and one clear error per bad value."""

from __future__ import annotations

import tomllib

import pytest

from rnnlab.config import SCHEMA, default_config, load_config, to_toml
from rnnlab.errors import ConfigError


def test_default_config_is_valid_and_round_trips_through_toml(tmp_path):
    cfg = load_config()
    assert cfg["seeds"] == [0, 1, 2, 3]
    text = to_toml(cfg)
    assert text.count("#") >= sum(len(keys) for keys in SCHEMA.values())  # every key commented
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == cfg
    assert tomllib.loads(text)["model"]["lowrank"]["m"] == 0.0


def test_file_and_overrides(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text('name = "x"\nseeds = [3, 5]\n[model]\nN = 64\n[task]\nkind = "denoise"\n')
    cfg = load_config(
        path,
        [
            "model.g=1.2",
            "train.epochs=7",
            "model.phi=relu",
            "model.train=['J','w','B']",
            "model.lowrank.m=2",
        ],
    )
    assert (cfg["name"], cfg["seeds"], cfg["model"]["N"]) == ("x", [3, 5], 64)
    assert cfg["model"]["g"] == 1.2 and cfg["train"]["epochs"] == 7
    assert cfg["model"]["phi"] == "relu" and cfg["task"]["kind"] == "denoise"
    assert cfg["model"]["train"] == ["J", "w", "B"] and cfg["model"]["lowrank"]["m"] == 2.0
    assert load_config(None, ["seeds=3"])["seeds"] == [0, 1, 2]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.N=0", "model.N"),
        ("model.N=1.5", "model.N"),
        ("model.N=true", "model.N"),
        ("model.dt=0.1", "model.dt"),
        ("model.dt=-1", "model.dt"),
        ("model.phi=sigmoid", "model.phi"),
        ("task.kind=juggle", "task.kind"),
        ("seeds=[]", "seeds"),
        ("seeds=0", "seeds"),
        ("seeds=[1, 1]", "seeds"),
        ("model.nope=1", "model.nope"),
        ("bogus.key=1", "bogus.key"),
        ("train.lr=0", "train.lr"),
        ("train.optimizer=rmsprop", "train.optimizer"),
        ("train.epochs=0", "train.epochs"),
        ("model.train=['J','x']", "model.train"),
        ("model.train=[]", "model.train"),
        ("task.washout=5", "task.washout"),
        ("task.n_stimuli=3", "task.n_stimuli"),
        ("task.n_outputs=2", "task.n_outputs"),
        ("task.kind=switch", "switch"),
        ("model.lowrank.overlap=1.5", "overlap"),
        ("task.correlation=1", "task.correlation"),
        ("record.every=0", "record.every"),
        ("device=tpu", "device"),
        ("model.g", "section.key=value"),
    ],
)
def test_bad_values_raise_one_line_naming_the_key(override, needle):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\nN = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[modle]\nN = 3\n")
    with pytest.raises(ConfigError, match=r"\[modle\]"):
        load_config(unknown)


def test_default_config_is_a_fresh_copy():
    a = default_config()
    a["model"]["train"].append("B")
    assert default_config()["model"]["train"] == ["J", "w"]


FLOAT_KEYS = [
    f"{section}.{name}" if section else name
    for section, keys in SCHEMA.items()
    for name, key in keys.items()
    if key.kind == "float"
]


@pytest.mark.parametrize("dotted", FLOAT_KEYS)
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400"])
def test_non_finite_numbers_are_refused_for_every_float_key(dotted, text):
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"{dotted}={text}"])
    message = str(info.value)
    assert message.startswith(f"config key '{dotted}' must be a finite number, got ")
    assert "\n" not in message


def test_non_finite_numbers_in_a_file_are_refused(tmp_path):
    path = tmp_path / "c.toml"
    for text, key, value in [
        ("[model]\ng = inf", "model.g", "inf"),
        ("[model.lowrank]\nm = nan", "model.lowrank.m", "nan"),
    ]:
        path.write_text(text + "\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value) == f"config key '{key}' must be a finite number, got {value}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.gg=1", "unknown config key 'model.gg'; did you mean 'model.g'?"),
        ("train.epoch=3", "unknown config key 'train.epoch'; did you mean 'train.epochs'?"),
        ("seed=3", "unknown config key 'seed'; did you mean 'seeds'?"),
        ("modle.g=1", "unknown config key 'modle.g'; did you mean 'model.g'?"),
        ("epochs=5", "unknown config key 'epochs'; did you mean 'train.epochs'?"),
        ("model.m=2", "unknown config key 'model.m'; did you mean 'model.lowrank.m'?"),
        ("bogus.key=1", "unknown config key 'bogus.key'"),  # nothing close: no guess
    ],
)
def test_misspelled_keys_get_a_suggestion(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[modle]\nN = 3\n", "unknown config section [modle]; did you mean [model]?"),
        (
            "[model.lowrnk]\nm = 1\n",
            "unknown config section [model.lowrnk]; did you mean [model.lowrank]?",
        ),
        ("[zzz]\nN = 3\n", "unknown config section [zzz]"),
        ("seed = 3\n", "unknown config key 'seed'; did you mean 'seeds'?"),
        ("[model]\ngg = 1.0\n", "unknown config key 'model.gg'; did you mean 'model.g'?"),
    ],
)
def test_misspelled_sections_and_keys_in_a_file_get_a_suggestion(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == message
