"""The gallery's commands: ``neuronscope microscope`` (build) and ``neuronscope serve``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..dictionaries import DictionaryConfig
from ..gallery.config import DEFAULT_STEPS, DEFAULT_UNITS, GalleryConfig
from ..interpretability import ScoreConfig
from ..models import DEFAULT_MODEL
from .common import MODEL_HELP, load_model, model_options

DEFAULT_OUT = "gallery"
ENGINES = ("local", "ray")


def add_commands(commands) -> None:
    """Add ``microscope`` and ``serve`` to the CLI's subcommands."""
    micro = commands.add_parser(
        "microscope", help="build (or extend, or resume) a browsable static gallery of a model's units",
        description="Render feature visualizations, dataset examples, weights and photo pages into a static "
                    "site. Re-running resumes where a build stopped and reuses everything done.")
    micro.add_argument("models", nargs="*", default=[DEFAULT_MODEL], metavar="MODEL",
                       help=f"{MODEL_HELP} (default {DEFAULT_MODEL}); several: each gets its gallery, and pages compare them")
    model_options(micro)
    micro.add_argument("--layers", default=None, help="comma-separated layers (default: the last layer of each of the 6 deepest stages)")
    count = micro.add_mutually_exclusive_group()
    count.add_argument("--units", type=int, default=DEFAULT_UNITS, help=f"the first N channels of each layer (default {DEFAULT_UNITS})")
    count.add_argument("--all", action="store_true", help="every channel of the chosen layers, reusing what is done")
    micro.add_argument("--source", default=None, help="images for dataset examples: a folder, or a .txt list of files (default: crops of the bundled photos)")
    micro.add_argument("--classes", default=None,
                       help="comma-separated classes (names or indices) that get a page under logits, with how other "
                            "models classify their pictures (default: none)")
    micro.add_argument("--mechanics", action="store_true",
                       help="also each unit's decomposed feature visualization from the layer before, and layer pages "
                            "sorted by how polysemantic units look (adds about 0.8x the rendering time)")
    micro.add_argument("--atlas", action="store_true", help="also an activation atlas page per layer")
    micro.add_argument("--features", action="store_true",
                       help="also a dictionary of features (TopK sparse autoencoder) at each layer: a features section "
                            "after it, its most frequent features shown like units, neurons and features cross-listed")
    micro.add_argument("--scores", action="store_true",
                       help="also score every channel of each layer (two-choice interpretability score, uncalibrated: "
                            "0.5 = chance), beside random directions of the layer as the baseline: verdicts on unit "
                            "pages, layer pages sortable by score, means per layer on the model page")
    micro.add_argument("--photos", default=None, help="comma-separated photos (bundled names, files or source keys) that get a page; \"all\" for every one, \"\" for none")
    micro.add_argument("--samples", type=int, default=GalleryConfig.samples, help=f"feature visualizations per unit (default {GalleryConfig.samples})")
    micro.add_argument("--examples", type=int, default=GalleryConfig.examples, help=f"dataset examples per unit (default {GalleryConfig.examples})")
    micro.add_argument("--steps", type=int, default=None, help=f"optimization steps per feature visualization (default {DEFAULT_STEPS})")
    micro.add_argument("-o", "--out", default=DEFAULT_OUT, help=f"output folder (default ./{DEFAULT_OUT})")
    micro.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    scale = micro.add_argument_group("scale-out (docs/scale.md)")
    scale.add_argument("--engine", choices=ENGINES, default="local",
                       help="local: this process (default); ray: a Ray cluster (pip install 'neuronscope[ray]')")
    scale.add_argument("--address", default=None,
                       help="with --engine ray: a running cluster ('auto', 'HOST:6379', 'ray://HOST:10001'); default: start a local one")
    scale.add_argument("--workers", type=int, default=None,
                       help="with --engine ray: model workers at once (default: as many as the cluster's CPUs/GPUs allow)")
    micro.set_defaults(run=_microscope)

    serve = commands.add_parser("serve", help="serve a built gallery on 127.0.0.1")
    serve.add_argument("folder", nargs="?", default=DEFAULT_OUT, metavar="DIR", help=f"the gallery folder (default ./{DEFAULT_OUT})")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.set_defaults(run=_serve)


def _microscope(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from ..gallery.build import build_galleries

    config = GalleryConfig(
        layers=_names(args.layers), units=None if args.all else args.units,
        source=args.source, photos=_names(args.photos), samples=args.samples, examples=args.examples,
        classes=_names(args.classes) or (), mechanics=args.mechanics, atlas=args.atlas,
        features=DictionaryConfig() if args.features else None,
        scores=ScoreConfig(progress=not args.no_progress) if args.scores else None, progress=not args.no_progress)
    if args.steps is not None:
        config = replace(config, render=replace(config.render, steps=args.steps))
    models = [load_model(args, source=name) for name in args.models]
    with _engine(args) as engine:
        _report(build_galleries(models, config, args.out, engine), args.out)


def _report(summaries: list, out: str) -> None:
    for summary in summaries:
        print(f"{summary.folder}: {summary.rendered} units rendered, {summary.reused} reused, "
              f"{summary.photos} photo pages, {summary.pages} pages written")
    if summaries[0].skipped_images:
        skipped = summaries[0].skipped_images
        print(f"skipped {len(skipped)} unreadable images, e.g. {skipped[0][0]}: {skipped[0][1]}")
    print(f"open {Path(out) / 'index.html'}, or run: neuronscope serve {out}")


def _engine(args: argparse.Namespace):
    """The build's engine, as a context manager (a local Ray cluster stops when the build does)."""
    from contextlib import nullcontext

    from ..errors import NeuronscopeError
    from ..gallery.engine import LocalEngine

    if args.engine == "local":
        if args.address is not None or args.workers is not None:
            raise NeuronscopeError("--address and --workers go with --engine ray")
        return nullcontext(LocalEngine())
    if args.workers is not None and args.workers < 1:
        raise NeuronscopeError(f"--workers must be at least 1, got {args.workers}")
    from ..scale.ray_engine import RayConfig, RayEngine

    return RayEngine(RayConfig(address=args.address, workers=args.workers))


def _serve(args: argparse.Namespace) -> None:
    from ..gallery.serve import make_server

    server = make_server(args.folder, args.port, quiet=False)
    host, port = server.server_address[:2]
    print(f"serving {args.folder} at http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _names(text: str | None) -> tuple[str, ...] | None:
    """Comma-separated names; None when the option was not given, () when given empty."""
    return None if text is None else tuple(name.strip() for name in text.split(",") if name.strip())
