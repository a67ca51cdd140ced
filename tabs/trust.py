"""Which map to trust: six explanations of the Predict tab's picture for any class, tested on that picture by
deleting and inserting tiles in their order, and the model's scoreboard from evaluation.json (vit.faithfulness).
"""

from dataclasses import asdict, dataclass

import gradio as gr
import numpy as np
import torch

from vit import faithfulness, pictures
from vit.analysis import METHODS
from vit.bundle import ModelBundle, Reading
from vit.registry import bundle, cached
from vit.tiling import piece_noun

from . import images
from .glossary import term
from .picture import Picture, picture_for
from .shared import Context, TabWiring

ANSWER = "its answer"
SIGNED = ("integrated gradients", "occlusion")  # positive supports the class, negative argues against it


# --- Views --------------------------------------------------------------------------------------------------

def target_class(model: ModelBundle, reading: Reading, choice: str | None) -> int:
    """The class to explain: the one chosen, or the model's answer."""
    return model.class_names.index(choice) if choice in model.class_names else reading.best


def maps_picture(picture: Picture, maps: dict, areas: dict) -> np.ndarray:
    """The six maps side by side, each on its own scale (signed ones symmetric), titled with its deletion area."""
    cells = []
    for name in METHODS:
        values = maps[name].numpy()
        if name in SIGNED:
            limit = max(float(np.abs(values).max()), 1e-9)
            heat = pictures.heatmap(values, picture.input, "RdBu_r", -limit, limit, factor=5, outline=pictures.DARK_INK)
        else:
            heat = pictures.heatmap(values, picture.input, "inferno", 0, max(float(values.max()), 1e-9), factor=5)
        cells.append(pictures.captioned(pictures.titled(heat, name, size=12), f"deletion {areas[name][0]:.2f}"))
    return pictures.side_by_side(cells, gap=8)


def most_faithful_here(result: dict) -> str | None:
    """The method whose deletion fell fastest on this picture; None when p(class) of the whole picture is under
    5 %, so blanking tiles cannot lower it and the curves cannot rank the methods."""
    return faithfulness.most_faithful(result["areas"]) if float(result["deletion"]["random"][0]) >= 0.05 else None


def picture_words(model: ModelBundle, result: dict, target: int, asked: bool, best: str | None) -> str:
    """Which method was most faithful on this picture (`best`: most_faithful_here), and how far ahead of chance,
    drawn from the areas."""
    areas, name, piece = result["areas"], model.class_names[target], piece_noun(model.model.cut)
    why = f"why *{name}*" if asked else f"its answer, *{name}*"
    table = picture_table(result)
    if best is None:
        return (f"Explaining {why}: p({name}) is under 5 % on this picture to begin with, so blanking {piece}s "
                f"cannot lower it and the curves cannot rank the methods. The maps still show where each method finds "
                f"evidence for *{name}* (bright; for the two signed ones red, and blue against it); attention and "
                f"rollout are the same whatever class you ask about.\n\n{table}")
    (deleted, inserted), (random_deleted, random_inserted) = areas[best], areas["random"]
    return (f"Explaining {why}: on this picture **{best}** was the most {term('faithfulness', 'faithful')}. "
            f"Blanking the {piece}s in its order "
            f"takes p({name}) down fastest — deletion area **{deleted:.3f}** against **{random_deleted:.3f}** for "
            f"random orders ({deleted / max(random_deleted, 1e-9):.0%} of it); putting them back in its order gives "
            f"an insertion area of {inserted:.3f} (random: {random_inserted:.3f}). Attention and rollout are the "
            f"same whatever class you ask about.\n\n{table}")


def bottom_line(model: ModelBundle, picture_best: str | None, refusal: str | None) -> str:
    """Which map to believe for this model, from both tests over the scoreboard's pictures, then what this
    picture's curves add; a picture the model refuses says so first."""
    lines = [f"**The Predict tab refuses this picture.** {refusal} The maps below explain an answer it does not "
             f"give."] if refusal else []
    measured = model.evaluation.faithfulness
    if not measured:
        return "\n\n".join(lines + [f"**Bottom line:** {model.name} has no scoreboard, so only this picture's "
                                      f"curves speak: one picture is a hint, not a test."])
    board, randomised = asdict(measured.scoreboard), asdict(measured.randomisation)
    verdict = (f"**Bottom line for {model.name}:** "
               + faithfulness.verdict(model.noun, board, randomised, measured.best))
    believe = faithfulness.to_believe(faithfulness.judge(board, randomised))
    lines.append(verdict)
    if picture_best is not None:
        agrees = ("the same method" if picture_best == believe else
                  "one picture; the scoreboard's many pictures weigh more")
        lines.append(f"On this picture **{picture_best}** did best ({agrees}).")
    return "\n\n".join(lines)


