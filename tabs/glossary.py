"""The glossary: every term the app uses, one plain sentence each. The app shows it under the tabs, with an anchor
per term; a tab's text links a term where it first appears (`term`, whose hover shows the sentence too), and
docs/glossary.md is written from it by `python docs/classroom.py` (a test checks it is up to date).
"""

import re
from dataclasses import dataclass
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "glossary.md"
ANCHOR = "glossary-"  # every term's anchor starts so: a link to "#glossary-…" is a link into the glossary
# Installed as the page loads: a click on a link into the glossary scrolls to the entry. The browser alone would
# resolve "#glossary-…" against gradio's <base href="./">, dropping the page's query string, and with it a shared
# link's model, tab and picture.
FOLLOW_JS = """() => {
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#%s"]');
    const entry = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!entry) { return; }
    event.preventDefault();
    entry.scrollIntoView({block: "start"});
    history.pushState(null, "", window.location.pathname + window.location.search + link.getAttribute("href"));
  }, true);
}""".replace("%s", ANCHOR)
LINK = re.compile(r'\[([^\]]*)\]\(#' + ANCHOR + r'[\w-]+ "[^"]*"\)')  # a link `term` writes


@dataclass(frozen=True)
class Term:
    name: str        # as the glossary lists it
    meaning: str     # one plain sentence: shown in the glossary and when the pointer rests on a link to it

    @property
    def anchor(self) -> str:
        return ANCHOR + re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


TERMS = (
    Term("Vision Transformer (ViT)", "A neural network that cuts a picture into pieces and reads them as a sequence "
         "of words, the way a language transformer reads a sentence."),
    Term("tile", "A small square of the picture, say 7×7 pixels, that becomes one word."),
    Term("strip", "A band across the whole picture (a horizontal strip is some rows, a vertical one some columns) "
         "that becomes one word."),
    Term("word", "One piece of the picture, a tile or a strip, flattened into a row of pixel values."),
    Term("token", "One entry of the sequence the transformer reads: the CLS token, then one per word."),
    Term("CLS token", "An extra learned token put in front of the words: it gathers what the answer needs through "
         "attention, and the answer is read from it at the end."),
    Term("embedding", "The vector of numbers a word becomes: a linear layer weighs the word's pixels with one "
         "learned filter per number and adds a bias."),
    Term("filter", "One learned tile-sized pattern of the embedding: a tile that looks like it gets a large number."),
    Term("principal components", "The few patterns that the filters vary along most, found by principal component "
         "analysis; the ViT paper's figure 7 shows them."),
    Term("positional embedding", "A vector added to each token that says where its piece was, learned or made of "
         "fixed sine waves; without it attention cannot tell the order of the words."),
    Term("attention", "The step where every token takes a weighted mix of all the tokens; the weights (a softmax of "
         "query·key scores) say how much it looks at each."),
    Term("query, key and value", "Three vectors made from each token: a token's query is compared with every key "
         "(q·k/√d) to decide how much of each token's value it takes."),
    Term("head", "One of the attention computations that run side by side in a block, each with its own queries, "
         "keys and values, free to look for something different."),
    Term("block", "One layer of the transformer: attention, then an MLP, each adding its result to the tokens; the "
         "model stacks several."),
    Term("MLP", "The small two-layer network (multi-layer perceptron) in each block that reworks every token on its "
         "own after attention has mixed them."),
    Term("LayerNorm", "Rescales a token's numbers to mean 0 and spread 1, then applies a learned scale and shift, "
         "before attention, before the MLP and before the answer is read."),
    Term("residual stream", "The tokens as they pass from block to block: attention and the MLP add to them "
         "instead of replacing them."),
    Term("softmax", "Turns a list of scores into positive shares that add up to 1, the largest score getting the "
         "largest share."),
    Term("logit", "The model's raw score for a class before softmax; the class with the largest logit is the "
         "answer."),
    Term("log-odds", "ln(p / (1 − p)) for a probability p: 0 is 50 %, 1 is 73 % and 2 is 88 %, so small steps "
         "near certainty stay visible."),
    Term("temperature", "The number the logits are divided by before softmax, fitted on the validation split so "
         "that the confidences are calibrated."),
    Term("calibration", "Making the confidence honest: of the answers given at 90 %, about 9 in 10 should be "
         "right."),
    Term("ECE", "Expected calibration error: the answers are grouped by confidence (15 bins) and the gap between "
         "confidence and accuracy is averaged over the groups, weighted by their size."),
    Term("reliability diagram", "Accuracy against confidence for the groups of answers: a calibrated model lies on "
         "the diagonal."),
    Term("risk-coverage curve", "Answering only the surest share of the pictures (the coverage) and counting how "
         "many of those answers are wrong (the risk), for every share: a model that knows when it does not know "
         "stays low as long as it can, and its area sums it up (Geifman & El-Yaniv 2017)."),
    Term("outlier exposure", "Training on pictures that are not digits with the answer pushed toward \"every class "
         "alike\", so that a drawn letter or doodle gets no confident digit (Hendrycks et al. 2019)."),
    Term("evidence", "One of the two scores behind the \"not a digit\" verdict, how strongly any class fires: the "
         "log of the sum of e^logit over the classes, low for noise, photos and (after outlier exposure) drawings "
         "that are not digits."),
    Term("not a digit", "The verdict given instead of an answer (\"not a fashion item\" for a Fashion-MNIST model) "
         "when either of two scores (evidence, ink cover) is beyond the limits set on the "
         "validation split."),
    Term("logit lens", "Reading CLS out through the final LayerNorm and the head after every block, as if the model "
         "stopped there, to see when the answer forms."),
    Term("attention rollout", "CLS's attention followed back through all the blocks (heads averaged, the residual "
         "counted as half): how much it draws from each tile in the end."),
    Term("saliency", "The size of the answer's gradient at each pixel: where a little more or less ink would "
         "change the answer most."),
    Term("occlusion", "Blanking one tile (or a 2×2 block of them) and measuring how many log-odds the answer "
         "loses: red tiles support the answer, blue ones argue against it."),
    Term("integrated gradients", "The gradient averaged along the way from a blank picture to this one, times the "
         "pixels, so that the tiles' shares add up to the change in the class's logit."),
    Term("relevance", "Chefer et al.'s class-specific map: attention weighted by its gradient for the chosen class "
         "and carried through the blocks, so it changes with the class asked about."),
    Term("faithfulness", "Whether a map points at the tiles the model really uses, tested by deleting and inserting "
         "tiles in the map's order."),
    Term("deletion curve", "The class's probability as tiles are blanked in a map's order, most important first: "
         "the faster it falls (the smaller the area under it), the more faithful the map."),
    Term("insertion curve", "The class's probability as tiles are put back into a blank picture in a map's order: "
         "the faster it rises (the larger the area), the more faithful the map."),
    Term("sanity check", "The randomisation test: the model's weights are re-drawn from the head down, and a map "
         "that stays the same was showing the picture, not what the model learned."),
    Term("confusion matrix", "Every test image counted by its true label (row) and the model's answer (column); "
         "the diagonal holds the right answers."),
    Term("loss", "How wrong an answer is: minus the log of the probability given to the true class, 0 when sure "
         "and right, large when sure and wrong."),
    Term("epoch", "One pass of training through all the training images."),
    Term("validation split", "5,000 training images kept out of training, to choose settings and fit the "
         "calibration."),
    Term("test split", "The 10,000 images training never looks at; the accuracy the app shows is measured on "
         "them."),
    Term("held-out drawings", "A taught model's drawings, each read by a head fitted without it: with no test set, "
         "the honest measure of how well it reads a drawing it has not seen."),
    Term("augmentation", "Training pictures changed at random (rotated, shifted, zoomed, thickened, bent or "
         "mirrored) so that the model learns the digit, not one way of writing it."),
    Term("label smoothing", "Training that aims a little below 100 % for the true class, so the model is not pushed "
         "towards certainty it has not earned."),
    Term("preset", "A named choice of model size and training recipe (default, fast or tiny) that "
         "`python train.py --preset` trains."),
    Term("recipe", "How a model is trained: optimiser, learning rate, epochs, batch size, regularisation and "
         "augmentation."),
    Term("the zoo", "Models trained with the fast preset's recipe that differ in one choice each (how the picture "
         "is cut, how positions are given), compared in Compare the cuts."),
    Term("mean attention distance", "How far, in pixels, a head looks on average: the distance between tiles "
         "weighted by its attention."),
    Term("parameters", "The learned numbers of a model: its weights and biases."),
    Term("the notebook", "The write-up and notebook (peluche/ViT) this project grows from, a tiny ViT trained on "
         "MNIST; its text is kept as shared/SEED.md."),
    Term("the seed's recipe", "How the notebook trained its model (Adam at a learning rate of 3e-4, batches of "
         "128, 96.97 % after 500 epochs), which the benchmark times against this project's."),
    Term("MNIST", "70,000 handwritten digits, 28×28 pixels, white on black: 60,000 to train on and 10,000 to "
         "test."),
    Term("Fashion-MNIST", "70,000 small pictures of clothes and shoes in ten classes, framed as MNIST frames its "
         "digits."),
    Term("MCP", "The Model Context Protocol: AI assistants can call the app's /predict and /explain through it as "
         "tools."),
)
BY_NAME = {entry.name: entry for entry in TERMS}


