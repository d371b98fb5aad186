"""Run configuration: one schema of typed, documented keys; TOML in, validated dict out.

The schema is the public interface of `rnnlab run`: every key has a type, a default and a one-line
doc, `--print-config` prints it as commented TOML, and every bad value stops the run with one line
naming the key before any file is touched.
"""

from __future__ import annotations

import copy
import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError

PHIS = ("tanh", "relu", "linear")
TASKS = ("track", "denoise", "switch")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
TRAINABLE = ("J", "w", "B")


@dataclass(frozen=True)
class Key:
    """One config key: its type, default and documentation."""

    kind: str  # "int", "float", "bool", "str", "seeds", "strlist"
    default: Any
    doc: str
    choices: tuple[str, ...] = ()


SCHEMA: dict[str, dict[str, Key]] = {
    "": {
        "name": Key("str", "default", "run name; the default archive is runs/<name>.nc"),
        "seeds": Key("seeds", 4, "list of seed integers, or a count n meaning seeds 0..n-1"),
        "device": Key("str", "auto", "auto (CUDA when present), cpu or cuda", DEVICES),
    },
    "model": {
        "N": Key("int", 128, "number of neurons"),
        "tau": Key("float", 0.05, "membrane time constant tau (s)"),
        "dt": Key("float", 0.01, "Euler step (s); alpha = dt/tau must be < 1"),
        "phi": Key("str", "tanh", "nonlinearity: tanh, relu or linear", PHIS),
        "g": Key("float", 0.8, "gain of the random bulk g*W, W_ij ~ N(0, 1/N)"),
        "b": Key("float", 1.0, "mean-connectivity term -(b/N) 11^T (eigenvalue at -b)"),
        "noise": Key("float", 0.0, "process noise sd: h += sqrt(alpha)*noise*xi each step"),
        "train": Key("strlist", ["J", "w"], "trainable parameters, a subset of J, w, B", TRAINABLE),
        "input_scale": Key("float", 1.0, "B_ij ~ N(0, input_scale^2)"),
        "w_init": Key(
            "str", "zero", "readout start: zero, or random (w_i ~ N(0, 1/N))", ("zero", "random")
        ),
    },
    "model.lowrank": {
        "m": Key("float", 0.0, "strength of an imposed rank-one m*u*v^T (0: none)"),
        "overlap": Key("float", 0.5, "overlap v^T u of the unit vectors u, v, in [-1, 1]"),
        "orthogonal_to_ones": Key("bool", True, "draw u and v orthogonal to the uniform vector 1"),
    },
    "task": {
        "kind": Key("str", "denoise", "track, denoise or switch", TASKS),
        "n_stimuli": Key("int", 1, "number of OU stimuli (1 or 2; switch needs 2)"),
        "n_outputs": Key("int", 1, "number of readouts (1 or 2)"),
        "tau_ou": Key("float", 0.2, "OU correlation time (s)"),
        "sigma_ou": Key("float", 1.0, "OU stationary standard deviation"),
        "mean_ou": Key("float", 0.0, "OU stationary mean"),
        "correlation": Key("float", 0.0, "correlation coefficient of the two stimuli"),
        "obs_noise": Key("float", 1.0, "sd of white observation noise per step (denoise)"),
        "switch_rate": Key("float", 2.0, "rate (1/s) of random context-cue flips (switch)"),
        "duration": Key("float", 1.0, "trial duration (s)"),
        "washout": Key("float", 0.1, "initial time excluded from the MSE (s)"),
        "batch": Key("int", 16, "trials per seed per epoch"),
    },
    "train": {
        "optimizer": Key("str", "adam", "sgd or adam", OPTIMIZERS),
        "lr": Key("float", 5e-3, "learning rate"),
        "epochs": Key("int", 200, "optimizer steps; one epoch = one step on a fresh batch"),
        "clip": Key("float", 1.0, "per-seed gradient-norm clip (0: off)"),
        "lambda_w": Key("float", 0.0, "weight of ||J||_F^2 in the loss"),
        "lambda_bal": Key("float", 0.0, "weight of ||(1/N) 1^T J||^2 in the loss"),
        "fused": Key("bool", True, "fused BPTT (custom backward); false: plain autograd loop"),
    },
    "record": {
        "every": Key("int", 20, "snapshot every k epochs (epoch 0 and the last always kept)"),
        "trajectories_every": Key("int", 50, "store evaluation trajectories every k epochs"),
        "n_eval_trials": Key("int", 8, "fixed evaluation trials per seed"),
        "store": Key("str", "both", "which matrices to write: both, J or dJ", ("both", "J", "dJ")),
        "compression": Key("str", "none", "none or zlib (lossless)", ("none", "zlib")),
        "significant_digits": Key("int", 0, "quantise floats to k significant digits (0: off)"),
        "track_k": Key("int", 4, "leading eigenvalues of J tracked every epoch"),
    },
}


