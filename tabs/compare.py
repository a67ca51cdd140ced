"""Compare: the zoo, models that differ from one baseline in one choice each (how the image is cut, which
positions), read side by side, and two experiments a learner can run on them.

The zoo is the folders in weights/zoo/: tiles-7, learned positions, is its baseline (the fast preset's size and
recipe with the cut the preset had until strips of 4 rows read better in its three minutes), and each other folder
changes one choice of it. It is loaded once and shared, apart from the model menu; the tab reads the Predict tab's
picture.
"""

import re

import gradio as gr
import numpy as np
import torch

from vit import pictures
from vit.analysis import attention_distance, mean_attention_distance, positional_similarity
from vit.bundle import WEIGHTS_ROOT, ModelBundle, load_folder, zoo_folders
from vit.registry import cached, use_zoo, zoo, zoo_member
from vit.tiling import cut_words, tiles, untile

from . import images
from .glossary import term
from .picture import Picture, picture_for
from .shared import Context, TabWiring

# The order the table lists the zoo in: the baseline, the cuts, then the positions.
ORDER = ("tiles-7", "tiles-4", "horizontal-strips-2", "vertical-strips-2", "tiles-7-sinusoidal", "tiles-7-no-positions")
SHUFFLE_TILE = 7  # the tile the shuffle experiment cuts: the three tiles-of-7 models read the same pieces
HEAD = re.compile(r"block (\d+) · head (\d+)")

def load_zoo(root=WEIGHTS_ROOT) -> list[ModelBundle]:
    """The zoo's folders, in ORDER (others after), read-only."""
    folders = zoo_folders(root)
    names = sorted(folders, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))
    bundles = [load_folder(folders[name], name=name) for name in names]
    for bundle in bundles:
        bundle.model.eval().requires_grad_(False)
    return bundles


# --- Views --------------------------------------------------------------------------------------------------

