"""One description per dataset: what every module needs to know of MNIST and Fashion-MNIST.

Names, classes, what one picture is called in sentences, how its pictures sit in the frame, where its files
come from and their checksums, its Hub dataset id, and which recipe settings have no meaning for it. Adding a
dataset means adding one entry to DATASETS.
"""

from dataclasses import dataclass, replace

from .preprocess import DIGITS, FRAME, NOISE_FLOOR, Framing


@dataclass(frozen=True)
class Dataset:
    name: str                       # the key in DATASETS, on the command line and in evaluation.json
    title: str                      # as people write it: "Fashion-MNIST"
    hub_id: str                     # the dataset on the Hugging Face Hub, for model cards
    class_names: tuple[str, ...]
    noun: str                       # what one picture is called in sentences: "digit"
    absence: str                    # a class told apart by what is missing, for the Predict tab's sentences
    framing: Framing                # how a visitor's picture is placed in the frame, as the dataset places its own
    mirrors: tuple[str, ...]        # where the IDX files are downloaded from, tried in turn
    sha256: dict[str, str]          # file name -> its SHA-256
    inapplicable: frozenset[str] = frozenset()  # recipe settings with no meaning here (a flag on a 1 for garments)
    # Pictures from outside the dataset that its models are measured on (vit.rendered: typed and drawn digits)
    other_writers: bool = False
    # What outlier exposure (vit.outliers) shows its models as "none of these classes"
    outliers: tuple[str, ...] = ("glyph", "scribble", "doodle", "pair")
    stored: str = "test"            # what a stored example is in sentences: "a test 7", "pick a test digit"

    def check_recipe(self, settings: dict) -> str | None:
        """A sentence naming the first setting that is on but has no meaning for this dataset, or None."""
        wrong = sorted(key for key in self.inapplicable if settings.get(key))
        return f"{wrong[0]} has no meaning for {self.title}: it has no digits" if wrong else None


DATASETS = {dataset.name: dataset for dataset in (
    Dataset(
        name="mnist", title="MNIST", hub_id="ylecun/mnist", class_names=tuple(str(digit) for digit in range(10)),
        noun="digit", framing=DIGITS, other_writers=True,
        absence="a digit 1 is partly a 1 because there is no bar of a 7",
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        sha256={"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"}),
    Dataset(
        name="fashion-mnist", title="Fashion-MNIST", hub_id="zalando-datasets/fashion_mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"),
        noun="fashion item", inapplicable=frozenset({"flag_ones"}),
        outliers=("glyph", "scribble", "doodle", "digit"),
        absence="a sandal is partly a sandal because its top is open where a sneaker's is closed",
        # The item fills the frame and is centred by its box; the crop counts faint ink too (a garment's pale
        # edge): chosen on 2,000 validation items drawn on a page, read at 87.6 % by the default model with a
        # crop at 0.05 or 0.1 of the strongest ink, 87.3 % at 0.2.
        framing=Framing(box=FRAME, by_mass=False, pen=False, crop_at=NOISE_FLOOR),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        sha256={"train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"}),
)}
DEFAULT = "mnist"  # what a folder written before evaluation.json named its dataset was trained on


def dataset(name: str | None) -> Dataset:
    """The description of a dataset by name (DEFAULT for None); KeyError names the known ones."""
    try:
        return DATASETS[name or DEFAULT]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None


def taught(base: Dataset, class_names: list[str]) -> Dataset:
    """What a model taught in the app reads (vit.teach): a visitor's own symbols, drawn on the pad and framed as the
    dataset of the model it was taught on frames its pictures."""
    return replace(base, title="your drawings", class_names=tuple(class_names), noun="symbol", other_writers=False,
                   stored="taught",  # its examples are the visitor's own drawings: "a taught star"
                   absence="a symbol can be told from another by a stroke it lacks")