def default_config() -> dict[str, Any]:
    """The embedded default config as a nested dict."""
    out: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        target = _section(out, section)
        for name, key in keys.items():
            target[name] = copy.deepcopy(key.default)
    return out


def _section(cfg: dict[str, Any], section: str) -> dict[str, Any]:
    node = cfg
    for part in section.split(".") if section else []:
        node = node.setdefault(part, {})
    return node


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Defaults, updated from a TOML file and `section.key=value` overrides, then validated."""
    cfg = default_config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            user = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        _merge(cfg, user, "")
    for item in overrides or []:
        _apply_override(cfg, item)
    return validate(cfg)


def config_from_toml(text: str, source: str) -> dict[str, Any]:
    """A validated config from TOML text (an archive's stored `config`), `source` naming it."""
    cfg = default_config()
    try:
        _merge(cfg, tomllib.loads(text), "")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} holds no valid TOML config: {exc}") from None
    return validate(cfg)


def _merge(cfg: dict[str, Any], user: dict[str, Any], prefix: str) -> None:
    for name, value in user.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            if dotted not in SCHEMA:
                hint = _suggest(dotted, [s for s in SCHEMA if s])
                tail = f"; did you mean [{hint}]?" if hint else ""
                raise ConfigError(f"unknown config section [{dotted}]{tail}")
            _merge(cfg, value, dotted)
        else:
            _set(cfg, dotted, value)


def _set(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, name = dotted.rpartition(".")
    if section not in SCHEMA or name not in SCHEMA[section]:
        hint = _suggest_key(dotted)
        tail = f"; did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"unknown config key '{dotted}'{tail}")
    _section(cfg, section)[name] = value


def dotted_keys() -> list[str]:
    """Every key of the schema as `section.key` (top-level keys bare)."""
    return [f"{sec}.{name}" if sec else name for sec, keys in SCHEMA.items() for name in keys]


def _suggest(word: str, candidates: list[str]) -> str:
    """The closest candidate to a misspelled `word`, or '' when none is close."""
    found = difflib.get_close_matches(word, candidates, n=1)
    return found[0] if found else ""


def _suggest_key(dotted: str) -> str:
    """A schema key for an unknown one: the only key of that name in another section
    (`epochs` -> `train.epochs`), else the closest spelling (`model.gg` -> `model.g`), else ''."""
    keys = dotted_keys()
    name = dotted.rpartition(".")[2]
    same_name = [key for key in keys if key.rpartition(".")[2] == name]
    return same_name[0] if len(same_name) == 1 else _suggest(dotted, keys)


def _apply_override(cfg: dict[str, Any], item: str) -> None:
    dotted, sep, text = item.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise ConfigError(f"--set expects section.key=value, got '{item}'")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # bare words (phi=relu) are strings
    _set(cfg, dotted, value)


def _check_type(dotted: str, key: Key, value: Any) -> Any:
    bad = ConfigError(f"config key '{dotted}' must be {_kind_text(key)}, got {value!r}")
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif key.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"config key '{dotted}' must be a finite number, got {value}")
    elif key.kind == "bool":
        if not isinstance(value, bool):
            raise bad
    elif key.kind == "str":
        if not isinstance(value, str):
            raise bad
    elif key.kind == "strlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
    elif key.kind == "seeds":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            if value < 1:
                raise ConfigError(f"config key 'seeds' must be a positive count, got {value}")
            value = list(range(value))
        elif isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            if not value:
                raise ConfigError("config key 'seeds' is empty: give a list of seeds or a count")
            if len(set(value)) != len(value) or min(value) < 0:
                raise ConfigError(f"config key 'seeds' must be distinct non-negative ints: {value}")
        else:
            raise bad
    if key.choices:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item not in key.choices:
                raise ConfigError(
                    f"config key '{dotted}' has unknown value {item!r}; "
                    f"choose from {', '.join(key.choices)}"
                )
    return value


