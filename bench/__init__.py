"""The benchmark: how fast this project trains, answers and serves, against the notebook it grew from.

    python -m bench              # full run -> bench/results.json, bench/README.md
    python -m bench --quick      # small samples, untrained models, no training to 96.97 % and 99 %
                                 #   -> bench/results-quick.json, bench/results-quick.md (git-ignored)
    python -m bench --open-loop  # only 20 visitors stroking at a fixed rate, batching off then on
                                 #   -> bench/open-loop.json, bench/open-loop.md

A tool beside the product: it imports vit.* and, for the in-process Predict figure, the app's modules;
nothing in the product imports it. Modules, one job each:
    budget.py    how much is measured (full, --quick), of which models, on how many torch threads
    notebook.py  the seed notebook's model and training loop: its recipe's time to its own 96.97 %
    timings.py   figures measured in this process: the seed's recipe and ours to 96.97 % and 99 %, speed
                 choices, inference, the Predict update, evaluation of the test split and accuracy
    app.py       the app as a process: start-up against a bare Gradio app, /predict, and a stroke in Chromium
    in_page.py   the pad's answers in the page while the pen moves, in Chromium at phone size
    open_loop.py many visitors at once over plain HTTP, each stroking at a fixed rate (open loop)
    report.py    figures with goals, percentiles, and the tables
    __main__.py  arguments, the order of the parts, the files written
Absolute timings move with the machine's load, so speed-ups are ratios measured in the same run and
latencies are percentiles; the load average is recorded beside them.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: app.py, weights/