def plain(text: str) -> str:
    """A sentence without Markdown, for a link's title (the text shown when the pointer rests on it)."""
    return text.replace("`", "").replace('"', "'")


def term(name: str, shown: str | None = None) -> str:
    """A Markdown link to a glossary entry, written as `shown` (the term's name if None); KeyError for a term the
    glossary does not define."""
    entry = BY_NAME[name]
    return f'[{shown or name}](#{entry.anchor} "{plain(entry.meaning)}")'


def visible(markdown: str) -> str:
    """Markdown with each glossary link replaced by the words it shows (what a reader sees without the pointer)."""
    return LINK.sub(r"\1", markdown)


def entries() -> list[str]:
    """One Markdown line per term, alphabetically, each with its anchor."""
    ordered = sorted(TERMS, key=lambda entry: entry.name.lower().removeprefix("the "))
    return [f'- <a id="{entry.anchor}"></a>**{entry.name}**: {entry.meaning}' for entry in ordered]


def section_text() -> str:
    return ("## Glossary\nEvery term the app uses, in a sentence. A link on a term in the tabs leads here; resting "
            "the pointer on it shows the sentence.\n\n" + "\n".join(entries()))


def section(demo):
    """The glossary under the tabs, where every tab's links can reach it, and the page's handler of those links."""
    import gradio as gr
    demo.load(None, js=FOLLOW_JS, api_visibility="private")
    return gr.Markdown(section_text(), elem_id="glossary")


def document() -> str:
    """docs/glossary.md."""
    return ("# Glossary\n\nEvery term the app uses, in a sentence. The app shows the same list under its tabs "
            "(written from `tabs/glossary.py` by `python docs/classroom.py`) and links each term where it "
            "first appears.\n\n" + "\n".join(entries()) + "\n")

