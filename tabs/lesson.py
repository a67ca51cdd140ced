"""A suggested path through the tabs for a class: their order and one thing to try in each. The app shows it under
the header; docs/app.md holds the same text between its markers, written by `python docs/classroom.py` (a test
checks it is up to date).
"""

from pathlib import Path

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "app.md"
START, END = "<!-- lesson -->", "<!-- /lesson -->"
TITLE = "Suggested path for a class"
# (tab id, the tab's name as its label shows it, what to try there), in the order to take them
PATH = (
    ("tiling", "1 · Tiling", "Set the tile size to 4: how many words does the digit become now, and how many with "
     "tiles of 14? Then cut it into horizontal strips: what can one strip not tell?"),
    ("predict", "2 · Predict", "Draw a 7, then add a bar across its stem: does the answer or its confidence change? "
     "Which tiles does occlusion colour red?"),
    ("walk", "3 · How it decides", "Click a tile on the stroke and follow it through the six steps; in step 5, "
     "after which block does the answer lead for good?"),
    ("trust", "4 · Which map to trust?", "Explain another class (*why not 9?*): which maps change, and which two "
     "stay the same whatever class you ask about?"),
    ("confusion", "5 · Confusion", "Find the largest number off the diagonal: which two classes does the model mix "
     "up most? Click it: would you have read those pictures right?"),
    ("worst", "6 · Worst losses", "Click the first picture: is it the model's fault, or would a person hesitate "
     "too?"),
    ("positions", "7 · What it learned", "In the positions panel, which positions is each one most like? Did the "
     "model learn where the tiles are?"),
    ("labels", "8 · Attention by label", "Tick *difference*: what is left of each label's attention once the "
     "average is taken away?"),
    ("compare", "9 · Compare the cuts", "Shuffle the tiles: which model answers exactly as before, and why?"),
    ("train", "10 · Train it yourself", "Train tiles of 7 for 30 s, then horizontal strips of 4 with no positions: "
     "which reads more test pictures right, and what do the position vectors look like in each?"),
    ("teach", "11 · Teach it", "Teach it three symbols of your own, five drawings each: does the Predict tab read "
     "a new drawing of each right? Which tiles does occlusion colour red now?"),
    ("about", "About the model", "Compare the reliability diagram before and after calibration: which lies nearer "
     "the diagonal? Then switch the model menu to mnist-tiny and open the tabs again."),
)


def markdown() -> str:
    """The path as a Markdown list (the tabs' names carry their numbers)."""
    return "\n".join(f"- **{name}**: {prompt}" for _, name, prompt in PATH)


def button():
    """The header's button that shows and hides the path: on the first screen, beside the model menu, where it
    takes no line of its own (a phone's first screen must still reach the drawing pad)."""
    import gradio as gr
    return gr.Button("Suggested path", size="sm", elem_id="lesson-button")


def panel(shower) -> None:
    """The path under the header, hidden until `shower` (button()) is pressed, hidden again by the next press."""
    import gradio as gr
    with gr.Column(visible=False, elem_id="lesson") as shown:
        gr.Markdown(f"### {TITLE}\nTake the tabs in this order; each has one thing to try. *Copy a link* sends the "
                    "class exactly what is on your screen.\n\n" + markdown())
    visible = gr.State(False)
    shower.click(toggled, visible, [shown, visible], queue=False, api_visibility="private")


def toggled(visible: bool):
    """The path shown if hidden, hidden if shown; and whether it now is."""
    import gradio as gr
    return gr.Column(visible=not visible), not visible


def placed(text: str) -> str:
    """docs/app.md's text with the path between its markers."""
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{markdown()}\n{END}{after}"