def zoo_table(zoo: list[ModelBundle]) -> str:
    """The zoo as a Markdown table: tokens, positions, parameters, test accuracy, epochs and training time."""
    lines = [f"| model | words | positions | parameters | test accuracy | {term('epoch', 'epochs')} | training |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for bundle in zoo:
        vit, time = bundle.model, bundle.evaluation.run_seconds
        lines.append(f"| **{bundle.name}** | {cut_words(vit.cut, vit.tile_size)}: {vit.num_tiles} + CLS | "
                     f"{vit.pos_embedding_kind} | {vit.parameter_count:,} | "
                     f"{bundle.accuracy * 100:.2f} % | {len(bundle.history)} | "
                     f"{f'{time:.0f} s' if time else '?'} ({bundle.evaluation.device or '?'}) |")
    return "\n".join(lines)


def readings(zoo: list[ModelBundle], picture: Picture, instead_of: Picture | None = None) -> str:
    """The picture read by every model at once: its answer, the calibrated confidence, the runner-up; with why
    it is not the Predict tab's when that one is of another dataset (`instead_of`)."""
    why = (f" (the zoo reads {zoo[0].noun}s: the Predict tab's picture, {instead_of.source} for a {instead_of.dataset}"
           f" model, is not one, so a stored test {zoo[0].noun} stands in)") if instead_of is not None else ""
    lines = [f"**{picture.source}, read by every model{why}:**", "", "| model | answer | runner-up |",
             "| --- | --- | --- |"]
    for bundle in zoo:
        reading = bundle.read(picture.input)
        order = reading.probabilities.argsort(descending=True)
        best, second = (int(i) for i in order[:2])
        verdict = " (*not a digit*)" if reading.refused else ""
        lines.append(f"| {bundle.name} | **{bundle.class_names[best]}** {reading.probabilities[best] * 100:.1f} %"
                     f"{verdict} | {bundle.class_names[second]} {reading.probabilities[second] * 100:.1f} % |")
    return "\n".join(lines)


@cached(maxsize=16)
def similarity_and_reach(name: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A zoo model's position similarity (N, N), mean attention distance (L, H) over its stored examples, and
    what uniform attention would reach on its pieces."""
    vit = zoo_member(name).model
    tokens = vit.num_tiles + 1
    uniform = float(attention_distance(torch.full((tokens, tokens), 1 / tokens), vit.grid, vit.piece))
    return positional_similarity(vit), mean_attention_distance(vit, zoo_member(name).examples()[0]), uniform


def zoo_words(zoo: list[ModelBundle]) -> str:
    """What the numbers say, in a few sentences drawn from them."""
    by_name = {b.name: b for b in zoo}
    accuracy = lambda name: by_name[name].accuracy * 100  # noqa: E731
    best, worst = max(zoo, key=lambda b: b.accuracy), min(zoo, key=lambda b: b.accuracy)
    said = [fairness(zoo), f"**{best.name}** reads best ({best.accuracy * 100:.2f} %), **{worst.name}** worst "
                           f"({worst.accuracy * 100:.2f} %)."]
    if {"tiles-7", "tiles-7-no-positions"} <= by_name.keys():
        gap = accuracy("tiles-7") - accuracy("tiles-7-no-positions")
        said.append(f"Taking the positions away costs {gap:.2f} points: without them the model reads a bag of tiles "
                    f"and can tell where a stroke is only from what the tile holds (try the shuffle below).")
    if {"tiles-7", "tiles-7-sinusoidal"} <= by_name.keys():
        gap = accuracy("tiles-7") - accuracy("tiles-7-sinusoidal")
        said.append(f"Fixed sine-wave positions read {abs(gap):.2f} points {'worse' if gap > 0 else 'better'} than "
                    f"learned ones: the learned similarity grid finds the 2-D layout by itself; the sine waves only "
                    f"know the reading order.")
    strips = [b for b in zoo if b.model.cut != "tiles"]
    if strips and "tiles-7" in by_name:
        best_strip = max(strips, key=lambda b: b.accuracy)
        better = best_strip.accuracy > by_name["tiles-7"].accuracy
        said.append(f"Strips keep only one direction, {'yet' if better else 'and'} **{best_strip.name}** reads {best_strip.accuracy * 100:.2f} "
                    f"% against {accuracy('tiles-7'):.2f} % for tiles of 7 ({'better' if better else 'worse'}, with "
                    f"{best_strip.model.num_tiles} words instead of 16): each strip holds a whole band of the digit, "
                    f"and where along the band a stroke lies is in the word itself, so nothing is lost — only the "
                    f"grid's second direction is left to the attention between words.")
    reach = {b.name: float(similarity_and_reach(b.name)[1][0].mean()) for b in zoo}
    near = min(reach, key=reach.get)
    said.append(f"In block 1, **{near}**'s heads look nearest ({reach[near]:.1f} px on average) and "
                f"**{max(reach, key=reach.get)}**'s farthest ({max(reach.values()):.1f} px).")
    return " ".join(said)


def fairness(zoo: list[ModelBundle]) -> str:
    """Whether the accuracies compare the choices or the training: the epochs each model was given, and what
    else differs (an epoch of a longer sequence costs more)."""
    epochs = {b.name: len(b.history) for b in zoo}
    if len(set(epochs.values())) > 1:
        given = ", ".join(f"{name} {count}" for name, count in epochs.items())
        return (f"**Not a fair race:** the models were given different numbers of epochs ({given}), so a model may "
                f"read worse only because it trained less.")
    longest, shortest = max(zoo, key=lambda b: b.model.num_tiles), min(zoo, key=lambda b: b.model.num_tiles)
    return (f"Every model was trained with the same recipe for the same {next(iter(epochs.values()))} epochs, so the "
            f"accuracies compare the cut and the positions, not the training. The work per epoch was not equal: "
            f"**{longest.name}** reads {longest.model.num_tiles + 1} tokens where **{shortest.name}** reads "
            f"{shortest.model.num_tiles + 1}, and attention's cost grows with the square of that.")


def shuffled(image: np.ndarray, seed: int) -> tuple[np.ndarray, list[int]]:
    """The picture with its 7-pixel tiles in a random order (the same for the same seed), and that order."""
    pieces = tiles(torch.from_numpy(image)[None, None], SHUFFLE_TILE)
    order = torch.randperm(pieces.shape[1], generator=torch.Generator().manual_seed(seed))
    return untile(pieces[:, order], *image.shape)[0, 0].numpy(), [int(i) + 1 for i in order]


def shuffle_view(zoo: list[ModelBundle], picture: Picture, seed: int) -> tuple[dict, str]:
    """The shuffled picture beside the original (described), and each tiles-of-7 model's answer before and after."""
    mixed, order = shuffled(picture.input, seed)
    both = pictures.side_by_side([pictures.titled(pictures.grey(picture.input, 8, SHUFFLE_TILE), picture.source),
                                  pictures.titled(pictures.grey(mixed, 8, SHUFFLE_TILE), f"shuffled (seed {seed})")])
    lines = ["| model | positions | before | after | largest change of a logit |", "| --- | --- | --- | --- | --- |"]
    for bundle in (b for b in zoo if b.model.cut == "tiles" and b.model.tile_size == SHUFFLE_TILE):
        with torch.no_grad():
            logits = bundle.model(torch.from_numpy(np.stack([picture.input, mixed]))[:, None])
        probabilities = (logits / bundle.temperature).softmax(-1)
        answers = [f"{bundle.class_names[int(p.argmax())]} ({float(p.max()) * 100:.1f} %)" for p in probabilities]
        change = float((logits[0] - logits[1]).abs().max())
        lines.append(f"| {bundle.name} | {bundle.model.pos_embedding_kind} | {answers[0]} | {answers[1]} | "
                     f"{change:.2g} |")
    text = (f"The 16 tiles, put back in the order {', '.join(map(str, order))}. A model **without positions** sees "
            f"the same set of words in another order, and attention does not care about order: its answer is the "
            f"same to the last decimal (a change of about 1e-6 is rounding). The models with positions are told "
            f"where each word was, so a shuffled picture is a different picture to them.\n\n" + "\n".join(lines))
    alt = (f"{picture.source} cut into {len(order)} tiles of {SHUFFLE_TILE}×{SHUFFLE_TILE} pixels, beside the same "
           f"tiles put back in the order {', '.join(map(str, order))} (shuffle number {seed}).")
    return images.described(both, images.sentence(alt)), text


def zoo_alt(names: list[str], distances: list[torch.Tensor]) -> str:
    """The zoo figure in words: what each column shows, and which models' heads look nearest and farthest."""
    first = {name: float(reach[0].mean()) for name, reach in zip(names, distances)}
    last = {name: float(reach[-1].mean()) for name, reach in zip(names, distances)}
    near, far = min(first, key=first.get), max(last, key=last.get)
    return (f"The zoo's {len(names)} models side by side ({', '.join(names)}): above, how similar each one's position "
            f"vectors are; below, its mean attention distance per block, a dot per head, on one shared scale. In "
            f"block 1 {near}'s heads look nearest ({first[near]:.1f} px on average); in the last block {far}'s look "
            f"farthest ({last[far]:.1f} px).")


def switch_choices(bundle: ModelBundle) -> tuple[list[str], list[str]]:
    """The heads and the blocks of a model, as the checkboxes name them."""
    vit = bundle.model
    heads = [f"block {b + 1} · head {h + 1}" for b in range(vit.num_layers) for h in range(vit.num_heads)]
    return heads, [f"block {b + 1}" for b in range(vit.num_layers)]


@torch.no_grad()
def switched_off(bundle: ModelBundle, picture: Picture, heads: list[str], blocks: list[str]) -> str:
    """The answer for the picture and the accuracy on the stored test examples, with and without the chosen
    heads and blocks."""
    heads_off = frozenset((int(b) - 1, int(h) - 1) for b, h in (HEAD.match(x).groups() for x in heads or ()))
    layers_off = frozenset(int(x.split()[-1]) - 1 for x in blocks or ())
    images, labels = bundle.examples()
    inputs = torch.cat([torch.from_numpy(picture.input)[None, None], images[:, None].float() / 255])
    rows = []
    for title, off in (("all on", {}), ("switched off", dict(heads_off=heads_off, layers_off=layers_off))):
        logits = bundle.model(inputs, **off)
        p = (logits[0] / bundle.temperature).softmax(-1)
        right = float((logits[1:].argmax(-1) == labels).float().mean()) * 100
        rows.append(f"| {title} | **{bundle.class_names[int(p.argmax())]}** ({float(p.max()) * 100:.1f} %) | "
                    f"{right:.1f} % |")
    off = [*(f"block {b + 1}" for b in sorted(layers_off)), *heads] or ["nothing"]
    return (f"**{bundle.name}** with {', '.join(off)} switched off. On the right: of the {len(labels)} test digits "
            f"stored in its folder, all of which it reads correctly when whole, the share it still reads.\n\n"
            f"| | {picture.source} | stored test digits read correctly |\n| --- | --- | --- |\n" + "\n".join(rows))


# --- Handlers -----------------------------------------------------------------------------------------------

def zoo_picture(current: Picture | None) -> tuple[Picture, Picture | None]:
    """The picture the zoo reads: the visitor's, framed as the zoo frames digits; and the visitor's picture when a
    stored test digit stands in for it (picture_for fell back to the start picture: a stored example of another
    dataset is no digit, and an upload whose file is gone cannot be framed again)."""
    picture = picture_for(zoo()[0], current)
    stands_in = current is not None and picture is not current and picture.sent is None
    return picture, current if stands_in else None


def show_compare(current: Picture | None, seed, ran: frozenset, target: str, heads: list[str], blocks: list[str]):
    """Everything the tab shows on opening: the table, the picture read by every model, the side-by-side figure,
    its sentences and the experiments run so far, run again on the current picture."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    members = zoo()
    if not members:
        return ("No zoo here: weights/zoo/ holds no model folder.", "", images.described(None, None), "",
                images.described(None, None), "", "")
    parts, names = [similarity_and_reach(b.name) for b in members], [b.name for b in members]
    art = plots.render(plots.zoo_figure(names, [p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts]))
    art = images.described(art, zoo_alt(names, [p[1] for p in parts]))
    return (zoo_table(members), readings(members, *zoo_picture(current)), art, zoo_words(members),
            *experiments(current, seed, ran, target, heads, blocks))


def experiments(current: Picture | None, seed, ran: frozenset, target: str, heads: list[str], blocks: list[str]):
    """The shuffled picture, its table and the switch-off table, for the picture now current: an experiment that
    was run before is run again (its results were of the picture then), one that was not stays empty."""
    mixed, mixed_text = run_shuffle(current, seed)[:2] if "shuffle" in ran else (images.described(None, None), "")
    switched = run_switch(target, current, heads, blocks)[0] if "switch" in ran else ""
    return mixed, mixed_text, switched


def run_shuffle(current: Picture | None, seed, ran: frozenset = frozenset()):
    members = zoo()
    if not members:
        raise gr.Error("No zoo here: weights/zoo/ holds no model folder.")
    return (*shuffle_view(members, zoo_picture(current)[0], int(seed or 0)), ran | {"shuffle"})


def pick_member(name: str):
    heads, blocks = switch_choices(zoo_member(name))
    return gr.CheckboxGroup(heads, value=[]), gr.CheckboxGroup(blocks, value=[])


def run_switch(name: str, current: Picture | None, heads: list[str], blocks: list[str],
               ran: frozenset = frozenset()):
    chosen = zoo_member(name)
    return switched_off(chosen, zoo_picture(current)[0], heads, blocks), ran | {"switch"}


def refresh(model_name: str, current: Picture | None, seed, ran: frozenset, target: str, heads: list[str],
            blocks: list[str]):
    """The menu's model does not change the zoo, but the picture may have changed: the readings and the experiments
    run so far are of the picture now current."""
    if not zoo():
        return "", images.described(None, None), "", ""
    return readings(zoo(), *zoo_picture(current)), *experiments(current, seed, ran, target, heads, blocks)


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first) -> TabWiring:
    if not zoo():
        use_zoo(load_zoo())
    private = dict(api_visibility="private")
    with gr.Tab("9 · Compare the cuts", id="compare") as tab:
        gr.Markdown(f"{term('the zoo', 'The zoo')}: models trained with one {term('recipe')} (the fast "
                    f"{term('preset')}) that differ in **one** choice — how "
                    "the digit is cut into words, or how the model is told where each word was.")
        table = gr.Markdown(elem_id="zoo-table")
        read = gr.Markdown(elem_id="zoo-readings")
        art = images.output_image("the zoo side by side", "zoo-figure", wide=True)
        words = gr.Markdown(elem_id="zoo-words")
        gr.Markdown(f"### Experiment 1: shuffle the tiles\nCut the Predict tab's picture into {SHUFFLE_TILE}-pixel "
                    "tiles, put them back in a random order, and ask the three models that read tiles of "
                    f"{SHUFFLE_TILE}.")
        with gr.Row():
            seed = gr.Number(0, precision=0, minimum=0, label="shuffle number (seed)", scale=0, min_width=160,
                             elem_id="shuffle-seed")
            shuffle = gr.Button("Shuffle the tiles", variant="primary", scale=0, elem_id="shuffle")
        mixed = images.output_image("the shuffled picture", "shuffled", wide=True)
        mixed_text = gr.Markdown(elem_id="shuffle-text")
        gr.Markdown("### Experiment 2: switch off a head or a whole block\nPick a model and what to switch off: a "
                    "head's output is zeroed before its block's projection; a block switched off passes its input "
                    "through unchanged.")
        names = [b.name for b in zoo()]
        heads, blocks = switch_choices(zoo()[0]) if zoo() else ([], [])
        with gr.Row():
            target = gr.Dropdown(names, value=names[0] if names else None, label="model", scale=0, min_width=200,
                                 elem_id="switch-model")
            off_heads = gr.CheckboxGroup(heads, label="heads off", scale=3, elem_id="heads-off")
            off_blocks = gr.CheckboxGroup(blocks, label="blocks off", scale=1, elem_id="blocks-off")
        switch = gr.Button("Run with these switched off", variant="primary", elem_id="switch")
        switch_text = gr.Markdown(elem_id="switch-text")
        ran = gr.State(frozenset())  # the experiments this visitor ran: re-run on the picture a switch brings
    shown = [context.current, seed, ran, target, off_heads, off_blocks]
    experiment_outputs = [mixed, mixed_text, switch_text]
    tab.select(show_compare, shown, [table, read, art, words, *experiment_outputs], **private)
    gr.on([shuffle.click, seed.submit], run_shuffle, [context.current, seed, ran], [mixed, mixed_text, ran],
          **private)
    target.input(pick_member, target, [off_heads, off_blocks], **private)
    switch.click(run_switch, [target, context.current, off_heads, off_blocks, ran], [switch_text, ran], **private)
    return TabWiring("compare", tab, refresh, shown, [read, *experiment_outputs], lazy=True)
