"""Run configuration: frozen, typed sections (`cfg.model.N`, `cfg.task.kind`, `cfg.train.lr`).

Each key is declared once, as a dataclass field whose metadata holds its documentation, its
choices and its bounds; `--print-config`, `--set`, the TOML stored in every archive and
`rnnlab info` all come from these declarations. A sweep's grid is the `[sweep]` section: the
field `Config.sweep` of (key, values) pairs, each value checked as its key's own, printed only
when there is one (`sweep_points` and `point_config` give the runs). Loading merges a TOML file
and `section.key=value` overrides into the defaults and validates them; every bad value stops
with one line naming the key (a misspelled key gets a close match) before any file is touched.
Frozen dataclasses rather than pydantic: no extra dependency, and the checks (TOML-typed values,
one-line messages naming the dotted key, cross-key rules) are a few lines each.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError

PHIS = ("tanh", "relu", "linear")
TASKS = ("track", "denoise", "switch")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
TRAINABLE = ("J", "w", "B")
KINDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "strlist": "a list of strings",
    "seeds": "a list of integers or a count",
}


def key(
    kind: str,
    default: Any,
    doc: str,
    choices: tuple[str, ...] = (),
    *,
    ge: float | None = None,
    gt: float | None = None,
) -> Any:
    """A config key: its kind (KINDS), default, one-line doc, choices and lower bound."""
    meta = {"kind": kind, "doc": doc, "choices": choices, "ge": ge, "gt": gt}
    return field(default=default, metadata=meta)


SWEEP = "sweep"
SWEEP_DOC = (
    "swept keys: one run per combination of their values (rnnlab sweep); "
    '"section.key" = [v1, v2, ...]'
)


def section(cls: type) -> Any:
    """A nested section (its own frozen dataclass)."""
    return field(default_factory=cls, metadata={"section": True})


@dataclass(frozen=True)
class Lowrank:
    """[model.lowrank]: an imposed rank-one structure m u v^T in J0."""

    m: float = key("float", 0.0, "strength of an imposed rank-one m*u*v^T (0: none)")
    overlap: float = key("float", 0.5, "overlap v^T u of the unit vectors u, v, in [-1, 1]")
    orthogonal_to_ones: bool = key("bool", True, "draw u and v orthogonal to the uniform vector 1")


@dataclass(frozen=True)
class Model:
    """[model]: the rate network."""

    N: int = key("int", 128, "number of neurons", ge=1)
    tau: float = key("float", 0.05, "membrane time constant tau (s)", gt=0)
    dt: float = key("float", 0.01, "Euler step (s); alpha = dt/tau must be < 1", gt=0)
    phi: str = key("str", "tanh", "nonlinearity: tanh, relu or linear", PHIS)
    g: float = key("float", 0.8, "gain of the random bulk g*W, W_ij ~ N(0, 1/N)", ge=0)
    b: float = key("float", 1.0, "mean-connectivity term -(b/N) 11^T (eigenvalue at -b)")
    noise: float = key("float", 0.0, "process noise sd: h += sqrt(alpha)*noise*xi each step", ge=0)
    train: tuple[str, ...] = key(
        "strlist", ("J", "w"), "trainable parameters, a subset of J, w, B", TRAINABLE
    )
    input_scale: float = key("float", 1.0, "B_ij ~ N(0, input_scale^2)", ge=0)
    w_init: str = key(
        "str", "zero", "readout start: zero, or random (w_i ~ N(0, 1/N))", ("zero", "random")
    )
    lowrank: Lowrank = section(Lowrank)

    @property
    def alpha(self) -> float:
        """The Euler step in units of tau, dt/tau."""
        return self.dt / self.tau


@dataclass(frozen=True)
class Task:
    """[task]: the OU task."""

    kind: str = key("str", "denoise", "track, denoise or switch", TASKS)
    n_stimuli: int = key("int", 1, "number of OU stimuli (1 or 2; switch needs 2)")
    n_outputs: int = key("int", 1, "number of readouts (1 or 2)")
    tau_ou: float = key("float", 0.2, "OU correlation time (s)", gt=0)
    sigma_ou: float = key("float", 1.0, "OU stationary standard deviation", ge=0)
    mean_ou: float = key("float", 0.0, "OU stationary mean")
    correlation: float = key("float", 0.0, "correlation coefficient of the two stimuli")
    obs_noise: float = key("float", 1.0, "sd of white observation noise per step (denoise)", ge=0)
    switch_rate: float = key("float", 2.0, "rate (1/s) of random context-cue flips (switch)", ge=0)
    duration: float = key("float", 1.0, "trial duration (s)", gt=0)
    washout: float = key("float", 0.1, "initial time excluded from the MSE (s)", ge=0)
    batch: int = key("int", 16, "trials per seed per epoch", ge=1)
    shuffle_targets: bool = key(
        "bool", False, "control: permute each batch's targets across its trials (no information)"
    )

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the input channels."""
        names = tuple(f"stim{i + 1}" for i in range(self.n_stimuli))
        return (*names, "cue") if self.kind == "switch" else names

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the readout channels."""
        return tuple(f"out{i + 1}" for i in range(self.n_outputs))


@dataclass(frozen=True)
class Train:
    """[train]: the optimizer and the loss."""

    optimizer: str = key("str", "adam", "sgd or adam", OPTIMIZERS)
    lr: float = key("float", 5e-3, "learning rate", gt=0)
    epochs: int = key("int", 200, "optimizer steps; one epoch = one step on a fresh batch", ge=1)
    clip: float = key("float", 1.0, "per-seed gradient-norm clip (0: off)", ge=0)
    lambda_w: float = key("float", 0.0, "weight of ||J||_F^2 in the loss", ge=0)
    lambda_bal: float = key("float", 0.0, "weight of ||(1/N) 1^T J||^2 in the loss", ge=0)
    task_weight: float = key(
        "float",
        1.0,
        "weight of the MSE in the loss (control: 0 trains the regularisers alone)",
        ge=0,
    )
    fused: bool = key("bool", True, "fused BPTT (custom backward); false: plain autograd loop")


@dataclass(frozen=True)
class Record:
    """[record]: what the archive keeps."""

    every: int = key("int", 20, "snapshot every k epochs (epoch 0 and the last always kept)", ge=1)
    trajectories_every: int = key("int", 50, "store evaluation trajectories every k epochs", ge=1)
    n_eval_trials: int = key("int", 8, "fixed evaluation trials per seed", ge=1)
    store: str = key("str", "both", "which matrices to write: both, J or dJ", ("both", "J", "dJ"))
    compression: str = key("str", "none", "none or zlib (lossless)", ("none", "zlib"))
    significant_digits: int = key(
        "int", 0, "quantise floats to k significant digits (0: off)", ge=0
    )
    track_k: int = key("int", 4, "leading eigenvalues of J tracked every epoch")


@dataclass(frozen=True)
class Config:
    """A whole run's configuration. Build it with load_config (it validates)."""

    name: str = key("str", "default", "run name; the default archive is runs/<name>.nc")
    seeds: tuple[int, ...] = key(
        "seeds", (0, 1, 2, 3), "list of seed integers, or a count n meaning seeds 0..n-1"
    )
    device: str = key("str", "auto", "auto (CUDA when present), cpu or cuda", DEVICES)
    model: Model = section(Model)
    task: Task = section(Task)
    train: Train = section(Train)
    record: Record = section(Record)
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = field(
        default=(), metadata={"sweep": True, "doc": SWEEP_DOC}
    )

    def replace(self, **changes: Any) -> Config:
        """A copy with some top-level keys or whole sections replaced (not validated)."""
        return dataclasses.replace(self, **changes)


