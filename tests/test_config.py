"""Config contract: defaults, TOML files, --set overrides, and one clear error per bad value."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from rnnlab.config import (
    SECTIONS,
    Config,
    Model,
    as_dict,
    config_from_toml,
    default_config,
    dotted_keys,
    keys_of,
    load_config,
    to_toml,
    with_overrides,
)
from rnnlab.errors import ConfigError


def test_default_config_is_valid_and_round_trips_through_toml(tmp_path):
    cfg = load_config()
    assert cfg.seeds == (0, 1, 2, 3)
    assert cfg == default_config() == Config()
    text = to_toml(cfg)
    n_keys = sum(len(keys_of(cls)) for cls in SECTIONS.values())
    assert n_keys == len(dotted_keys())
    assert text.count("\n# ") + text.startswith("# ") == n_keys  # every key commented
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(path) == cfg
    assert tomllib.loads(text)["model"]["lowrank"]["m"] == 0.0


def test_every_key_is_preceded_by_its_doc_in_to_toml():
    lines = to_toml(default_config()).splitlines()
    section = ""
    seen = []
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            name = line.split(" = ")[0]
            doc = SECTIONS[section].__dataclass_fields__[name].metadata["doc"]
            assert lines[i - 1] == f"# {doc}", (section, name)
            seen.append(f"{section}.{name}" if section else name)
    assert seen == dotted_keys()


def test_sections_and_keys_declare_kind_doc_and_bounds():
    assert SECTIONS[""] is Config and SECTIONS["model"] is Model
    assert set(SECTIONS) == {"", "model", "model.lowrank", "task", "train", "record"}
    for path, cls in SECTIONS.items():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, path
        for f in keys_of(cls):
            meta = f.metadata
            assert set(meta) == {"doc", "kind", "choices", "ge", "gt"}, (path, f.name)
            assert meta["doc"] and "\n" not in meta["doc"]
    assert "model.lowrank.m" in dotted_keys() and "seeds" in dotted_keys()
    assert "model.lowrank" not in dotted_keys()  # sections are not keys
    assert len(set(dotted_keys())) == len(dotted_keys())


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        [
            "model.phi=relu",
            "model.train=['J','w','B']",
            "task.kind=switch",
            "task.n_stimuli=2",
            "record.compression=zlib",
            "seeds=[7, 2]",
            "model.lowrank.overlap=-0.25",
            'name="a \\"b\\""',
        ],
    ],
)
def test_stored_toml_round_trips_to_an_equal_config(tmp_path, overrides):
    cfg = load_config(None, overrides)
    for comments in (True, False):
        path = tmp_path / "c.toml"
        path.write_text(to_toml(cfg, comments=comments))
        assert load_config(path) == cfg
        assert config_from_toml(to_toml(cfg, comments=comments), "x.nc") == cfg
    assert as_dict(cfg) == tomllib.loads(to_toml(cfg))
    assert as_dict(cfg)["model"]["train"] == list(cfg.model.train)


def test_typo_attribute_raises_attribute_error():
    cfg = load_config()
    with pytest.raises(AttributeError):
        _ = cfg.model.NN
    with pytest.raises(AttributeError):
        _ = cfg.trian


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.N = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seeds = (1,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.lowrank.m = 1.0
    assert hash(cfg) == hash(load_config())  # frozen and hashable


def test_replace_and_with_overrides_make_new_configs():
    cfg = load_config()
    other = cfg.replace(model=dataclasses.replace(cfg.model, N=64), name="x")
    assert (other.model.N, other.name, cfg.model.N, cfg.name) == (64, "x", 128, "default")
    again = with_overrides(cfg, ["model.g=1.2", "seeds=2"])
    assert again.model.g == 1.2 and again.seeds == (0, 1) and cfg.model.g == 0.8
    with pytest.raises(ConfigError, match="model.N"):
        with_overrides(cfg, ["model.N=0"])


def test_derived_properties():
    cfg = load_config(
        None, ["model.dt=0.01", "model.tau=0.04", "task.kind=switch", "task.n_stimuli=2"]
    )
    assert cfg.model.alpha == pytest.approx(0.25)
    assert cfg.task.inputs == ("stim1", "stim2", "cue") and cfg.task.outputs == ("out1",)
    two = load_config(None, ["task.n_stimuli=2", "task.n_outputs=2"])
    assert two.task.inputs == ("stim1", "stim2") and two.task.outputs == ("out1", "out2")


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
    assert (cfg.name, cfg.seeds, cfg.model.N) == ("x", (3, 5), 64)
    assert cfg.model.g == 1.2 and cfg.train.epochs == 7
    assert cfg.model.phi == "relu" and cfg.task.kind == "denoise"
    assert cfg.model.train == ("J", "w", "B") and cfg.model.lowrank.m == 2.0
    assert isinstance(cfg.model.lowrank.m, float) and isinstance(cfg.model.g, float)
    assert load_config(None, ["seeds=3"]).seeds == (0, 1, 2)


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


def test_default_config_cannot_be_changed_in_place():
    a = default_config()
    assert a.model.train == ("J", "w") and isinstance(a.model.train, tuple)
    with pytest.raises(AttributeError):
        a.model.train.append("B")
    assert default_config().model.train == ("J", "w")


FLOAT_KEYS = [
    f"{section}.{f.name}" if section else f.name
    for section, cls in SECTIONS.items()
    for f in keys_of(cls)
    if f.metadata["kind"] == "float"
]


def test_float_keys_found():
    assert "model.g" in FLOAT_KEYS and "model.lowrank.m" in FLOAT_KEYS and len(FLOAT_KEYS) > 15


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.g=-1", "config key 'model.g' must be >= 0, got -1.0"),
        ("model.N=0", "config key 'model.N' must be >= 1, got 0"),
        ("train.lr=0", "config key 'train.lr' must be > 0, got 0.0"),
        ("model.N=1.5", "config key 'model.N' must be an integer, got 1.5"),
        (
            "model.phi=sigmoid",
            "config key 'model.phi' has unknown value 'sigmoid'; choose from tanh, relu, linear",
        ),
    ],
)
def test_bound_and_kind_messages(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value) == message


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


# -- the [sweep] section ---------------------------------------------------------------------------
def test_sweep_section_from_a_file_normalised_and_printed_only_when_present(tmp_path):
    from rnnlab.config import point_config, sweep_points

    assert "[sweep]" not in to_toml(default_config())  # a run's config (and archive) has none
    path = tmp_path / "s.toml"
    path.write_text(
        '[model]\nN = 32\n[sweep]\n"model.g" = [0.5, 1]\nmodel.phi = ["tanh", "relu"]\n'
        '"model.train" = [["J", "w"], ["J", "w", "B"]]\n'
    )
    cfg = load_config(path)
    assert cfg.sweep == (
        ("model.g", (0.5, 1.0)),  # each value checked and normalised like the key's own
        ("model.phi", ("tanh", "relu")),
        ("model.train", (("J", "w"), ("J", "w", "B"))),
    )
    text = to_toml(cfg)
    assert text.endswith(
        "\n[sweep]\n# swept keys: one run per combination of their values (rnnlab sweep); "
        '"section.key" = [v1, v2, ...]\n"model.g" = [0.5, 1.0]\n"model.phi" = ["tanh", "relu"]\n'
        '"model.train" = [["J", "w"], ["J", "w", "B"]]\n'
    )
    (tmp_path / "again.toml").write_text(text)
    assert load_config(tmp_path / "again.toml") == cfg == with_overrides(cfg, [])
    points = sweep_points(cfg)
    assert len(points) == 8 and points[0] == (
        ("model.g", 0.5),
        ("model.phi", "tanh"),
        ("model.train", ("J", "w")),
    )
    one = point_config(cfg, points[-1], "p")
    assert (one.name, one.model.g, one.model.phi, one.model.N) == ("p", 1.0, "relu", 32)
    assert one.model.train == ("J", "w", "B") and one.sweep == ()


def test_grid_items_add_keys_or_replace_their_values(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[sweep]\n"model.g" = [0.5, 1.0]\n"train.lr" = [0.01]\n')
    cfg = load_config(path, ["model.g=0.9"], ["train.lr=0.1,0.2", "model.phi=relu"])
    assert cfg.sweep == (
        ("model.g", (0.5, 1.0)),
        ("train.lr", (0.1, 0.2)),
        ("model.phi", ("relu",)),
    )
    assert cfg.model.g == 0.9  # the base value; each point sets its own


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"model.gg" = [1]', "unknown config key 'model.gg' in [sweep]; did you mean 'model.g'?"),
        ('"epochs" = [1, 2]', "did you mean 'train.epochs'?"),
        ('"model.g" = 0.5', "[sweep] key 'model.g' must be a non-empty list of values, got 0.5"),
        ('"model.g" = []', "[sweep] key 'model.g' must be a non-empty list"),
        ('"model.g" = [0.5, 0.5]', "[sweep] key 'model.g' repeats the value 0.5"),
        ('"model.N" = [8, 0]', "config key 'model.N' must be >= 1, got 0"),
        ('"model.g" = [0.5, nan]', "config key 'model.g' must be a finite number"),
        ('"name" = ["a", "b"]', "config key 'name' cannot be swept"),
        ("sweep = 3", "[sweep] must be a table"),
    ],
)
def test_bad_sweep_sections_raise_one_line(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text if text.startswith("sweep") else f"[sweep]\n{text}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_point_breaking_a_cross_key_rule_is_named():
    from rnnlab.config import point_config, sweep_points

    cfg = load_config(None, [], ["model.dt=0.01,0.06", "task.kind=track"])
    with pytest.raises(ConfigError, match=r'^sweep point model.dt=0.06 task.kind="track": '):
        [point_config(cfg, p) for p in sweep_points(cfg)]
