"""How much of each figure is measured (full or --quick), of which models, and on how many torch threads."""

from dataclasses import dataclass

import torch

STARTUP_THREADS = torch.get_num_threads()  # torch's default for this machine, read before anyone changes it
OUR_THREADS = 1                            # what train.py and app.py use
MODELS = {"mnist": "default", "mnist-tiny": "tiny"}  # shipped model folder -> the preset it was trained with


@dataclass(frozen=True)
class Budget:
    """How much of each measurement to take."""
    seed_epochs: int         # epochs of the seed's recipe timed (the median is kept) ...
    seed_steps: int          # ... each of at most this many steps, scaled up to a whole epoch
    latency_runs: int        # single-image calls per latency figure (and in-process Predict updates)
    evaluations: int         # passes over the test split, the median is kept
    app_requests: int        # sequential /predict calls from one client
    app_clients: int         # concurrent clients ...
    app_client_requests: int  # ... and the calls each makes
    startups: int            # launches each of the app and of a bare Gradio app, interleaved
    strokes: int             # strokes drawn in Chromium
    time_to_99: bool         # train the fast preset: its times to 96.97 % and to 99 % (and the Train tab's defaults)
    training_seconds: int    # the /train run the strokes are drawn during, a second time


FULL = Budget(seed_epochs=3, seed_steps=10**6, latency_runs=200, evaluations=3, app_requests=100,
              app_clients=16, app_client_requests=20, startups=3, strokes=20, time_to_99=True,
              training_seconds=60)
QUICK = Budget(seed_epochs=1, seed_steps=20, latency_runs=50, evaluations=1, app_requests=20,
               app_clients=4, app_client_requests=5, startups=1, strokes=3, time_to_99=False,
               training_seconds=15)