# -- the schema, as (section path, field) pairs in declaration order --------------------------
def _sections(cls: type = Config, path: str = "") -> list[tuple[str, type]]:
    out = [(path, cls)]
    for f in dataclasses.fields(cls):
        if f.metadata.get("section"):
            sub = f"{path}.{f.name}" if path else f.name
            out += _sections(f.default_factory, sub)  # a section defaults to its own class
    return out


def keys_of(cls: type) -> list[dataclasses.Field]:
    """The keys (not sub-sections, not [sweep]) of a section class, in declaration order."""
    fields = dataclasses.fields(cls)
    return [f for f in fields if not (f.metadata.get("section") or f.metadata.get(SWEEP))]


SECTIONS: dict[str, type] = dict(_sections())  # "" -> Config, "model" -> Model, ...


def dotted_keys() -> list[str]:
    """Every key of the schema as `section.key` (top-level keys bare)."""
    return [f"{s}.{f.name}" if s else f.name for s, cls in SECTIONS.items() for f in keys_of(cls)]


# -- loading -------------------------------------------------------------------------------------
def default_config() -> Config:
    """The embedded default config."""
    return Config()


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    grid: list[str] | None = None,
) -> Config:
    """Defaults, updated from a TOML file and `section.key=value` overrides, then validated.

    `grid` items (`section.key=v1,v2`) add keys to the [sweep] section or replace their values.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            user = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        _merge(raw, user, "")
    for item in overrides or []:
        _apply_override(raw, item)
    for item in grid or []:
        _apply_grid(raw, item)
    return build(raw)


def config_from_toml(text: str, source: str) -> Config:
    """A validated config from TOML text (an archive's stored `config`), `source` naming it."""
    raw: dict[str, Any] = {}
    try:
        _merge(raw, tomllib.loads(text), "")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} holds no valid TOML config: {exc}") from None
    return build(raw)


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """`cfg` with `section.key=value` overrides applied, validated again."""
    raw: dict[str, Any] = {}
    _merge(raw, tomllib.loads(to_toml(cfg, comments=False)), "")
    for item in overrides:
        _apply_override(raw, item)
    return build(raw)


