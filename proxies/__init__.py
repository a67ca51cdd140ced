"""Three evaluation sets built here, as proxies for the pictures people bring, and the command that measures a model
on them (`python -m proxies FOLDER ...`).

- nondigits: pen-drawn letters, signs, doodles and scribbles that are not digits (a stroke model of its own);
- photos: MNIST digits as ink on paper, photographed under kinds of light and ink;
- writers: scikit-learn's optdigits scans, by 13 writers none of whom is in MNIST.

None of it shares code with the pictures the models are trained or fitted on (vit.probes, vit.rendered,
vit.augment, vit.outliers). Each set has two fixed draws: "choose" (for every choice made after looking:
validation) and "report" (what cards and docs quote), each with a fingerprint of its pixels.
"""