def picture_table(result: dict) -> str:
    areas = result["areas"]
    rows = "\n".join(f"| {method} | {areas[method][0]:.3f} | {areas[method][1]:.3f} |" for method in result["names"])
    return ("| method | deletion area (lower: more faithful) | insertion area (higher) |\n| --- | --- | --- |\n"
            + rows)


@dataclass(frozen=True)
class PictureTest:
    """One picture's test of the six maps, as the tab shows it."""
    maps: dict                 # the six maps side by side (images.described, like curves)
    curves: dict               # deletion and insertion curves
    words: str                 # the sentence and table under them
    best: str | None           # the method whose deletion fell fastest; None when the curves cannot rank them


def picture_view(model: ModelBundle, picture: Picture, reading: Reading, choice: str | None) -> PictureTest:
    """The maps, the deletion and insertion curves, and the sentence and table under them, for one picture (and
    the model's reading of it)."""
    from vit import plots
    target = target_class(model, reading, choice)
    result = faithfulness.picture_test(model.model, torch.from_numpy(picture.input), target, model.temperature)
    curves = plots.render(plots.perturbation_figure(result["steps"], result["deletion"], result["insertion"],
                                                    model.class_names[target]))
    best, name = most_faithful_here(result), model.class_names[target]
    return PictureTest(images.described(maps_picture(picture, result["maps"], result["areas"]),
                                        maps_alt(picture.source, name, result["areas"])),
                       images.described(curves, curves_alt(name, result["areas"])),
                       picture_words(model, result, target, choice in model.class_names, best), best)


# Alt text: each picture in words, with its numbers (tabs.images.described).

def maps_alt(source: str, class_name: str, areas: dict) -> str:
    return (f"Six maps of {source} explaining class {class_name}, each titled with its deletion area (lower: more "
            f"faithful): " + ", ".join(f"{name} {areas[name][0]:.2f}" for name in METHODS) + ".")


def curves_alt(class_name: str, areas: dict) -> str:
    deleted = min(METHODS, key=lambda name: areas[name][0])
    inserted = max(METHODS, key=lambda name: areas[name][1])
    return (f"p({class_name}) as each method's top tiles are blanked (left) or put back into a blank picture "
            f"(right), a line per method: the deletion area is lowest for {deleted} ({areas[deleted][0]:.2f}; random "
            f"orders {areas['random'][0]:.2f}), the insertion area highest for {inserted} ({areas[inserted][1]:.2f}; "
            f"random {areas['random'][1]:.2f}).")


def randomisation_alt(stages: list[str], correlations: dict) -> str:
    return (f"Rank correlation of each method's maps with the trained model's as the weights are re-drawn in "
            f"{len(stages)} stages, from the {stages[0]} down to the {stages[-1]}; first stage → all re-drawn: "
            + ", ".join(f"{name} {values[0]:.2f} → {values[-1]:.2f}" for name, values in correlations.items()) + ".")