def _merge(raw: dict[str, Any], user: dict[str, Any], prefix: str) -> None:
    for name, value in user.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if dotted == SWEEP:
            if not isinstance(value, dict):
                raise ConfigError(f'[{SWEEP}] must be a table of "section.key" = [values]')
            for key, values in flat_table(value, ""):
                _set_swept(raw, key, values)
        elif isinstance(value, dict):
            if dotted not in SECTIONS:
                hint = _suggest(dotted, [s for s in SECTIONS if s])
                tail = f"; did you mean [{hint}]?" if hint else ""
                raise ConfigError(f"unknown config section [{dotted}]{tail}")
            _merge(raw, value, dotted)
        else:
            _set(raw, dotted, value)


def flat_table(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested table's leaves as (dotted key, value); for [sweep], `"model.g" = [..]` and
    `model.g = [..]` (a nested table in TOML) both give ("model.g", [..])."""
    out = []
    for name, value in table.items():
        dotted = f"{prefix}.{name}" if prefix else name
        out += flat_table(value, dotted) if isinstance(value, dict) else [(dotted, value)]
    return out


def _set_swept(raw: dict[str, Any], dotted: str, values: Any) -> None:
    """Add a swept key to raw[SWEEP] (an ordered dict), replacing its values if already there."""
    if dotted not in dotted_keys():
        hint = _suggest_key(dotted)
        tail = f"; did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"unknown config key '{dotted}' in [{SWEEP}]{tail}")
    if dotted == "name":
        raise ConfigError("config key 'name' cannot be swept: each point is named after its values")
    if not isinstance(values, list) or not values:
        raise ConfigError(
            f"[{SWEEP}] key '{dotted}' must be a non-empty list of values, got {values!r}"
        )
    raw.setdefault(SWEEP, {})[dotted] = values


def split_grid(item: str) -> tuple[str, list[str]]:
    """`section.key=v1,v2` -> (key, ["v1", "v2"]); list values separated by `;`: `[1,2];[3]`."""
    key, sep, values = item.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ConfigError(f"--grid expects section.key=v1,v2,..., got '{item}'")
    split = values.split(";") if values.strip().startswith("[") else values.split(",")
    return key.strip(), [v.strip() for v in split if v.strip()]


def _apply_grid(raw: dict[str, Any], item: str) -> None:
    key, texts = split_grid(item)
    _set_swept(raw, key, [parse_value(text) for text in texts])


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    section_name, _, name = dotted.rpartition(".")
    cls = SECTIONS.get(section_name)
    if cls is None or name not in {f.name for f in keys_of(cls)}:
        hint = _suggest_key(dotted)
        tail = f"; did you mean '{hint}'?" if hint else ""
        raise ConfigError(f"unknown config key '{dotted}'{tail}")
    raw[dotted] = value


def _suggest(word: str, candidates: list[str]) -> str:
    """The closest candidate to a misspelled `word`, or '' when none is close."""
    found = difflib.get_close_matches(word, candidates, n=1)
    return found[0] if found else ""


def _suggest_key(dotted: str) -> str:
    """A schema key for an unknown one: the only key of that name in another section
    (`epochs` -> `train.epochs`), else the closest spelling (`model.gg` -> `model.g`), else ''."""
    keys = dotted_keys()
    name = dotted.rpartition(".")[2]
    same_name = [k for k in keys if k.rpartition(".")[2] == name]
    return same_name[0] if len(same_name) == 1 else _suggest(dotted, keys)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    dotted, sep, text = item.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise ConfigError(f"--set expects section.key=value, got '{item}'")
    _set(raw, dotted, parse_value(text))


def parse_value(text: str) -> Any:
    """A command-line value: TOML (`1.5`, `[1, 2]`, `'J'`), else a bare word as a string."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()  # bare words (phi=relu) are strings


def build(raw: dict[str, Any]) -> Config:
    """A validated Config from {dotted key: value} (absent keys take their defaults; the
    swept keys under raw["sweep"], each value checked like the key's own)."""
    cfg = _build_section(Config, "", raw)
    _check_cross(cfg)
    return cfg


def _check_sweep(table: dict[str, list[Any]]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Each swept value checked (and normalised) as its key's value; no value twice."""
    out = []
    for dotted, values in table.items():
        section_name, _, name = dotted.rpartition(".")
        meta = SECTIONS[section_name].__dataclass_fields__[name].metadata
        checked = tuple(_check(dotted, meta, value) for value in values)
        for i, value in enumerate(checked):
            if value in checked[:i]:
                raise ConfigError(f"[{SWEEP}] key '{dotted}' repeats the value {toml_value(value)}")
        out.append((dotted, checked))
    return tuple(out)


def _build_section(cls: type, path: str, raw: dict[str, Any]) -> Any:
    values = {}
    for f in dataclasses.fields(cls):
        dotted = f"{path}.{f.name}" if path else f.name
        if f.metadata.get("section"):
            values[f.name] = _build_section(SECTIONS[dotted], dotted, raw)
        elif f.metadata.get(SWEEP):
            values[f.name] = _check_sweep(raw.get(SWEEP, {}))
        elif dotted in raw:
            values[f.name] = _check(dotted, f.metadata, raw[dotted])
    return cls(**values)


def _check(dotted: str, meta: Any, value: Any) -> Any:
    """A TOML value checked against its key's kind, choices and bound; normalised."""
    kind = meta["kind"]
    bad = ConfigError(f"config key '{dotted}' must be {KINDS[kind]}, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"config key '{dotted}' must be a finite number, got {value}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise bad
    elif kind == "str":
        if not isinstance(value, str):
            raise bad
    elif kind == "strlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
        value = tuple(value)
    elif kind == "seeds":
        value = _seeds(value, bad)
    for item in value if isinstance(value, tuple) else (value,):
        if meta["choices"] and item not in meta["choices"]:
            raise ConfigError(
                f"config key '{dotted}' has unknown value {item!r}; "
                f"choose from {', '.join(meta['choices'])}"
            )
    if meta["ge"] is not None and value < meta["ge"]:
        raise ConfigError(f"config key '{dotted}' must be >= {meta['ge']:g}, got {value}")
    if meta["gt"] is not None and value <= meta["gt"]:
        raise ConfigError(f"config key '{dotted}' must be > {meta['gt']:g}, got {value}")
    return value


def _seeds(value: Any, bad: ConfigError) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"config key 'seeds' must be a positive count, got {value}")
        return tuple(range(value))
    ints = isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )
    if ints:
        if not value:
            raise ConfigError("config key 'seeds' is empty: give a list of seeds or a count")
        if len(set(value)) != len(value) or min(value) < 0:
            raise ConfigError(f"config key 'seeds' must be distinct non-negative ints: {value}")
        return tuple(value)
    raise bad


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_cross(cfg: Config) -> None:
    """Rules that involve more than one key, or a set of allowed values."""
    model, task, record = cfg.model, cfg.task, cfg.record
    _require(bool(cfg.name) and "/" not in cfg.name, "config key 'name' must be a plain name")
    _require(
        model.dt < model.tau,
        f"config key 'model.dt' ({model.dt}) must be smaller than model.tau ({model.tau})",
    )
    _require(bool(model.train), "config key 'model.train' is empty: train at least one of J, w, B")
    _require(len(set(model.train)) == len(model.train), "config key 'model.train' repeats a name")
    overlap = model.lowrank.overlap
    _require(
        -1 <= overlap <= 1, f"config key 'model.lowrank.overlap' must be in [-1, 1]: {overlap}"
    )
    _require(task.n_stimuli in (1, 2), "config key 'task.n_stimuli' must be 1 or 2")
    _require(task.n_outputs in (1, 2), "config key 'task.n_outputs' must be 1 or 2")
    if task.kind == "switch":
        _require(task.n_stimuli == 2, "task.kind 'switch' needs task.n_stimuli = 2")
        _require(task.n_outputs == 1, "task.kind 'switch' has one readout: task.n_outputs = 1")
    else:
        _require(
            task.n_outputs <= task.n_stimuli,
            "config key 'task.n_outputs' must not exceed task.n_stimuli (one target per stimulus)",
        )
    _require(-1 < task.correlation < 1, "config key 'task.correlation' must be in (-1, 1)")
    _require(
        task.washout < task.duration,
        "config key 'task.washout' must be shorter than task.duration",
    )
    _require(n_steps(cfg) >= 1, "task.duration is shorter than one model.dt step")
    _require(1 <= record.track_k <= model.N, "config key 'record.track_k' must be in [1, model.N]")


# -- sweeps ---------------------------------------------------------------------------------------
Point = tuple[tuple[str, Any], ...]  # one grid point: ((dotted key, value), ...) in [sweep] order


def sweep_points(cfg: Config) -> list[Point]:
    """Every point of the [sweep] grid (the product of its values, first key slowest); a config
    without a sweep has one point, ()."""
    keys = [key for key, _ in cfg.sweep]
    combos = itertools.product(*(values for _, values in cfg.sweep))
    return [tuple(zip(keys, combo, strict=True)) for combo in combos]


def point_config(cfg: Config, point: Point, name: str | None = None) -> Config:
    """The run config of one grid point: `cfg` without its [sweep], the point's values set and
    (optionally) renamed; cross-key rules checked again, the message naming the point."""
    out = cfg.replace(sweep=())
    for dotted, value in point:
        out = _replace_dotted(out, dotted.split("."), value)
    if name is not None:
        out = out.replace(name=name)
    try:
        _check_cross(out)
    except ConfigError as exc:
        where = " ".join(f"{k}={toml_value(v)}" for k, v in point)
        raise ConfigError(f"sweep point {where}: {exc}") from None
    return out


def get_dotted(cfg: Config, dotted: str) -> Any:
    """The value (or section) at a dotted key: "model.g", "model.lowrank"; "" is `cfg`."""
    node: Any = cfg
    for part in dotted.split(".") if dotted else []:
        node = getattr(node, part)
    return node


def _replace_dotted(node: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return dataclasses.replace(node, **{parts[0]: value})
    child = _replace_dotted(getattr(node, parts[0]), parts[1:], value)
    return dataclasses.replace(node, **{parts[0]: child})


# -- rendering -----------------------------------------------------------------------------------
def to_toml(cfg: Config, comments: bool = True) -> str:
    """Render a config as TOML, each key preceded by its documentation."""
    lines: list[str] = []
    for path, cls in SECTIONS.items():
        node = get_dotted(cfg, path)
        if path:
            lines.append("")
            lines.append(f"[{path}]")
        for f in keys_of(cls):
            if comments:
                lines.append(f"# {f.metadata['doc']}")
            lines.append(f"{f.name} = {toml_value(getattr(node, f.name))}")
    if cfg.sweep:  # only when there is one: a run's config has none
        lines += ["", f"[{SWEEP}]"] + ([f"# {SWEEP_DOC}"] if comments else [])
        lines += [f"{toml_value(key)} = {toml_value(values)}" for key, values in cfg.sweep]
    return "\n".join(lines).lstrip("\n") + "\n"


def toml_value(value: Any) -> str:
    """A value as TOML (strings quoted, tuples as arrays, floats with repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def as_dict(cfg: Config) -> dict[str, Any]:
    """The config as nested plain dicts and lists (what TOML would give)."""
    return tomllib.loads(to_toml(cfg, comments=False))


# -- derived quantities ----------------------------------------------------------------------------
def snapshot_epochs(epochs: int, every: int) -> list[int]:
    """A record schedule: 0, every, 2*every, ... and always the last epoch."""
    return sorted(set(range(0, epochs + 1, every)) | {epochs})


def n_steps(cfg: Config) -> int:
    """Number of Euler steps in one trial."""
    return round(cfg.task.duration / cfg.model.dt)


def washout_steps(cfg: Config) -> int:
    """Number of initial steps excluded from the MSE."""
    return round(cfg.task.washout / cfg.model.dt)
