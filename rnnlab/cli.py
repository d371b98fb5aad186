"""Command line: `rnnlab run`, `rnnlab sweep`, `rnnlab info`, `rnnlab analyze`.

Every user error (bad config value, missing or foreign file, unusable device) ends with one line
`rnnlab: error: ...` and exit status 2, before any output file is touched.
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import shlex
import signal
import sys
from pathlib import Path

from rnnlab.errors import RnnlabError, RunStopped, SweepFailed

# rnnlab.analysis.inloop.DEFAULT_TRIALS (not imported here: parsing stays light; a test checks)
FRESH_TRIALS = 400

EXIT_USAGE = 2
EXIT_SIGPIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader has gone


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The config file and `--set` overrides, shared by `run` and `sweep`."""
    parser.add_argument("config", nargs="?", help="TOML config file (default: embedded default)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab",
        description="Train rate RNNs on OU tasks and ask whether learning adds low-rank structure.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train (the embedded default config when none is given)")
    add_config_arguments(run)
    run.add_argument("-o", "--output", help="archive path (default: runs/<name>.nc)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing archive (or discard an unfinished run's .partial)",
    )
    run.add_argument(
        "--resume",
        metavar="PATH",
        help="continue the unfinished run of PATH (the archive or its .partial) from its last "
        "checkpoint, with the config stored in it",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--print-config",
        action="store_true",
        help="print the full resolved config as commented TOML and exit",
    )

    sweep = sub.add_parser(
        "sweep",
        help="one run per point of the config's [sweep] grid (and --grid), on a dask cluster; "
        "a rerun skips complete archives and resumes unfinished ones",
    )
    add_config_arguments(sweep)
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2",
        help="values of one key, added to the [sweep] section or replacing its values there "
        "(repeatable: the runs are the product)",
    )
    sweep.add_argument("-o", "--output", default="runs/sweep", help="directory of archives")
    sweep.add_argument(
        "--scheduler",
        default="local",
        help="local (LocalCluster of one-thread processes), slurm (dask-jobqueue), or a "
        "scheduler address tcp://HOST:PORT",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        help="workers of a local/SLURM cluster (default 2; a local cluster with --resources GPU=1:"
        " one per visible GPU)",
    )
    sweep.add_argument(
        "--resources",
        metavar="NAME=AMOUNT,...",
        help="dask worker resources each point needs, e.g. GPU=1 (local workers offer the same "
        "and each sees one GPU; on SLURM the workers are started with them)",
    )
    sweep.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dask_jobqueue.SLURMCluster argument (repeatable; TOML values: cores=1, "
        "memory='4GB', walltime='02:00:00', job_extra_directives=['--gres=gpu:1'])",
    )
    sweep.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing archives (default: skip complete ones, resume unfinished ones)",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved base config with its [sweep] section and exit",
    )

    info = sub.add_parser(
        "info",
        help="dims, variables, config summary and final losses (a directory: one line each)",
    )
    info.add_argument("archive", help="an archive, or a directory of archives")
    info.add_argument(
        "--trials",
        type=int,
        default=FRESH_TRIALS,
        help="fresh trials per seed on which a file's last snapshot is re-simulated (MSE ± SE)",
    )
    info.add_argument(
        "--no-eval", action="store_true", help="skip the re-simulation on fresh trials"
    )

    analyze = sub.add_parser("analyze", help="lazy analyses over archives and an HTML report")
    analyze.add_argument("archives", nargs="+", help="archive files or directories of archives")
    analyze.add_argument("-o", "--output", default="report", help="output directory")
    analyze.add_argument("--rank", type=int, default=2, help="rank R of the low-rank fit")
    analyze.add_argument("--clusters", type=int, default=2, help="k of the k-means clustering")
    analyze.add_argument(
        "--scheduler",
        default="threads",
        help="threads, processes, local (LocalCluster), slurm, or an address",
    )
    analyze.add_argument("--no-png", action="store_true", help="skip the PNG figures")
    analyze.add_argument(
        "--no-network",
        action="store_true",
        help="skip the analyses that re-simulate the networks (fresh-trial MSE, functional "
        "rank, shuffle control, fixed points)",
    )
    analyze.add_argument(
        "--trials",
        type=int,
        default=FRESH_TRIALS,
        help="fresh trials per seed for the re-simulations (evaluate, functional rank, shuffle)",
    )
    analyze.add_argument(
        "--overwrite", action="store_true", help="replace files in an existing output directory"
    )
    analyze.add_argument("--quiet", action="store_true", help="no progress bar")
    analyze.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="also read unfinished (.partial or killed) archives, up to their committed records",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rnnlab` command."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # runs replace it with a graceful stop
    try:
        status = dispatch(args, argv)
        # The interpreter's last garbage collection walks every object torch, numba and xarray
        # made: about 1 s after a run (measured: a 2-epoch run 2.9 -> 2.1 s). Nothing is left to
        # collect that matters at exit, so those objects are frozen out of it.
        gc.freeze()
        sys.stdout.flush()  # a reader that has gone (`| head`) shows here, not at exit
        return status
    except SweepFailed as exc:  # the points that failed were listed as they failed
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return 1
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FloatingPointError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        if not stdout_gone():
            raise  # a socket or a child's pipe, not our reader: a real error
        return quiet_broken_pipe()
    except RunStopped as stop:
        print(f"rnnlab: {stop}", file=sys.stderr)
        return 128 + int(stop.signum)
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("rnnlab: terminated", file=sys.stderr)
        return 143


class Terminated(BaseException):  # noqa: N818 (like KeyboardInterrupt)
    """SIGTERM outside training: end with one line and exit status 143, not silently."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the chosen subcommand; its exit status."""
    if args.command == "run":
        return cmd_run(args, argv)
    if args.command == "sweep":
        return cmd_sweep(args, argv)
    if args.command == "info":
        return cmd_info(args)
    return cmd_analyze(args)


def stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`rnnlab info x.nc | head -1`)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll, or no real stdout: assume ours
        return True


def quiet_broken_pipe() -> int:
    """End quietly like a program killed by SIGPIPE. Python's recipe: point stdout at devnull,
    so that the flush at interpreter exit cannot raise BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_SIGPIPE


def command_line(argv: list[str]) -> str:
    """The invocation as a shell line, stored in each archive's `command` attribute."""
    return "rnnlab " + " ".join(shlex.quote(a) for a in argv)


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from rnnlab.config import load_config, to_toml

    if args.resume is not None:
        if args.config is not None or args.overrides or args.output or args.print_config:
            raise RnnlabError(
                "--resume takes the config and path stored in the unfinished run; "
                "drop the config file, --set, -o and --print-config"
            )
        from rnnlab.training.preflight import preflight_resume

        preflight_resume(args.resume)  # refused here before torch is even imported
        from rnnlab.training.run import resume

        path = resume(args.resume, progress=not args.quiet)
        if not args.quiet:
            print(f"wrote {path}")
        return 0
    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(to_toml(cfg), end="")
        return 0
    from rnnlab.training.preflight import preflight

    # refused here before torch is even imported (a [sweep] config included)
    preflight(cfg, args.output, args.overwrite, source=args.config)
    from rnnlab.training.run import run

    path = run(
        cfg,
        args.output,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=command_line(argv),
    )
    if not args.quiet:
        print(f"wrote {path}")
    return 0


def cmd_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    if args.print_config:
        from rnnlab.config import load_config, to_toml

        print(to_toml(load_config(args.config, args.overrides, args.grid)), end="")
        return 0
    resources = parse_resources(args.resources) if args.resources else None
    workers = args.workers  # None: runtime.make_client's default (2, or one per GPU share)
    if workers is not None and workers < 1:
        raise RnnlabError(f"--workers must be >= 1, got {workers}")
    options = parse_options(args.slurm, "--slurm")
    if options and args.scheduler != "slurm":
        raise RnnlabError("--slurm options need --scheduler slurm")
    from rnnlab.training.sweep import sweep

    paths = sweep(
        args.config,
        args.overrides,
        args.grid,
        args.output,
        scheduler=args.scheduler,
        n_workers=workers,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=command_line(argv),
        resources=resources,
        cluster_options=options,
    )
    if not args.quiet:
        print(f"wrote {len(paths)} archives to {args.output}")
    return 0


def parse_resources(text: str) -> dict[str, float]:
    """`GPU=1,MEM=2` -> {"GPU": 1.0, "MEM": 2.0}; one line on a bad item."""
    out = {}
    for item in text.split(","):
        name, sep, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = float("nan")
        if not sep or not name.strip() or not value > 0:
            raise RnnlabError(f"--resources expects NAME=AMOUNT,... (amount > 0), got '{text}'")
        out[name.strip()] = value
    return out


def parse_options(items: list[str], flag: str) -> dict[str, object]:
    """`key=value` items (TOML values, bare words as strings) as keyword arguments."""
    from rnnlab.config import parse_value

    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise RnnlabError(f"{flag} expects KEY=VALUE, got '{item}'")
        value = parse_value(text)
        plain = isinstance(value, str | int | float | bool | list)
        out[key.strip()] = value if plain else text.strip()  # 02:00:00 stays text, not a time
    return out


def cmd_info(args: argparse.Namespace) -> int:
    from rnnlab.data.info import describe, describe_dir

    path = Path(args.archive)
    if not path.is_dir():
        fresh = None
        if not args.no_eval:
            if args.trials < 2:
                raise RnnlabError(f"--trials must be >= 2, got {args.trials}")
            from rnnlab.data.files import check_archive

            check_archive(path, allow_incomplete=True)  # a foreign file: one line, no imports
            from rnnlab.analysis.inloop import evaluate_file

            fresh = evaluate_file(path, args.trials)
        print(describe(path, fresh))
        return 0
    for line in describe_dir(path):
        print(line, flush=True)  # one line per archive as it is read
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from rnnlab.data.files import archive_paths, check_archive
    from rnnlab.data.paths import check_report_dir

    if args.rank < 1:
        raise RnnlabError(f"--rank must be >= 1, got {args.rank}")
    if args.clusters < 1:
        raise RnnlabError(f"--clusters must be >= 1, got {args.clusters}")
    for path in archive_paths(args.archives):  # before xarray, dask or the plotting libraries
        check_archive(path, args.allow_incomplete)
    check_report_dir(Path(args.output), args.overwrite)
    from rnnlab.analysis.report.command import analyze_archives

    written = analyze_archives(
        args.archives,
        args.output,
        rank=args.rank,
        clusters=args.clusters,
        scheduler=args.scheduler,
        png=not args.no_png,
        network=not args.no_network,
        n_trials=args.trials,
        overwrite=args.overwrite,
        progress=not args.quiet,
        allow_incomplete=args.allow_incomplete,
    )
    if not args.quiet:
        for path in written.values():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