def scoreboard_words(model: ModelBundle) -> str:
    """The model's scoreboard from evaluation.json as a table, the verdicts, and which method did best."""
    measured = model.evaluation.faithfulness
    if not measured:
        return (f"**{model.name}** has no scoreboard yet: `python -m vit.evaluate FOLDER --data-dir DIR --faithfulness "
                f"--write` measures it.")
    board, randomised = asdict(measured.scoreboard), asdict(measured.randomisation)
    verdicts = faithfulness.verdicts(board, randomised)  # the words of this code, from the stored numbers
    random_deletion = board["methods"]["random"]["deletion"]["mean"]
    best = min(METHODS, key=lambda name: board["methods"][name]["deletion"]["mean"])
    rows = []
    for name in (*METHODS, "random"):
        deletion, insertion = board["methods"][name]["deletion"], board["methods"][name]["insertion"]
        cascade = randomised["methods"].get(name)
        rows.append(f"| {name} | {deletion['mean']:.3f} ± {deletion['sd']:.3f} | "
                    f"{deletion['mean'] / random_deletion:.0%} | {insertion['mean']:.3f} ± {insertion['sd']:.3f} | "
                    + (f"{cascade[0]:.2f} → {cascade[-1]:.2f} |" if cascade else "— |"))
    best_deletion = board["methods"][best]["deletion"]["mean"]
    return (f"**On {board['count']:,} test {model.noun}s** (each explained for the class the model answers), "
            f"**{best}** finds the tiles the answer needs best: its deletion area is {best_deletion:.3f}, "
            f"{best_deletion / random_deletion:.0%} of a random order's ({random_deletion:.3f}).\n\n"
            "| method | deletion area ± sd | of random's | insertion area ± sd | rank correlation, head re-drawn → "
            "all re-drawn |\n| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n\n"
            + "\n\n".join(f"- {words}" for words in verdicts.values())
            + f"\n\nThe {term('sanity check')} re-draws the model's weights from the head down and compares the maps "
              f"of the first {randomised['count']} of those {model.noun}s over the tiles that hold ink.")


@cached(maxsize=None)
def model_view(model_name: str) -> tuple[np.ndarray | None, str | None, str]:
    """The randomisation chart (None without a scoreboard), its alt text and the scoreboard's words."""
    from vit import plots
    model = bundle(model_name)
    measured = model.evaluation.faithfulness
    if not measured:
        return None, None, scoreboard_words(model)
    stages, correlations = measured.randomisation.stages, measured.randomisation.methods
    return (plots.render(plots.randomisation_figure(stages, correlations)), randomisation_alt(stages, correlations),
            scoreboard_words(model))


def class_choices(model: ModelBundle) -> list[str]:
    return [ANSWER, *model.class_names]


# --- Handlers -----------------------------------------------------------------------------------------------

def show_trust(model_name: str, current: Picture | None, choice: str | None):
    """The picture's maps and curves for the chosen class, and the model's scoreboard."""
    model = bundle(model_name)
    picture = picture_for(model, current)
    choice = choice if choice in class_choices(model) else ANSWER
    reading = model.read(picture.input)
    tested = picture_view(model, picture, reading, choice)
    heading = (f"Testing the maps of **{picture.source}** on **{model.name}**: draw, upload or pick another picture "
               f"in the Predict tab.\n\n"
               + bottom_line(model, tested.best, reading.verdict.message if reading.refused else None))
    chart, chart_alt, board = model_view(model.name)
    return (heading, gr.Radio(class_choices(model), value=choice), tested.maps, tested.curves, tested.words,
            images.described(chart, chart_alt), board)


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("4 · Which map to trust?", id="trust") as tab:
        gr.Markdown("The Predict tab shows several answers to *which parts mattered?*; they disagree, and research "
                    "says some deserve little belief. Here six methods explain the picture, and two tests check them. "
                    f"**{term('deletion curve', 'Deletion')}**: blank the tiles in the order a method ranks them, most "
                    "important first — if the method is right, the answer collapses fast. "
                    f"**{term('insertion curve', 'Insertion')}**: start blank and put them back in that order. "
                    f"A random order is the baseline. *{term('relevance', 'Relevance')}* (Chefer et al. 2021) and "
                    f"*{term('integrated gradients')}* (Sundararajan et al. 2017) can explain any class: ask "
                    "*why not 9?*")
        heading = gr.Markdown(elem_id="trust-heading")
        target = gr.Radio(label="explain which class", elem_id="trust-class")
        maps = images.output_image("the six maps", "trust-maps", wide=True)
        curves = images.output_image("deletion and insertion curves", "trust-curves", wide=True, chart=True)
        words = gr.Markdown(elem_id="trust-words")
        gr.Markdown("### The model's scoreboard")
        chart = images.output_image("randomisation test", "trust-randomisation", wide=True, chart=True)
        board = gr.Markdown(elem_id="trust-board")
    outputs = [heading, target, maps, curves, words, chart, board]
    inputs = [context.model_choice, context.current, target]
    tab.select(show_trust, inputs, outputs, api_visibility="private")
    target.input(show_trust, inputs, outputs, trigger_mode="always_last", api_visibility="private")
    return TabWiring("trust", tab, show_trust, [context.current, target], outputs, lazy=True)