def _kind_text(key: Key) -> str:
    return {
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "str": "a string",
        "strlist": "a list of strings",
        "seeds": "a list of integers or a count",
    }[key.kind]


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check types, choices and ranges; return a normalised deep copy (seeds as a list)."""
    cfg = copy.deepcopy(cfg)
    for section, keys in SCHEMA.items():
        node = _section(cfg, section)
        for name, key in keys.items():
            dotted = f"{section}.{name}" if section else name
            node[name] = _check_type(dotted, key, node.get(name, key.default))
    _check_ranges(cfg)
    return cfg


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_ranges(cfg: dict[str, Any]) -> None:
    model, task, train, record = cfg["model"], cfg["task"], cfg["train"], cfg["record"]
    _require(bool(cfg["name"]) and "/" not in cfg["name"], "config key 'name' must be a plain name")
    _require(model["N"] >= 1, f"config key 'model.N' must be >= 1, got {model['N']}")
    _require(model["tau"] > 0, f"config key 'model.tau' must be > 0, got {model['tau']}")
    _require(model["dt"] > 0, f"config key 'model.dt' must be > 0, got {model['dt']}")
    _require(
        model["dt"] < model["tau"],
        f"config key 'model.dt' ({model['dt']}) must be smaller than model.tau ({model['tau']})",
    )
    for name in ("g", "noise", "input_scale"):
        _require(model[name] >= 0, f"config key 'model.{name}' must be >= 0")
    _require(
        bool(model["train"]), "config key 'model.train' is empty: train at least one of J, w, B"
    )
    _require(
        len(set(model["train"])) == len(model["train"]), "config key 'model.train' repeats a name"
    )
    overlap = cfg["model"]["lowrank"]["overlap"]
    _require(
        -1 <= overlap <= 1, f"config key 'model.lowrank.overlap' must be in [-1, 1]: {overlap}"
    )
    _require(task["n_stimuli"] in (1, 2), "config key 'task.n_stimuli' must be 1 or 2")
    _require(task["n_outputs"] in (1, 2), "config key 'task.n_outputs' must be 1 or 2")
    if task["kind"] == "switch":
        _require(task["n_stimuli"] == 2, "task.kind 'switch' needs task.n_stimuli = 2")
        _require(task["n_outputs"] == 1, "task.kind 'switch' has one readout: task.n_outputs = 1")
    else:
        _require(
            task["n_outputs"] <= task["n_stimuli"],
            "config key 'task.n_outputs' must not exceed task.n_stimuli (one target per stimulus)",
        )
    for name in ("tau_ou", "duration"):
        _require(task[name] > 0, f"config key 'task.{name}' must be > 0")
    for name in ("sigma_ou", "obs_noise", "switch_rate", "washout"):
        _require(task[name] >= 0, f"config key 'task.{name}' must be >= 0")
    _require(-1 < task["correlation"] < 1, "config key 'task.correlation' must be in (-1, 1)")
    _require(
        task["washout"] < task["duration"],
        "config key 'task.washout' must be shorter than task.duration",
    )
    steps = round(task["duration"] / model["dt"])
    _require(steps >= 1, "task.duration is shorter than one model.dt step")
    _require(task["batch"] >= 1, "config key 'task.batch' must be >= 1")
    _require(train["lr"] > 0, f"config key 'train.lr' must be > 0, got {train['lr']}")
    _require(train["epochs"] >= 1, f"config key 'train.epochs' must be >= 1, got {train['epochs']}")
    for name in ("clip", "lambda_w", "lambda_bal"):
        _require(train[name] >= 0, f"config key 'train.{name}' must be >= 0")
    for name in ("every", "trajectories_every", "n_eval_trials"):
        _require(record[name] >= 1, f"config key 'record.{name}' must be >= 1")
    _require(
        record["significant_digits"] >= 0, "config key 'record.significant_digits' must be >= 0"
    )
    _require(
        1 <= record["track_k"] <= model["N"], "config key 'record.track_k' must be in [1, model.N]"
    )


def to_toml(cfg: dict[str, Any], comments: bool = True) -> str:
    """Render a config as TOML, each key preceded by its documentation."""
    lines: list[str] = []
    for section, keys in SCHEMA.items():
        node = _section(cfg, section) if section else cfg
        if section:
            lines.append("")
            lines.append(f"[{section}]")
        for name, key in keys.items():
            if comments:
                lines.append(f"# {key.doc}")
            lines.append(f"{name} = {_toml_value(node[name])}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def snapshot_epochs(epochs: int, every: int) -> list[int]:
    """A record schedule: 0, every, 2*every, ... and always the last epoch."""
    return sorted(set(range(0, epochs + 1, every)) | {epochs})


def n_steps(cfg: dict[str, Any]) -> int:
    """Number of Euler steps in one trial."""
    return round(cfg["task"]["duration"] / cfg["model"]["dt"])


def washout_steps(cfg: dict[str, Any]) -> int:
    """Number of initial steps excluded from the MSE."""
    return round(cfg["task"]["washout"] / cfg["model"]["dt"])
