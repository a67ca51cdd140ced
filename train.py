"""Train a Vision Transformer on MNIST or Fashion-MNIST and write a model folder the app can show.

    python train.py                    # the accurate default  -> weights/mnist
    python train.py --preset tiny      # the notebook's model  -> weights/mnist-tiny
    python train.py --preset fast --budget 3m   # a quick model: 7 strips of 4 rows, 3 minutes -> weights/mnist-fast
    python train.py --push --repo-id you/vit-mnist       # train, then push the model folder to the Hub
    python train.py --push-only weights/mnist --repo-id you/vit-mnist   # push a folder, no training

Every option, its default and the measured time and accuracy of each preset: `python train.py --help`.
"""

import argparse
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from vit.bundle import ONNX, WEIGHTS_ROOT, load_folder, read_dataset, read_evaluation, read_model, write_onnx
from vit.data import DATA_DIR_VARIABLE, DataError, carve_validation, load_split
from vit.datasets import DATASETS
from vit.evaluate import TrainingFacts, write_model_folder
from vit.hub import REPO_ID, PushError, check_push_access, push_folder
from vit.model import ViT
from vit.optimiser import read_checkpoint_state
from vit.pictures import plural
from vit.recipe import PRESETS, Recipe
from vit.tiling import CUTS, cut_words
from vit import distributed, faithfulness, outliers, pacing
from vit.training import Interrupted, train

PRESET_FOLDERS = {"default": "mnist", "fast": "mnist-fast", "tiny": "mnist-tiny"}  # each preset's shipped model
EPILOG = """Options left unset take the preset's value. Checkpoints go to checkpoints/NAME.safetensors each epoch.

more than one process (docs/training.md): torchrun --standalone --nproc-per-node N train.py ... trains with
  DistributedDataParallel, each process on its share of every batch, rank 0 alone writing; --resume works
  the same way; --budget is refused there (give --epochs).

pushing to the Hugging Face Hub:
  --push uploads the model folder as written (model.safetensors, config.json, the README.md model card with
  its model-index results, evaluation.json, evaluation.safetensors, model.onnx) after training; --push-only
  first writes model.onnx into a folder written before it existed. The token comes from
  $HF_TOKEN or `hf auth login` and is never printed; it, the repo and write access are checked (and the
  repo and branch created) before training starts, so a bad token fails in seconds. The app names a pushed
  repo by its name without "vit-": you/vit-mnist is shown as "mnist"."""

RECIPE_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "rotate", "shift", "scale",
                  "thickness", "elastic", "flip", "flag_ones", "coarse", "erase", "outliers")
ARCHITECTURE_OPTIONS = ("cut", "tile_size", "num_layers", "num_heads", "embed_size", "mlp_size", "dropout")
HUB_OPTIONS = {"--push": 0, "--private": 0, "--repo-id": 1, "--revision": 1}  # option -> values it takes


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text}")
    return value


def whole_number(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, not {text}")
    return value


def duration(text: str) -> float:
    try:
        return pacing.parse_budget(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def presets_text() -> str:
    """Each preset and what its shipped model measured, read from the model folders (the figures cannot drift)."""
    lines = ["presets (each one's shipped model, as its folder in weights/ records it):"]
    for preset, folder in PRESET_FOLDERS.items():
        architecture, recipe = PRESETS[preset]
        shape = (f"{cut_words(architecture.get('cut', 'tiles'), architecture['tile_size'])}, "
                 f"embedding {architecture['embed_size']}, "
                 f"{plural(architecture['num_layers'], 'block')}, {plural(architecture['num_heads'], 'head')}")
        try:
            evaluation = read_evaluation(WEIGHTS_ROOT / folder)
        except ValueError:  # a checkout without that folder still gets --help
            lines.append(f"  {preset:8} {shape}, {recipe.epochs} epochs")
            continue
        lines.append(f"  {preset:8} {shape}: {evaluation.accuracy * 100:.2f} %\n{'':11}after "
                     f"{len(evaluation.history)} epochs, {(evaluation.run_seconds or 0) / 60:.0f} min on "
                     f"{evaluation.device} (weights/{folder})")
    return "\n".join(lines) + "\n"


class Parser(argparse.ArgumentParser):
    """Its help ends with each preset's measured figures, read from the model folders only when help is shown."""

    def format_help(self) -> str:
        self.epilog = presets_text() + EPILOG
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """Every option, grouped as --help shows them (the one function over 60 lines: one line per option)."""
    parser = Parser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=sorted(DATASETS), default="mnist", help="what to learn (default: mnist)")
    data.add_argument("--data-dir", type=Path, default=None,
                      help=f"folder holding the IDX .gz files (default: ${DATA_DIR_VARIABLE}, else download into the cache)")
    model = parser.add_argument_group("model (unset: the preset's value)")
    model.add_argument("--preset", choices=sorted(PRESETS), default="default", help="architecture and recipe (default: default)")
    model.add_argument("--cut", choices=list(CUTS),
                       help="what a word is: square tiles, or strips of --tile-size rows or columns (default: the "
                       "preset's; tiles where it names none)")
    model.add_argument("--tile-size", type=positive_int, help="side of each square tile, or each strip's width; must "
                       "divide 28")
    model.add_argument("--num-layers", type=positive_int, help="transformer blocks")
    model.add_argument("--num-heads", type=positive_int, help="attention heads per block")
    model.add_argument("--embed-size", type=positive_int, help="token width; a multiple of --num-heads")
    model.add_argument("--mlp-size", type=positive_int, help="hidden width of each block's MLP")
    model.add_argument("--dropout", type=share, help="share of activations dropped at random while training")
    model.add_argument("--start-from", type=Path, metavar="FOLDER", help="fine-tune: begin from a model folder's "
                       "architecture and weights (no architecture options), e.g. to add --outliers")
    model.add_argument("--pos-embedding", choices=["learned", "sinusoidal", "none"], default="learned",
                       help="positional embedding (default: learned)")
    recipe = parser.add_argument_group("recipe (unset: the preset's value)")
    recipe.add_argument("--epochs", type=positive_int,
                        help="passes over the 55,000 training images (5,000 more are kept back for validation)")
    recipe.add_argument("--batch-size", type=positive_int, help="images per optimiser step")
    recipe.add_argument("--lr", type=positive_float, help="peak learning rate")
    recipe.add_argument("--weight-decay", type=float, help="AdamW weight decay on matrices")
    recipe.add_argument("--label-smoothing", type=share, help="share of each target spread over the other classes")
    recipe.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    recipe.add_argument("--rotate", type=non_negative, help="augmentation: random rotation up to this many degrees")
    recipe.add_argument("--shift", type=non_negative, help="augmentation: random shift up to this many pixels")
    recipe.add_argument("--scale", type=share, help="augmentation: random zoom in or out by up to this share")
    recipe.add_argument("--thickness", type=non_negative,
                        help="augmentation: strokes thickened or thinned by up to this share of a pixel (digits)")
    recipe.add_argument("--elastic", type=non_negative, help="augmentation: elastic distortion up to this many pixels")
    recipe.add_argument("--flip", type=share, help="augmentation: chance of a left-right mirror image (garments, "
                        "not digits)")
    recipe.add_argument("--outliers", type=non_negative, help="outlier exposure: weight of the loss that pushes the "
                        "answer on generated non-digits (vit.outliers; for Fashion-MNIST non-garments, MNIST's digits "
                        "among them) toward uniform; 0.5 in the shipped models")
    recipe.add_argument("--flag-ones", type=share, help="augmentation: chance a training 1 gets a flag at its top, "
                        "as many writers outside the US draw it (digits only)")
    recipe.add_argument("--coarse", type=share, help="augmentation: chance an image is seen as a coarse scan "
                        "shows it: averaged down to 10-16 pixels a side and smoothed back up")
    recipe.add_argument("--erase", type=share, help="augmentation: chance a random rectangle (2-40 %% of the picture) "
                        "is replaced by noise, random erasing (Zhong et al. 2020)")
    run = parser.add_argument_group("run")
    run.add_argument("--threads", type=positive_int, default=None,
                     help="CPU threads (default: a few steps are timed on 1 and on 2 threads and the faster is kept: "
                          "on 2 shared cores one thread is often faster, on an idle machine two)")
    run.add_argument("--budget", type=duration, metavar="TIME",
                     help="train for this long, evaluation included, e.g. 3m, 90s or 1.5h: the number of epochs (and "
                          "with it the learning-rate schedule) is sized from the speed measured in the first steps; "
                          "replaces --epochs")
    run.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                     help="auto picks cuda, then mps, then cpu; cuda trains in bfloat16 mixed precision")
    run.add_argument("--name", help="model name (default: the --output folder's name, else DATASET, or DATASET-PRESET "
                     "for other presets)")
    run.add_argument("--output", type=Path, help="model folder to write (default: weights/NAME)")
    run.add_argument("--resume", nargs="?", const="auto", metavar="CHECKPOINT",
                     help="continue from a checkpoint (default path: checkpoints/NAME.safetensors)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars (epoch lines still print)")
    run.add_argument("--faithfulness", type=whole_number, default=None, metavar="N",
                     help=f"test images for the explanations' scoreboard in evaluation.json (default: "
                          f"{faithfulness.COUNT}, or 0 with --budget, which it would not fit; 0 leaves it out; "
                          f"python -m vit.evaluate --faithfulness adds it later)")
    hub = parser.add_argument_group("Hugging Face Hub (token: $HF_TOKEN or `hf auth login`)")
    hub.add_argument("--push", action="store_true",
                     help="after training, push the model folder to --repo-id (checked before training starts)")
    hub.add_argument("--push-only", type=Path, metavar="FOLDER",
                     help="push an already written model folder, e.g. weights/mnist, without training")
    hub.add_argument("--repo-id", metavar="OWNER/NAME",
                     help="model repo to push to, e.g. you/vit-mnist; created if needed")
    hub.add_argument("--private", action="store_true",
                     help="create the repo private (an existing public repo is refused)")
    hub.add_argument("--revision", metavar="BRANCH",
                     help="push to this branch, created from main if needed (default: main)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked against each other, with the name, output folder and checkpoint filled in."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_combinations(parser, args)
    if args.faithfulness is None:
        args.faithfulness = 0 if args.budget else faithfulness.COUNT
    # An --output folder names the run too, so its checkpoint never overwrites another run's.
    default_name = args.dataset if args.preset == "default" else f"{args.dataset}-{args.preset}"
    args.name = args.name or (args.output.name if args.output else default_name)
    args.output = args.output or Path("weights") / args.name
    args.checkpoint = Path("checkpoints") / f"{args.name}.safetensors" if args.resume in (None, "auto") else Path(args.resume)
    args.parser = parser
    return args


def check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors that no single option's type can catch (exit status 2, before any work)."""
    pushing = args.push or args.push_only is not None
    if args.push and args.push_only is not None:
        parser.error("choose one: --push (train, then push) or --push-only FOLDER (push, no training)")
    if pushing and not args.repo_id:
        parser.error("--push and --push-only need --repo-id OWNER/NAME")
    if not pushing and (args.repo_id or args.private or args.revision):
        parser.error("--repo-id, --private and --revision only apply with --push or --push-only")
    if args.repo_id and not REPO_ID.fullmatch(args.repo_id):
        parser.error(f"--repo-id {args.repo_id!r} is not OWNER/NAME (give a branch with --revision)")
    if args.embed_size and args.num_heads and args.embed_size % args.num_heads:
        parser.error(f"--embed-size {args.embed_size} is not a multiple of --num-heads {args.num_heads}")
    if args.tile_size and 28 % args.tile_size:
        parser.error(f"--tile-size {args.tile_size} does not divide 28; choose one of 1, 2, 4, 7, 14, 28")
    unfit = DATASETS[args.dataset].check_recipe({key: getattr(args, key) for key in RECIPE_OPTIONS})
    if unfit:
        parser.error(f"--{unfit.replace('_', '-')}")
    if args.budget and args.epochs:
        parser.error("choose one: --budget (the epochs that fit in that time) or --epochs")
    missing = {"cuda": not torch.cuda.is_available(), "mps": not torch.backends.mps.is_available()}
    if missing.get(args.device):
        parser.error(f"--device {args.device}: this machine has no such device (--device cpu, or auto)")
    if args.budget and distributed.launched():
        parser.error("--budget times one process; under torchrun give --epochs")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return torch.device(name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    if args.push_only is not None:
        return push_only(args)
    started = time.perf_counter()  # a --budget counts from here
    team = distributed.join(pick_device(args.device))
    try:
        return train_and_write(args, team, started)
    finally:
        distributed.leave(team)


def train_and_write(args: argparse.Namespace, team: distributed.Team, started: float) -> int:
    """Everything after parsing: build, train (this process's share, under torchrun), evaluate, write, push."""
    parser = args.parser
    torch.set_num_threads(args.threads or 1)
    torch.manual_seed(args.seed)  # the same first weights in every process
    model, recipe = build(args)
    if args.push and team.leads:  # before anything is trained or written: a bad token must not cost a training run
        _check_push_access(args)
    if not _writable(args.output) or not _writable(args.checkpoint.parent):
        parser.error(f"cannot write to {args.output} or {args.checkpoint.parent}")
    device = distributed.device_for(team, pick_device(args.device))
    try:
        train_split, val_split = carve_validation(load_split(args.dataset, "train", args.data_dir))
        test_split = load_split(args.dataset, "test", args.data_dir)
    except DataError as error:
        parser.error(str(error))
    resumed_epochs = read_checkpoint_state(args.checkpoint)["recipe"]["epochs"] if args.resume and args.budget else None
    planned = pacing.plan(model, recipe, train_split, val_split, device, threads=args.threads, budget=args.budget,
                          resumed_epochs=resumed_epochs, started=started, team=team)
    recipe, paced = planned.recipe, planned.pacing
    parameters = model.parameter_count
    hardware = f"{device.type}, {paced['threads']} thread(s)" if device.type == "cpu" else device.type
    if team.shared:
        hardware = f"{team.size} processes, each {hardware}"
    if team.leads:
        print(f"training {args.name}: {parameters:,} parameters, {recipe.epochs} epochs on {hardware}", file=sys.stderr)
    try:
        ema, history, seconds = train(model, train_split, val_split, recipe, device=device,
                                      checkpoint=args.checkpoint, resume=bool(args.resume),
                                      progress=not args.no_progress, team=team,
                                      outliers=outlier_source(args, recipe))
    except Interrupted as signal_name:
        if team.leads:
            print(f"\ninterrupted by {signal_name}; the last complete epoch is in {args.checkpoint}. "
                  f"Continue with: {launcher(team)} {_resume_arguments(args.argv)}", file=sys.stderr)
        return 130
    if not team.leads:  # the leader alone evaluates and writes
        return 0
    command = f"{launcher(team)} {reproduce_command(args.argv)}".strip()
    if args.start_from:  # the card tells the whole road: how the weights it began from were trained, then this
        command = f"{read_evaluation(args.start_from).command or '(unrecorded)'} && {command}"
    print("fitting the temperature and the 'not a digit' limits on the validation split ...", file=sys.stderr)
    facts = TrainingFacts(args.dataset, history, seconds, command, hardware, asdict(recipe), paced)
    evaluation = write_model_folder(args.output, ema.cpu(), test_split, facts, val_split=val_split,
                                    faithfulness_count=args.faithfulness, started=started)
    print(f"test accuracy {evaluation.accuracy * 100:.2f} % -> {args.output}", file=sys.stderr)
    if args.push:
        try:
            url = push_folder(args.output, args.repo_id, revision=args.revision)
        except PushError as error:
            print(f"push failed: {error}\nthe model folder is in {args.output}; push it with: python train.py "
                  f"--push-only {args.output} --repo-id {args.repo_id}", file=sys.stderr)
            return 1
        print(f"pushed {args.output} -> {url}", file=sys.stderr)
    return 0


def build(args: argparse.Namespace) -> tuple[ViT, Recipe]:
    """The model and recipe the preset and the options describe; a --resume checkpoint must match the model."""
    architecture, preset_recipe = PRESETS[args.preset]
    if args.start_from:  # a fine-tune keeps the folder's own recipe unless an option says otherwise
        preset_recipe = _recipe_of(args)
    overrides = {key: getattr(args, key) for key in ARCHITECTURE_OPTIONS if getattr(args, key) is not None}
    recipe = replace(preset_recipe, seed=args.seed, **{key: getattr(args, key) for key in
                     RECIPE_OPTIONS if getattr(args, key) is not None})
    config = architecture | overrides | {"pos_embedding": args.pos_embedding,
                                         "class_names": list(DATASETS[args.dataset].class_names)}
    try:
        model = _started_from(args) if args.start_from else ViT(**config)
    except ValueError as error:
        args.parser.error(str(error))
    if args.resume:
        if not args.checkpoint.is_file():
            args.parser.error(f"--resume: no checkpoint at {args.checkpoint}")
        try:
            saved = read_checkpoint_state(args.checkpoint)
        except ValueError as error:
            args.parser.error(f"--resume: {error}")
        if saved["config"] != model.config:
            different = sorted(k for k in saved["config"] if saved["config"][k] != model.config.get(k))
            args.parser.error(f"--resume: {args.checkpoint} is from another architecture "
                              f"(differs in {', '.join(different)})")
    return model, recipe


def outlier_source(args: argparse.Namespace, recipe: Recipe) -> outliers.Source:
    """What outlier exposure is made from: a digit model's own training digits; a garment model's, MNIST's (a
    drawn digit is among what it must not take for a garment), framed as it frames a drawing."""
    data = DATASETS[args.dataset]
    if not recipe.outliers or data.outliers == outliers.KINDS:
        return outliers.Source()
    try:
        digits = load_split("mnist", "train", args.data_dir).images[:, 0]
    except DataError as error:
        args.parser.error(f"--outliers for {data.title} shows it MNIST's digits as outliers, and {error}")
    return outliers.Source(data.outliers, data.framing, digits)


def _recipe_of(args: argparse.Namespace) -> Recipe:
    """The recipe the --start-from folder was trained with (evaluation.json), else the preset's."""
    try:
        recorded = read_evaluation(args.start_from).recipe
    except ValueError as error:
        args.parser.error(f"--start-from: {error}")
    if not recorded:
        return PRESETS[args.preset][1]
    known = set(Recipe.__dataclass_fields__)
    return Recipe(**{key: value for key, value in recorded.items() if key in known})


def _started_from(args: argparse.Namespace) -> ViT:
    """The model of the --start-from folder, to fine-tune; ValueError says why it cannot be."""
    chosen = [f"--{key.replace('_', '-')}" for key in ARCHITECTURE_OPTIONS if getattr(args, key) is not None]
    chosen += ["--pos-embedding"] * (args.pos_embedding != "learned")
    if chosen:
        raise ValueError(f"--start-from keeps its folder's architecture: leave out {', '.join(chosen)}")
    learned = read_dataset(args.start_from)
    if learned != args.dataset:
        raise ValueError(f"--start-from {args.start_from} learned {learned}, not {args.dataset} (give --dataset)")
    return read_model(args.start_from)


def launcher(team: distributed.Team) -> str:
    """How this run was started, for the card and the resume hint."""
    if not team.shared:
        return "python train.py"
    machines = team.size // team.local_size
    return f"torchrun{f' --nnodes {machines}' if machines > 1 else ''} --nproc-per-node {team.local_size} train.py"


def push_only(args: argparse.Namespace) -> int:
    """Push an already written model folder after checking it loads, the token and write access."""
    if not args.push_only.is_dir():
        args.parser.error(f"--push-only: {args.push_only} is not a folder")
    try:
        bundle = load_folder(args.push_only)
    except ValueError as error:
        args.parser.error(f"--push-only: {error}")
    _check_push_access(args)
    if not (args.push_only / ONNX).is_file() and write_onnx(args.push_only, bundle.model):  # else pushed without
        print(f"wrote {args.push_only / ONNX} from its weights (the folder had none)", file=sys.stderr)
    try:
        url = push_folder(args.push_only, args.repo_id, revision=args.revision)
    except PushError as error:
        print(f"push failed: {error}", file=sys.stderr)
        return 1
    print(f"pushed {args.push_only} -> {url}", file=sys.stderr)
    return 0


def _check_push_access(args: argparse.Namespace) -> None:
    """Exit with an argparse-style message (status 2) unless the token may push to --repo-id."""
    try:
        user = check_push_access(args.repo_id, private=args.private, revision=args.revision)
    except PushError as error:
        args.parser.error(f"{'--push-only' if args.push_only is not None else '--push'}: {error}")
    print(f"pushing as {user} to {args.repo_id}@{args.revision or 'main'}", file=sys.stderr)


def _resume_arguments(argv: list[str]) -> str:
    """The same arguments, quoted for the shell, with --resume added unless it is there already."""
    resuming = any(a == "--resume" or a.startswith("--resume=") for a in argv)
    return shlex.join(argv if resuming else [*argv, "--resume"])


def reproduce_command(argv: list[str]) -> str:
    """The command for the model card: the arguments that shape the model, without --resume or pushing."""
    kept, skip = [], 0
    for index, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name == "--resume":  # its optional value is a checkpoint path
            skip = int("=" not in arg and index + 1 < len(argv) and not argv[index + 1].startswith("-"))
        elif name in HUB_OPTIONS:
            skip = HUB_OPTIONS[name] if "=" not in arg else 0
        else:
            kept.append(arg)
    return shlex.join(kept)


def _writable(folder: Path) -> bool:
    """True when `folder` exists or can be created, and accepts files. Creates nothing: it writes a probe file
    in the nearest folder that exists, so a run stopped by a later usage error leaves no empty folders, and two
    runs starting in the same place at once cannot remove each other's folders."""
    try:
        existing = Path(os.path.abspath(folder))  # resolves ".."
        while not existing.exists():
            existing = existing.parent
        with tempfile.TemporaryFile(dir=existing):  # a file, uniquely named, deleted on close
            return True
    except OSError:  # not a folder, not writable, or not even readable
        return False


if __name__ == "__main__":
    sys.exit(main())
